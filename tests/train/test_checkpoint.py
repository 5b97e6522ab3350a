"""Checkpoint files: atomic writes, refusal of foreign or damaged files, the resume folder."""

import pickle

import pytest
import torch

from ganbench.train.checkpoint import CheckpointDir, CheckpointError, config_key, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"step": 3, "weights": {"w": torch.ones(2)}})
    back = load_checkpoint(path)
    assert back["step"] == 3 and torch.equal(back["weights"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_a_foreign_pickle_is_refused_without_running_it(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": "ganbench-checkpoint", "payload": Boom()}))
    with pytest.raises(CheckpointError, match="evil.pt is not a readable ganbench checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_a_torch_file_that_is_not_ours_is_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not a ganbench checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"w": torch.randn(1000)})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="not a readable ganbench checkpoint"):
        load_checkpoint(path)


def test_checkpoint_dir_keeps_the_newest_and_skips_damaged_ones(tmp_path):
    d = CheckpointDir(tmp_path, "abc", keep=2)
    for step in (1, 2, 3):
        d.save(step, {"step": step})
    assert [p.name for p in d.files()] == ["step_000000002.pt", "step_000000003.pt"]
    d.files()[-1].write_bytes(b"garbage")
    ckpt, skipped = d.latest()
    assert ckpt["step"] == 2 and len(skipped) == 1
    d.clear()
    assert not d.path.exists()


def test_config_key_ignores_what_does_not_change_training():
    a = {"seed": 0, "train": {"epochs": 3, "resume": "auto"}, "tracking": {"uri": "x"}}
    b = {"seed": 0, "train": {"epochs": 3, "resume": True}, "tracking": {"uri": "y"}}
    c = {"seed": 1, "train": {"epochs": 3, "resume": "auto"}, "tracking": {"uri": "x"}}
    ignore = ("tracking", "train.resume")
    assert config_key(a, ignore) == config_key(b, ignore) != config_key(c, ignore)
