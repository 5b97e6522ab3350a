"""Reading runs back from a real (temporary SQLite) MLflow store."""

import io

import pytest
from PIL import Image

from ganbench.report import ReportError, ReportSettings
from ganbench.report.records import find_parent, last_sample_grid, read_runs
from ganbench.tracking import make_client


def test_a_sweeps_training_runs_its_reference_and_its_last_sample_grid(hand_store):
    uri, parent, reference = hand_store
    client = make_client(uri)
    found = read_runs(client, ReportSettings(experiment="hand", tracking_uri=uri, parent=parent))
    assert found.parent.run_id == parent and len(found.runs) == 12 and found.invalid_jobs == []
    assert [r.run_id for r in found.references] == [reference]
    assert find_parent(client, found.experiment_id, "latest").run_id == parent and find_parent(client, found.experiment_id, "none") is None
    run = next(r for r in found.runs if r.status == "FINISHED")
    png = last_sample_grid(client, run.run_id)
    assert png is not None
    with Image.open(io.BytesIO(png)) as grid:  # the fixture shades epoch e of seed s at 40 e + s: the last is epoch 2
        assert grid.getpixel((0, 0)) == 80 + int(run.seed)
    running = next(r for r in found.runs if r.status == "RUNNING")
    assert last_sample_grid(client, running.run_id) is None  # logged none


def test_unknown_experiment_and_parent(hand_store):
    uri, _, _ = hand_store
    client = make_client(uri)
    with pytest.raises(ReportError, match="no experiment 'nope'"):
        read_runs(client, ReportSettings(experiment="nope", tracking_uri=uri))
    with pytest.raises(ReportError, match="no run '0123'"):
        read_runs(client, ReportSettings(experiment="hand", tracking_uri=uri, parent="0123"))


def test_a_parent_run_id_is_read_in_its_own_experiment_whatever_experiment_says(hand_store):
    uri, parent, _ = hand_store
    found = read_runs(make_client(uri), ReportSettings(tracking_uri=uri, parent=parent))  # experiment: the default, ganbench
    assert found.parent.run_id == parent and len(found.runs) == 12 and found.experiment == "hand"
