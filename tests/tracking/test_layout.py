"""The record's layout: what the writers name, the readers find."""

from ganbench.tracking import layout


def test_sample_grid_paths_match_the_pattern_readers_use():
    path = layout.sample_grid_artifact(7)
    assert path == "samples/epoch_007.png"
    match = layout.SAMPLE_GRID_PATTERN.fullmatch(path)
    assert match and int(match.group(1)) == 7
    assert not layout.SAMPLE_GRID_PATTERN.fullmatch(f"{layout.SAMPLES_DIR}/{layout.ANIMATION_FILE}")


def test_artifact_paths_and_roles():
    assert layout.CHECKPOINT_ARTIFACT == "checkpoints/final.pt"
    assert layout.eval_artifact_dir(120) == "eval/step_0000120"
    assert set(layout.NOT_TRAINING) == {"sweep", "classifier", "reference"}
