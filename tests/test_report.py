"""Leaderboard reports: aggregation and significance on hand-made numbers, then reports read from a real
(temporary SQLite) MLflow store holding hand-made runs: ranks, intervals, tests, images, determinism."""

import csv
import io
import math
import re
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from PIL import Image

from ganbench import report
from ganbench.report import RunRecord, build, holm, summarize, welch_p
from ganbench.tracking import experiment_id, make_client

# --------------------------------------------------------------------------- the math, by hand


def test_mean_and_t_interval_worked_by_hand():
    s = summarize([10.0, 12.0, 14.0])
    # mean 12, sample std 2; t(0.975, df=2) = 4.302653 -> half-width 4.302653 * 2 / sqrt(3) = 4.968275
    assert s.n == 3 and s.mean == 12.0 and s.std == pytest.approx(2.0)
    assert s.half_width == pytest.approx(4.968275, abs=1e-6)
    assert (s.low, s.high) == pytest.approx((7.031725, 16.968275), abs=1e-6)


def test_one_seed_gives_a_mean_but_no_interval_and_none_gives_nothing():
    one = summarize([3.5])
    assert one.mean == 3.5 and one.std is None and one.low is None and one.half_width is None
    assert summarize([]).mean is None and summarize([]).n == 0


def test_welch_p_worked_by_hand():
    # Equal spreads (var 4, n 3 each): t = 10 / sqrt(8/3), t^2 = 37.5, df = 4. For df = 4 the two-sided
    # p is 1 - (3/2) x (1 - x^2/3) with x = sqrt(t^2 / (4 + t^2)) = sqrt(37.5 / 41.5): p = 0.0036022.
    assert welch_p([20.0, 22.0, 24.0], [10.0, 12.0, 14.0]) == pytest.approx(0.0036022, abs=1e-6)
    # t = 1 / sqrt(8/3): t^2 = 0.375, x = sqrt(0.375 / 4.375) -> p = 0.5733923.
    assert welch_p([11.0, 13.0, 15.0], [10.0, 12.0, 14.0]) == pytest.approx(0.5733923, abs=1e-6)


def test_welch_p_is_undefined_without_two_seeds_or_any_spread():
    assert welch_p([1.0], [2.0, 3.0]) is None
    assert welch_p([1.0, 1.0], [2.0, 2.0]) is None
    # One side varying is enough: se^2 = 0 + 0.5/2, t = -1.5 / 0.5 = -3, df = 1 -> p = 2 * (1/2 - atan(3)/pi).
    assert welch_p([1.0, 1.0], [2.0, 3.0]) == pytest.approx(1 - 2 * math.atan(3) / math.pi, abs=1e-9)


def test_holm_adjustment_worked_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"a": 0.6, "b": 0.9}) == {"a": 1.0, "b": 1.0}


def record(model, stabilize, seed, status="FINISHED", metrics=None, **tags):
    base = {"model": model, "loss": "bce", "stabilize": stabilize, "dataset": "hoda", "noise": "normal", "seed": str(seed)}
    return RunRecord(run_id=f"{model}-{stabilize}-{seed}", name=f"{model}-{stabilize}-s{seed}", status=status, start_time=seed,
                     tags={**base, **tags}, params={}, metrics=metrics or {})


def hand_made_records():
    runs = []
    for fids, accs, (model, stabilize) in (
        ([10, 12, 14], [0.5, 0.6, 0.7], ("dcgan", "none")),
        ([20, 22, 24], [0.9, 0.95, 1.0], ("dcgan", "smooth")),
        ([11, 13, 15], [0.7, 0.75, 0.8], ("wgan", "none")),
    ):
        runs += [record(model, stabilize, s, metrics={"fid_clf": f, "gen_accuracy": a}) for s, (f, a) in enumerate(zip(fids, accs))]
    runs += [
        record("wgan", "smooth", 0, "FAILED", diverged="non-finite loss at step 3", error="DivergedError"),
        record("wgan", "smooth", 1, "FAILED", error="RuntimeError: boom"),
        record("wgan", "smooth", 2, "RUNNING", metrics={"d_loss": 0.7}),
    ]
    return runs


def test_rows_are_ranked_tested_against_the_best_and_nothing_is_dropped():
    board = build(hand_made_records(), "fid_clf")
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


def test_higher_is_better_metrics_rank_descending():
    board = build(hand_made_records(), "gen_accuracy")
    assert not board.lower_is_better and board.arrow("gen_accuracy") == "↑" and board.arrow("fid_clf") == "↓"
    assert [r.key[:3] for r in board.ranked] == [("dcgan", "bce", "smooth"), ("wgan", "bce", "none"), ("dcgan", "bce", "none")]
    assert board.best.best_run.seed == "2"  # accuracy 1.0


