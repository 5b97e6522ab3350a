"""What each metric column says it was measured on, and the warnings when runs were measured differently."""

from __future__ import annotations

from ganbench.report import build
from ganbench.report.columns import describe_metrics


def scored(make_record, seed: int, bn_mode: str | None = None, params: dict[str, str] | None = None, **measured: str):
    """A finished dcgan run with every k-NN metric, its measured.* tags and eval.* params as given."""
    metrics = {m: 1.0 + seed for m in ("fid_clf", "precision_clf", "recall_clf", "density_clf", "mifid_clf")}
    tags = {f"measured.{k}": v for k, v in ({"num_samples": "1000"} | measured).items()}
    if bn_mode is not None:
        tags["measured.bn_mode"] = bn_mode
    run = make_record("dcgan", "none", seed, metrics=metrics, **tags)
    run.params.update(params or {})
    return run


def not_comparable(runs) -> list[str]:
    return [w for w in build(runs, "fid_clf").warnings if "not comparable" in w]


def test_runs_sampled_with_different_batchnorm_modes_are_not_comparable(make_record):
    warnings = not_comparable([scored(make_record, 0, "eval"), scored(make_record, 1, "standing (10 steps)")])
    assert any(w.startswith("fid_clf") and "BatchNorm modes (eval.bn_mode)" in w and "(eval, standing (10 steps))" in w for w in warnings)
    # The same mode with another step count is another setting too.
    warnings = not_comparable([scored(make_record, 0, "standing (10 steps)"), scored(make_record, 1, "standing (3 steps)")])
    assert any("standing (10 steps), standing (3 steps)" in w for w in warnings)


def test_a_run_without_the_bn_mode_tag_counts_as_eval(make_record):
    # Runs scored before eval.bn_mode existed sampled with running statistics: beside an eval run they compare.
    assert not_comparable([scored(make_record, 0), scored(make_record, 1, "eval")]) == []
    assert any("(batch, eval)" in w for w in not_comparable([scored(make_record, 0), scored(make_record, 1, "batch")]))
    # Without the tag the eval.bn_mode param speaks for the run.
    assert any("(batch, eval)" in w for w in not_comparable([scored(make_record, 0, params={"eval.bn_mode": "eval"}), scored(make_record, 1, "batch")]))


def test_footnotes_name_the_k_of_precision_recall_and_density_and_the_eps_of_mifid(make_record):
    runs = [scored(make_record, s, prc_neighborhood="3", density_neighborhood="5", mifid_cosine_eps="0.1", memorization_train_images="22352")
            for s in (0, 1)]
    measured, _ = describe_metrics(["precision_clf", "recall_clf", "density_clf", "mifid_clf"], runs, [])
    assert "; k=3;" in measured["precision_clf"][0] and "; k=3;" in measured["recall_clf"][0]
    assert "; k=5;" in measured["density_clf"][0]
    assert "mifid_clf: 1,000 generated samples vs 22,352 training images; memorisation threshold cosine eps=0.1;" in measured["mifid_clf"][0]


def test_the_eval_params_stand_in_for_the_tags_and_different_settings_are_not_comparable(make_record):
    # Runs logged before measured.prc_neighborhood / measured.mifid_cosine_eps existed have the eval.* params.
    old = scored(make_record, 0, params={"eval.prc_neighborhood": "5", "eval.mifid_cosine_eps": "0.2"})
    new = scored(make_record, 1, prc_neighborhood="3", mifid_cosine_eps="0.1")
    warnings: list[str] = []
    measured, _ = describe_metrics(["precision_clf", "mifid_clf"], [old, new], warnings)
    assert "; k={3, 5};" in measured["precision_clf"][0] and "cosine eps={0.1, 0.2};" in measured["mifid_clf"][0]
    assert any(w.startswith("precision_clf") and "(3, 5)" in w and "not comparable" in w for w in warnings)
    assert any(w.startswith("mifid_clf") and "(0.1, 0.2)" in w and "not comparable" in w for w in warnings)


def test_a_rescored_runs_training_settings_are_not_shown_as_its_scoring_settings(make_record):
    trained = scored(make_record, 0, params={"eval.num_samples": "10000"})
    rescored = scored(make_record, 1, params={"eval.num_samples": "10000"}, num_samples="500")
    rescored.tags["rescored"] = "20261207-221500"
    board = build([trained, rescored], "fid_clf")
    assert board.eval_settings == {"eval.num_samples": "10000"}  # the trained run's own; the rescored one's is stale
    assert not [w for w in board.warnings if "evaluated with different settings" in w]
    assert build([rescored], "fid_clf").eval_settings == {}  # only its measured.* tags say how it was scored
