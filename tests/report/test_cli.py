"""``python -m ganbench.report`` in-process: its arguments (both spellings), its errors (one line, exit 2); its start-up without torch."""

import subprocess
import sys
from pathlib import Path

import pytest

from ganbench import report
from ganbench.report import ReportError, ReportSettings


def test_latest_parent_and_unknown_metric(hand_store, report_files, tmp_path):
    uri, parent, _ = hand_store
    md = report_files(uri, "latest", tmp_path / "r", "metric=cas", "log=false")["md"]
    assert f"parent run `{parent}`" in md and "No configuration has cas yet" in md
    assert md.count("| unranked |") == 4


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


def test_report_error_is_a_user_error():
    from ganbench.errors import UserError

    assert issubclass(ReportError, UserError)


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