def test_a_metric_nobody_logged_leaves_every_row_unranked_and_says_so():
    board = build(hand_made_records(), "fid_inception")
    assert board.ranked == [] and len(board.rows) == 4
    assert all("fid_inception not logged" in r.note or "no finished run" in r.note for r in board.rows)
    assert "9 FINISHED run(s) have no fid_inception" in " ".join(board.warnings)
    assert "No configuration has fid_inception yet" in report.verdict(board)


def test_swept_keys_beyond_the_grid_axes_become_columns():
    runs = [record("dcgan", "none", s, metrics={"fid_clf": 10.0 + s + lr}, overrides=f"optim.lr={lr} seed={s} data.limit=256")
            for lr in (1, 2) for s in (0, 1)]
    board = build(runs, "fid_clf")
    assert board.columns == ["model", "loss", "stabilize", "dataset", "noise", "optim.lr"]  # data.limit did not vary
    assert [r.key[-1] for r in board.rows] == ["1", "2"] and all(r.stats["fid_clf"].n == 2 for r in board.rows)


def test_each_dataset_is_ranked_on_its_own_under_its_reference_row():
    runs = [record(m, "none", seed, metrics={"fid_clf": value + seed}, dataset=d)
            for d, m, value in (("hoda", "dcgan", 10), ("hoda", "wgan", 30), ("mnist", "dcgan", 50), ("mnist", "wgan", 5))
            for seed in (0, 1)]
    refs = [RunRecord(run_id=f"ref-{d}", name=f"reference-real-{d}", status="FINISHED", start_time=0,
                      tags={"reference": "real", "dataset": d}, params={}, metrics={"fid_clf": 0.5}) for d in ("mnist", "hoda")]
    board = build(runs, "fid_clf", references=refs)
    order = [(r.key[0] if r.reference else f"{r.rank} {r.key[0]} {r.key[3]}") for r in board.display_rows()]
    assert order == ["real data (hoda)", "1 dcgan hoda", "2 wgan hoda", "real data (mnist)", "1 wgan mnist", "2 dcgan mnist"]
    assert set(board.bests) == {"hoda", "mnist"} and "each is ranked and tested on its own" in " ".join(board.warnings)
    assert "Winner on hoda: dcgan" in report.verdict(board) and "Winner on mnist: wgan" in report.verdict(board)


def test_a_seed_preset_is_part_of_the_configuration():
    runs = [record("seed_s2_dcgan", "none", seed, metrics={"fid_clf": 1.0 + seed + 5 * (prior == "uniform")}, noise=prior,
                   preset=f"seed_s2_dcgan_mnist_{prior}", overrides=f"experiment=seed_s2_dcgan_mnist_{prior} seed={seed}")
            for prior in ("normal", "uniform") for seed in (0, 1, 2)]
    runs.append(record("seed_s2_dcgan", "none", 0, metrics={"fid_clf": 9.0}))  # the same nets trained without the preset
    board = build(runs, "fid_clf")
    assert board.columns == ["model", "loss", "stabilize", "dataset", "noise", "preset"]
    assert [report.config_label(board, r) for r in board.rows] == [
        "seed_s2_dcgan · bce · none · hoda · normal · preset=seed_s2_dcgan_mnist_normal",
        "seed_s2_dcgan · bce · none · hoda · uniform · preset=seed_s2_dcgan_mnist_uniform",
        "seed_s2_dcgan · bce · none · hoda · normal",
    ]


# --------------------------------------------------------------------------- reports from a real store


def grid_png(shade: int) -> Image.Image:
    return Image.new("L", (32, 32), color=shade)


@pytest.fixture(scope="module")
def hand_store(tmp_path_factory):
    """A SQLite store with a sweep parent, 12 hand-made children (4 configurations x 3 seeds) and a reference run."""
    tmp = tmp_path_factory.mktemp("hand")
    uri = f"sqlite:///{tmp}/hand.db"
    client = make_client(uri)
    exp = experiment_id(client, "hand")
    parent = client.create_run(exp, tags={"role": "sweep", "sweep.overrides": "model=dcgan,wgan stabilize=none,smooth seed=0,1,2"},
                               run_name="sweep-hand").info.run_id
    measured = {"measured.num_samples": "1000", "measured.reference_split": "train", "measured.reference_images": "22352",
                "measured.feature_extractor": "ganbench-classifier", "measured.classifier_sha256": "ab" * 32}
    reference = client.create_run(exp, tags={"reference": "real", "role": "reference", "dataset": "hoda", **measured},
                                  run_name="reference-real-hoda").info.run_id
    client.log_batch(reference, metrics=[Metric("fid_clf", 0.25, 0, 0), Metric("gen_accuracy", 0.99, 0, 0)])
    client.set_terminated(reference, "FINISHED")
    for rec in hand_made_records():
        tags = {"mlflow.parentRunId": parent, **rec.tags, **measured, "measured.reference_run_id": reference}
        run_id = client.create_run(exp, tags=tags, run_name=rec.name).info.run_id
        steps = range(1, 21)
        metrics = [Metric(k, 1.0 + 0.01 * s * (k == "g_loss") + int(rec.seed) * 0.1, 0, s) for s in steps for k in ("d_loss", "g_loss")]
        for key, value in rec.metrics.items():
            metrics += [Metric(key, value * 1.5, 0, 10), Metric(key, value, 0, 20)]  # a quality curve: two evaluations
        client.log_batch(run_id, metrics=metrics, params=[Param("eval.num_samples", "1000"), Param("eval.enabled", "true")])
        if rec.status != "RUNNING":
            for epoch in (1, 2):
                path = tmp / run_id / f"epoch_{epoch:03d}.png"
                path.parent.mkdir(exist_ok=True)
                grid_png(40 * epoch + int(rec.seed)).save(path)
                client.log_artifact(run_id, str(path), "samples")
            client.set_terminated(run_id, rec.status)
    client.set_terminated(parent, "FINISHED")
    return uri, parent, reference


