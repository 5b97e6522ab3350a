"""Hand-made runs for the report tests: as ``RunRecord`` objects (``record``, ``hand_made_records``) and written
to a real temporary SQLite MLflow store (``hand_store``: a sweep parent, 12 children and a reference run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from PIL import Image

from ganbench import report
from ganbench.report import RunRecord
from ganbench.tracking import experiment_id, make_client


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


@pytest.fixture
def make_record():
    return record


@pytest.fixture
def hand_records():
    return hand_made_records()


def grid_png(shade: int) -> Image.Image:
    return Image.new("L", (32, 32), color=shade)


@pytest.fixture(scope="session")
def hand_store(tmp_path_factory, new_store):
    """A SQLite store with a sweep parent, 12 hand-made children (4 configurations x 3 seeds) and a reference run."""
    tmp = tmp_path_factory.mktemp("hand")
    uri = new_store(tmp / "hand.db")
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


@pytest.fixture
def report_files():
    """``report_files(uri, parent, out, *extra)``: run the CLI in-process and read the three files back."""

    def run(uri, parent, out, *extra, experiment="experiment=hand"):
        code = report.main([f"tracking.uri={uri}", experiment, f"parent={parent}", f"out={out}", *extra], echo=lambda s: None)
        assert code == 0
        return {kind: (Path(out) / f"leaderboard.{kind}").read_text(encoding="utf-8") for kind in ("md", "csv", "html")}

    return run
