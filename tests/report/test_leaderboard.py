"""Grouping, ranking and testing of hand-made runs (no MLflow)."""

import pytest

from ganbench import report
from ganbench.report import RunRecord, build
from ganbench.report.columns import higher_is_better
from ganbench.report.records import parse_overrides


def test_rows_are_ranked_tested_against_the_best_and_nothing_is_dropped(hand_records):
    board = build(hand_records, "fid_clf")
    by_key = {row.key[:3]: row for row in board.rows}
    best, worse, close = by_key[("dcgan", "bce", "none")], by_key[("dcgan", "bce", "smooth")], by_key[("wgan", "bce", "none")]
    assert [r.rank for r in board.rows] == [1, 2, 3, None]
    assert board.rows[:3] == [best, close, worse] and board.best is best
    assert best.stats["fid_clf"].n == 3 and best.stats["fid_clf"].half_width == pytest.approx(4.968275, abs=1e-6)
    # Holm over two comparisons: 2 x 0.0036022 for the worse row, max(that, 0.5733923) for the close one.
    assert worse.p_adjusted == pytest.approx(2 * 0.0036022, abs=1e-6) and worse.differs is True
    assert close.p_adjusted == pytest.approx(0.5733923, abs=1e-6) and close.differs is False
    assert best.best_run.seed == "0"  # the seed with the lowest fid_clf gives the row's sample grid
    failed = board.rows[3]
    assert failed.rank is None and (failed.count("FAILED"), failed.diverged, failed.count("RUNNING")) == (2, 1, 1)
    assert failed.note == "no finished run (2 FAILED, 1 RUNNING, 1 diverged)"
    text = " ".join(board.warnings)
    assert "1 run(s) still RUNNING" in text and "listed unranked" in text
    assert "Winner: dcgan · bce · none · hoda · normal with fid_clf 12 ± 4.968 over 3 seed(s)" in report.verdict(board)


def test_higher_is_better_metrics_rank_descending(hand_records):
    board = build(hand_records, "gen_accuracy")
    assert not board.lower_is_better and board.arrow("gen_accuracy") == "↑" and board.arrow("fid_clf") == "↓"
    assert [r.key[:3] for r in board.ranked] == [("dcgan", "bce", "smooth"), ("wgan", "bce", "none"), ("dcgan", "bce", "none")]
    assert board.best.best_run.seed == "2"  # accuracy 1.0


def test_metric_directions_and_an_unknown_metric_ranked_lower_is_better_with_a_warning(hand_records):
    assert higher_is_better("fid_clf") is False and higher_is_better("cas") is True and higher_is_better("d_loss") is None
    board = build([r for r in hand_records if r.status == "FINISHED"], "d_loss")
    assert board.lower_is_better and board.direction_assumed
    assert "does not know whether a higher d_loss is better" in " ".join(board.warnings)
    assert build(hand_records, "d_loss", direction="max").lower_is_better is False
    with pytest.raises(report.ReportError, match="direction='up'"):
        build(hand_records, "fid_clf", direction="up")


def test_a_metric_nobody_logged_leaves_every_row_unranked_and_says_so(hand_records):
    board = build(hand_records, "fid_inception")
    assert board.ranked == [] and len(board.rows) == 4
    assert all("fid_inception not logged" in r.note or "no finished run" in r.note for r in board.rows)
    assert "9 FINISHED run(s) have no fid_inception" in " ".join(board.warnings)
    assert "No configuration has fid_inception yet" in report.verdict(board)


def test_swept_keys_beyond_the_grid_axes_become_columns(make_record):
    runs = [make_record("dcgan", "none", s, metrics={"fid_clf": 10.0 + s + lr}, overrides=f"optim.lr={lr} seed={s} data.limit=256")
            for lr in (1, 2) for s in (0, 1)]
    board = build(runs, "fid_clf")
    assert board.columns == ["model", "loss", "stabilize", "dataset", "noise", "optim.lr"]  # data.limit did not vary
    assert [r.key[-1] for r in board.rows] == ["1", "2"] and all(r.stats["fid_clf"].n == 2 for r in board.rows)


def test_overrides_are_parsed_with_escaped_spaces_and_prefixes():
    assert parse_overrides(r"model=dcgan +optim.lr=1e-4 ~x=1 name=a\ b") == {"model": "dcgan", "optim.lr": "1e-4", "x": "1", "name": "a b"}


def test_each_dataset_is_ranked_on_its_own_under_its_reference_row(make_record):
    runs = [make_record(m, "none", seed, metrics={"fid_clf": value + seed}, dataset=d)
            for d, m, value in (("hoda", "dcgan", 10), ("hoda", "wgan", 30), ("mnist", "dcgan", 50), ("mnist", "wgan", 5))
            for seed in (0, 1)]
    refs = [RunRecord(run_id=f"ref-{d}", name=f"reference-real-{d}", status="FINISHED", start_time=0,
                      tags={"reference": "real", "dataset": d}, params={}, metrics={"fid_clf": 0.5}) for d in ("mnist", "hoda")]
    board = build(runs, "fid_clf", references=refs)
    order = [(r.key[0] if r.reference else f"{r.rank} {r.key[0]} {r.key[3]}") for r in board.display_rows()]
    assert order == ["real data (hoda)", "1 dcgan hoda", "2 wgan hoda", "real data (mnist)", "1 wgan mnist", "2 dcgan mnist"]
    assert set(board.bests) == {"hoda", "mnist"} and "each is ranked and tested on its own" in " ".join(board.warnings)
    assert "Winner on hoda: dcgan" in report.verdict(board) and "Winner on mnist: wgan" in report.verdict(board)


def test_a_seed_preset_is_part_of_the_configuration(make_record):
    runs = [make_record("seed_s2_dcgan", "none", seed, metrics={"fid_clf": 1.0 + seed + 5 * (prior == "uniform")}, noise=prior,
                        preset=f"seed_s2_dcgan_mnist_{prior}", overrides=f"experiment=seed_s2_dcgan_mnist_{prior} seed={seed}")
            for prior in ("normal", "uniform") for seed in (0, 1, 2)]
    runs.append(make_record("seed_s2_dcgan", "none", 0, metrics={"fid_clf": 9.0}))  # the same nets trained without the preset
    board = build(runs, "fid_clf")
    assert board.columns == ["model", "loss", "stabilize", "dataset", "noise", "preset"]
    assert [report.config_label(board, r) for r in board.rows] == [
        "seed_s2_dcgan · bce · none · hoda · normal · preset=seed_s2_dcgan_mnist_normal",
        "seed_s2_dcgan · bce · none · hoda · uniform · preset=seed_s2_dcgan_mnist_uniform",
        "seed_s2_dcgan · bce · none · hoda · normal",
    ]