def report_files(uri, parent, out, *extra):
    code = report.main([f"tracking.uri={uri}", "experiment=hand", f"parent={parent}", f"out={out}", *extra], echo=lambda s: None)
    assert code == 0
    return {kind: (Path(out) / f"leaderboard.{kind}").read_text(encoding="utf-8") for kind in ("md", "csv", "html")}


def test_report_files_rank_configurations_with_intervals_and_the_reference_on_top(hand_store, tmp_path):
    uri, parent, _ = hand_store
    files = report_files(uri, parent, tmp_path / "r")
    rows = list(csv.DictReader(io.StringIO(files["csv"])))
    assert [r["rank"] for r in rows] == ["ref", "1", "2", "3", ""]
    ref, first = rows[0], rows[1]
    assert ref["reference"] == "real data (hoda)" and float(ref["fid_clf_mean"]) == 0.25
    assert (first["model"], first["stabilize"], first["fid_clf_n"], first["seeds"]) == ("dcgan", "none", "3", "0;1;2")
    assert float(first["fid_clf_ci95_low"]) == pytest.approx(7.031725, abs=1e-6)
    assert rows[3]["differs_from_best"] == "true" and rows[2]["differs_from_best"] == "false"
    assert (rows[4]["failed"], rows[4]["diverged"], rows[4]["running"]) == ("2", "1", "1")

    md = files["md"]
    assert md.index("| ref | real data (hoda)") < md.index("| 1 | dcgan · bce · none · hoda · normal")
    assert "fid_clf ↓ (1,000 samples vs train (22,352))" in md  # each metric column: sample count and reference
    assert "Welch's two-sided t-test" in md and "still RUNNING" in md and "| unranked | wgan · bce · smooth" in md
    assert "non-finite loss at step 3" in md  # the diverged run's reason, in the list of runs
    assert "measured.* tags): eval.num_samples=1000" in md


def test_html_is_self_contained_with_sample_grids_and_plots_inline(hand_store, tmp_path):
    uri, parent, _ = hand_store
    page = report_files(uri, parent, tmp_path / "r")["html"]
    images = re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert len(images) >= 3 + 3  # a sample grid per finished configuration, ranked metric, losses, quality over training
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)
    assert 'class="verdict">Winner: dcgan · bce · none' in page and 'id="quality"' in page


def test_reports_are_identical_for_the_same_runs_and_logged_to_the_parent(hand_store, tmp_path):
    uri, parent, _ = hand_store
    first, second = report_files(uri, parent, tmp_path / "a"), report_files(uri, parent, tmp_path / "b", "log=false")
    assert first == second
    client = make_client(uri)
    logged = {a.path for a in client.list_artifacts(parent, "report")}
    assert logged == {"report/leaderboard.md", "report/leaderboard.csv", "report/leaderboard.html"}


def test_latest_parent_and_unknown_metric(hand_store, tmp_path, capsys):
    uri, parent, _ = hand_store
    md = report_files(uri, "latest", tmp_path / "r", "metric=cas", "log=false")["md"]
    assert f"parent run `{parent}`" in md and "No configuration has cas yet" in md
    assert md.count("| unranked |") == 4


def test_cli_errors_are_one_line_and_exit_2(hand_store, tmp_path, capsys):
    uri, _, _ = hand_store
    assert report.main([f"tracking.uri={uri}", "experiment=nope"]) == 2
    assert report.main([f"tracking.uri={uri}", "experiment=hand", "parent=0123"]) == 2
    assert report.main(["colour=blue"]) == 2
    assert report.main([f"tracking.uri=sqlite:///{tmp_path}/none.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("ganbench.report: error: ") for line in err)
    assert "no experiment 'nope'" in err[0] and "no run '0123'" in err[1] and not (tmp_path / "none.db").exists()
