"""``python -m ganbench.report`` in-process: its arguments (both spellings), its errors (one line, exit 2), the tags it logs,
a read-only store; its start-up without torch."""

import csv
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from ganbench import report
from ganbench.report import ReportError, ReportSettings
from ganbench.tracking import experiment_id, layout, make_client


def test_latest_parent_and_unknown_metric(hand_store, report_files, tmp_path):
    uri, parent, _ = hand_store
    md = report_files(uri, "latest", tmp_path / "r", "metric=cas", "log=false")["md"]
    assert f"parent run `{parent}`" in md and "No configuration has cas yet" in md
    assert md.count("| unranked |") == 4


def test_a_metric_nothing_logged_and_ganbench_does_not_know_is_one_line_with_exit_2(hand_store, tmp_path, capsys):
    uri, parent, _ = hand_store
    assert report.main([f"tracking.uri={uri}", "experiment=hand", f"parent={parent}", "metric=fid_cfl", "log=false",
                        f"out={tmp_path / 'r'}"], echo=lambda s: None) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "metric='fid_cfl' is not a metric any of these runs logged" in line and "fid_clf" in line
    assert not (tmp_path / "r").exists()


def test_latest_is_the_newest_sweep_that_trained_something(hand_store, report_files, tmp_path):
    # A sweep whose every job was refused leaves a parent run and no child: "latest" must not land on it.
    uri, parent, _ = hand_store
    client = make_client(uri)
    exp = client.get_experiment_by_name("hand").experiment_id
    empty = client.create_run(exp, tags={layout.ROLE_TAG: layout.ROLE_SWEEP}).info.run_id
    client.set_terminated(empty, "FINISHED")
    md = report_files(uri, "latest", tmp_path / "r", "log=false")["md"]
    assert f"parent run `{parent}`" in md


def test_the_main_apps_spellings_tracking_experiment_and_tracking_uri_work(hand_store, report_files, tmp_path):
    uri, parent, _ = hand_store
    files = report_files(uri, parent, tmp_path / "r", "log=false", experiment="tracking.experiment=hand")
    assert "Experiment `hand`" in files["md"]
    assert ReportSettings.from_args(["tracking.experiment=a", "uri=sqlite:///x.db"]) == ReportSettings(experiment="a", tracking_uri="sqlite:///x.db")


def test_settings_from_arguments():
    settings = ReportSettings.from_args(["sweep=abc", "metrics=fid_clf,,cas", "out=o", "log=false", "direction=max"])
    assert settings == ReportSettings(parent="abc", metrics=("fid_clf", "cas"), out=Path("o"), log=False, direction="max")
    assert ReportSettings().out_dir("abc") == Path("reports/abc") and ReportSettings(experiment="a b").out_dir(None) == Path("reports/a_b")
    assert settings.out_dir("abc") == Path("o")
    for bad, message in (("log=yes", "log='yes'"), ("direction=up", "direction='up'"), ("colour=blue", "'colour=blue' is not one of")):
        with pytest.raises(ReportError, match=message):
            ReportSettings.from_args([bad])


