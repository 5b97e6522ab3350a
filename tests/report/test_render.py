"""The report files from a real (temporary SQLite) MLflow store: Markdown, CSV, the HTML template, determinism."""

import csv
import io
import re
from pathlib import Path

import pytest

from ganbench.report import Loaded, build, to_html
from ganbench.report.render import ENVIRONMENT, HTML_TEMPLATE, write
from ganbench.tracking import make_client


def test_report_files_rank_configurations_with_intervals_and_the_reference_on_top(hand_store, report_files, tmp_path):
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


def test_html_is_self_contained_with_sample_grids_and_plots_inline(hand_store, report_files, tmp_path):
    uri, parent, _ = hand_store
    page = report_files(uri, parent, tmp_path / "r")["html"]
    images = re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert len(images) >= 3 + 3  # a sample grid per finished configuration, ranked metric, losses, quality over training
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)
    assert 'class="verdict">Winner: dcgan · bce · none' in page and 'id="quality"' in page


def test_reports_are_identical_for_the_same_runs_and_logged_to_the_parent(hand_store, report_files, tmp_path):
    uri, parent, _ = hand_store
    first, second = report_files(uri, parent, tmp_path / "a"), report_files(uri, parent, tmp_path / "b", "log=false")
    assert first == second
    client = make_client(uri)
    logged = {a.path for a in client.list_artifacts(parent, "report")}
    assert logged == {"report/leaderboard.md", "report/leaderboard.csv", "report/leaderboard.html"}


def test_the_html_comes_from_the_package_template_and_escapes_every_value(make_record, tmp_path):
    template = ENVIRONMENT.get_template(HTML_TEMPLATE)
    assert Path(template.filename).parts[-3:] == ("report", "templates", "leaderboard.html.j2")
    runs = [make_record("<b>dcgan</b>", "none", seed, metrics={"fid_clf": 10.0 + seed}, error="a & b\nsecond line")
            for seed in (0, 1)]
    page = to_html(Loaded(build(runs, "fid_clf", experiment="<i>x</i>", tracking_uri="sqlite:///a&b.db"), {}, {}))
    assert "<b>dcgan</b>" not in page and "&lt;b&gt;dcgan&lt;/b&gt; · bce · none" in page
    # the context lines' `code` spans become <code>, their content escaped
    assert "<i>x</i>" not in page and "Experiment <code>&lt;i&gt;x&lt;/i&gt;</code> in <code>sqlite:///a&amp;b.db</code>." in page
    assert '<td class="small">a &amp; b</td>' in page and "second line" not in page  # the first line of the error
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")


def test_write_leaves_no_temporary_files(hand_records, tmp_path):
    files = write(Loaded(build(hand_records, "fid_clf"), {}, {}), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["leaderboard.csv", "leaderboard.html", "leaderboard.md"]
    assert files["md"].read_text(encoding="utf-8").startswith("# ganbench leaderboard")
