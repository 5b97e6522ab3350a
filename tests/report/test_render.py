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
    # Each number says what it was measured on, in the file itself: a row copied out keeps it.
    assert all(r["fid_clf_measured_on"].startswith("1,000 generated samples vs 22,352 real images of the train split") for r in rows)
    assert "features: ganbench-classifier" in first["gen_accuracy_measured_on"]

    md = files["md"]
    assert md.index("| ref | real data (hoda)") < md.index("| 1 | dcgan · bce · none · hoda · normal")
    # what was measured is said once, above the table; the headers are the metric and its direction
    header = next(line for line in md.splitlines() if line.startswith("| rank |"))
    assert header == "| rank | configuration | n | runs | fid_clf ↓ | gen_accuracy ↑ | differs from best |"
    assert md.index("- `fid_clf`: 1,000 generated samples vs 22,352 real images of the train split") < md.index(header)
    assert md.count("22,352") == 1 and "- every metric: " in md and "features: ganbench-classifier" in md
    assert "Welch's two-sided t-test" in md and "still RUNNING" in md and "| unranked | wgan · bce · smooth" in md
    assert "non-finite loss at step 3" in md  # the diverged run's reason, in the list of runs
    assert "measured.* tags, above): eval.num_samples=1000" in md


def test_html_is_self_contained_with_sample_grids_and_plots_inline(hand_store, report_files, tmp_path):
    uri, parent, _ = hand_store
    page = report_files(uri, parent, tmp_path / "r")["html"]
    images = re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert len(images) >= 3 + 3  # a sample grid per finished configuration, ranked metric, losses, quality over training
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)
    assert 'class="verdict">Winner: dcgan · bce · none' in page and 'id="quality"' in page


def test_html_says_what_was_measured_once_and_enlarges_sample_grids(hand_store, report_files, tmp_path):
    uri, parent, _ = hand_store
    page = report_files(uri, parent, tmp_path / "r", "log=false")["html"]
    headers = re.findall(r'<th class="metric[^"]*" title="([^"]*)">(.*?)</th>', page)
    assert [h for _, h in headers] == ["fid_<wbr>clf&nbsp;↓", "gen_<wbr>accuracy&nbsp;↑"]
    assert headers[0][0].startswith("fid_clf: 1,000 generated samples vs 22,352 real images")  # the tooltip
    measured = page[page.index('<div class="measured">'):page.index('<div class="table-scroll">')]
    assert "<code>fid_clf</code>: 1,000 generated samples vs 22,352 real images of the train split" in measured
    assert page.count("22,352") == 2  # above the table and in fid_clf's tooltip, in no other header
    # the configuration column is frozen while the metrics scroll inside the table's box
    assert '<td class="config">dcgan · bce · none · hoda · normal</td>' in page and ".config{position:sticky" in page
    # each sample grid is a button that opens it in the one <dialog>; the image is inlined once
    assert page.count('<button type="button" class="zoom"') == 3 and page.count('<dialog id="enlarged"') == 1
    assert len(re.findall(r'<img class="grid" alt="samples of [^"]+" src="data:image/png;base64,', page)) == 3


def test_measured_groups_say_each_fact_once(hand_records):
    from ganbench.report.text import measured_groups, measured_lines

    board = build(hand_records, "fid_clf")
    board.measured = {
        "fid_clf": ["fid_clf: 1,000 samples vs 5,000 train; features: clf"],
        "gen_accuracy": ["gen_accuracy: share of 1,000 samples; features: clf"],
    }
    assert measured_groups(board) == [([], [], "features: clf"), (["fid_clf"], [], "1,000 samples vs 5,000 train"),
                                      (["gen_accuracy"], [], "share of 1,000 samples")]
    board.metrics = ["fid_clf", "kid_clf", "is_clf", "fid_inception"]
    board.measured = {m: [f"{m}: 1,000 samples; features: {'inception' if 'inception' in m else 'clf'}"] for m in board.metrics}
    assert measured_lines(board) == ["every metric: 1,000 samples", "every metric but `fid_inception`: features: clf",
                                     "`fid_inception`: features: inception"]


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