def test_cli_errors_are_one_line_and_exit_2(hand_store, tmp_path, capsys):
    uri, _, _ = hand_store
    assert report.main([f"tracking.uri={uri}", "experiment=nope"]) == 2
    assert report.main([f"tracking.uri={uri}", "experiment=hand", "parent=0123"]) == 2
    assert report.main(["colour=blue"]) == 2
    assert report.main([f"tracking.uri=sqlite:///{tmp_path}/none.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("ganbench.report: error: ") for line in err)
    assert "no experiment 'nope'" in err[0] and "no run '0123'" in err[1] and not (tmp_path / "none.db").exists()


def test_warnings_go_to_stderr_and_help_to_echo(hand_store, tmp_path, capsys):
    uri, parent, _ = hand_store
    said = []
    assert report.main(["--help"], echo=said.append) == 0 and "tracking.experiment=NAME" in said[0]
    assert report.main([f"uri={uri}", "experiment=hand", f"parent={parent}", f"out={tmp_path}", "log=false"], echo=said.append) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("ganbench.report: warning: ") for line in err)
    assert any("still RUNNING" in line for line in err) and said[-1].startswith("report: ")


def test_the_report_starts_without_torch():
    # torch and torchvision are 5 s of its start-up on 2 cores (benchmarks/startup.py); it reads the store, draws figures
    code = "import sys, ganbench.report, ganbench.plotting; print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_sweep_in_another_experiment_is_reported_from_its_parent_run_id(hand_store, tmp_path, capsys):
    uri, parent, _ = hand_store
    assert report.main([f"tracking.uri={uri}", f"parent={parent}", f"out={tmp_path}", "log=false"], echo=lambda s: None) == 0
    assert "Experiment `hand`" in (tmp_path / "leaderboard.md").read_text(encoding="utf-8")


def test_the_logged_report_tags_the_parent_with_the_metric_it_ranked_by(hand_store, tmp_path):
    uri, parent, _ = hand_store
    assert report.main([f"tracking.uri={uri}", "experiment=hand", f"parent={parent}", "metric=gen_accuracy", f"out={tmp_path}"],
                       echo=lambda s: None) == 0
    tags = MlflowClient(uri).get_run(parent).data.tags
    assert (tags["report.metric"], tags["report.direction"]) == ("gen_accuracy", "max")
    assert report.main([f"tracking.uri={uri}", "experiment=hand", f"parent={parent}", "metric=d_loss", f"out={tmp_path}", "log=false"],
                       echo=lambda s: None) == 0
    assert MlflowClient(uri).get_run(parent).data.tags["report.metric"] == "gen_accuracy"  # an unlogged report tags nothing


def refuse_writes(db: Path) -> None:
    """Make a SQLite store read-only as a read-only folder makes it for a user who is not root (the tests run as root,
    whom chmod does not stop): a folder takes the lock file's name, so the lock cannot be created, and triggers abort
    every write the report could try (tags, run status)."""
    lock = db.with_name(db.name + "-ganbench.lock")
    lock.unlink(missing_ok=True)
    lock.mkdir()
    with sqlite3.connect(db) as con:
        for table, event in (("tags", "INSERT"), ("tags", "UPDATE"), ("runs", "UPDATE")):
            con.execute(f"CREATE TRIGGER refuse_{event.lower()}_{table} BEFORE {event} ON {table} "
                        "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END")


def test_a_read_only_store_is_reported_and_a_run_whose_lease_is_dead_counts_as_killed(new_store, tmp_path, capsys):
    uri = new_store(tmp_path / "ro" / "mlflow.db")
    client = MlflowClient(uri)
    exp = experiment_id(client, "ro")
    parent = client.create_run(exp, tags={"role": "sweep"}).info.run_id
    base = {"mlflow.parentRunId": parent, "model": "dcgan", "loss": "bce", "stabilize": "none", "dataset": "hoda", "noise": "normal"}
    done = client.create_run(exp, tags={**base, "seed": "0"}).info.run_id
    client.log_batch(done, metrics=[Metric("fid_clf", 3.0, 0, 0)])
    client.set_terminated(done, "FINISHED")
    lease = {layout.LEASE_HOST_TAG: "elsewhere", layout.LEASE_PID_TAG: "1", layout.LEASE_UNTIL_TAG: f"{time.time() - 60:.1f}"}
    dead = client.create_run(exp, tags={**base, "seed": "1", **lease}).info.run_id  # its process died an hour ago
    client.set_terminated(parent, "FINISHED")
    refuse_writes(tmp_path / "ro" / "mlflow.db")

    code = report.main([f"tracking.uri={uri}", f"parent={parent}", f"out={tmp_path / 'r'}"], echo=lambda s: None)
    err = capsys.readouterr().err
    assert code == 0, err
    assert MlflowClient(uri).get_run(dead).info.status == "RUNNING"  # the store refused to mark it
    (row,) = csv.DictReader((tmp_path / "r" / "leaderboard.csv").open())
    assert (row["finished"], row["killed"], row["running"]) == ("1", "1", "0")
    assert "still RUNNING" not in err and "not logged to the sweep's parent run" in err
