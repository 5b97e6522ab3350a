"""A trained run as MLflow objects (experiment kind, dataset input, generator model) and digits on demand."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from PIL import Image

import mlflow
import mlflow.pytorch
from ganbench import report
from ganbench.app import run
from ganbench.noise import sample_noise
from ganbench.sample import main as sample_main
from ganbench.tracking import experiment_id, layout


@pytest.fixture(scope="module")
def trained(tmp_path_factory, migrated_store):
    tmp = tmp_path_factory.mktemp("sample")
    db = tmp / "mlflow.db"
    db.write_bytes(migrated_store.read_bytes())
    uri = f"sqlite:///{db}"
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=["model=cgan_conv", "data.limit=256", "train.batch_size=64", "train.epochs=1",
                                           "eval.enabled=false", f"tracking.uri={uri}", f"train.checkpoint_dir={tmp}/ck"])
    result = run(cfg)
    return uri, result["run_id"], tmp


def test_a_run_is_recorded_as_mlflow_objects(trained):
    uri, run_id, _ = trained
    client = MlflowClient(uri)
    r = client.get_run(run_id)
    assert client.get_experiment(r.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    (dataset,) = [d.dataset for d in r.inputs.dataset_inputs]
    assert dataset.name == "hoda-train" and len(dataset.digest) == 12 and "DigitDB" in dataset.source
    model = mlflow.pytorch.load_model(r.data.tags["generator_model_uri"])
    z = sample_noise("normal", 4, 100, generator=torch.Generator().manual_seed(0))
    digits = model.eval()(z, torch.tensor([1, 2, 3, 4]))
    assert digits.shape == (4, 1, 28, 28) and digits.min() >= -1 and digits.max() <= 1


def test_sample_writes_the_requested_label_exactly_as_the_generator_draws_it(trained, tmp_path, run_cli):
    uri, run_id, _ = trained
    out = tmp_path / "threes.png"
    proc = run_cli(sample_main, f"run_id={run_id}", "n=10", "label=3", "seed=5", f"out={out}", f"tracking.uri={uri}")
    assert proc.returncode == 0, proc.stderr
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 + 30, 2 + 10 * 30)  # one row of ten 28-px digits, 2-px padding
    # The same digits, drawn directly from the logged model with label 3 and the same seed.
    model = mlflow.pytorch.load_model(MlflowClient(uri).get_run(run_id).data.tags["generator_model_uri"]).eval()
    z = sample_noise("normal", 10, 100, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        direct = model(z, torch.full((10,), 3))
    first = ((direct[0, 0] + 1) * 127.5).round().clamp(0, 255).numpy()
    assert np.abs(grid[2:30, 2:30].astype(float) - first).max() <= 1.0


def test_sample_writes_npz_and_draws_from_a_models_uri(trained, tmp_path, run_cli):
    # (which run `run_id=best` picks among several: test_best_ranks_by_the_metric_of_the_sweeps_logged_leaderboard)
    uri, run_id, _ = trained
    out = tmp_path / "best.npz"
    proc = run_cli(sample_main, "run_id=best", "parent=none", "metric=d_loss", "n=12", f"out={out}", f"tracking.uri={uri}")
    assert proc.returncode == 0 and f"samples of run {run_id}" in proc.stdout
    saved = np.load(out)
    assert saved["images"].shape == (12, 28, 28) and saved["images"].dtype == np.uint8
    assert sorted(saved["labels"].tolist()) == sorted([i % 10 for i in range(12)])
    model_uri = MlflowClient(uri).get_run(run_id).data.tags["generator_model_uri"]
    assert run_cli(sample_main, f"model={model_uri}", "n=3", "grid=false", f"out={tmp_path / 'each'}", f"tracking.uri={uri}").returncode == 0
    assert len(list((tmp_path / "each").glob("*.png"))) == 3


@pytest.mark.parametrize("args,message", [
    (["run_id=nope"], "no run 'nope'"),
    (["label=12"], "label=12 is invalid"),
    (["n=0"], "n='0' is invalid"),
    ([], "give exactly one of run_id="),
    (["colour=red"], "is not key=value"),
])
def test_sample_bad_input_is_one_line_exit_2(trained, run_cli, args, message):
    uri, run_id, _ = trained
    base = [] if any(a.startswith("run_id") for a in args) or not args or "colour=red" in args else [f"run_id={run_id}"]
    proc = run_cli(sample_main, *base, *args, f"tracking.uri={uri}")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("ganbench.sample: error:") and message in line


def sweep_of_copies(uri, run_id, experiment, scores, tmp_path):
    """A finished sweep in ``experiment`` whose children copy the trained run (its noise params and final checkpoint),
    one configuration per ``model: (fid_clf, gen_accuracy)`` of ``scores``; returns the parent's and the children's ids."""
    client = MlflowClient(uri)
    exp = experiment_id(client, experiment)
    trained = client.get_run(run_id).data
    checkpoint = client.download_artifacts(run_id, layout.CHECKPOINT_ARTIFACT, str(tmp_path))
    parent = client.create_run(exp, tags={layout.ROLE_TAG: layout.ROLE_SWEEP}).info.run_id
    children = []
    for model, (fid, accuracy) in scores.items():
        tags = {axis: trained.tags[axis] for axis in (*layout.GRID_AXES, layout.SEED_TAG, layout.GENERATOR_MODEL_TAG)}
        child = client.create_run(exp, tags={**tags, "model": model, layout.PARENT_TAG: parent}).info.run_id
        params = [Param(k, v) for k, v in trained.params.items() if k in ("noise.name", "noise.dim", "data.num_classes")]
        client.log_batch(child, metrics=[Metric("fid_clf", fid, 0, 0), Metric("gen_accuracy", accuracy, 0, 0)], params=params)
        client.log_artifact(child, checkpoint, layout.CHECKPOINT_DIR)
        client.set_terminated(child, "FINISHED")
        children.append(child)
    client.set_terminated(parent, "FINISHED")
    return parent, children


def test_best_finds_a_sweep_logged_to_another_experiment_from_its_parent_run_id(trained, tmp_path, run_cli):
    uri, run_id, _ = trained
    parent, (by_fid, _) = sweep_of_copies(uri, run_id, "demo_x", {"a": (1.0, 0.2), "b": (2.0, 0.9)}, tmp_path)
    proc = run_cli(sample_main, "run_id=best", f"parent={parent}", "n=2", f"out={tmp_path / 'best.png'}", f"tracking.uri={uri}")
    assert proc.returncode == 0, proc.stderr
    assert f"samples of run {by_fid}" in proc.stdout  # tracking.experiment is ganbench; the sweep is in demo_x


def test_best_ranks_by_the_metric_of_the_sweeps_logged_leaderboard(trained, tmp_path, run_cli):
    uri, run_id, _ = trained
    parent, (by_fid, by_accuracy) = sweep_of_copies(uri, run_id, "ranked", {"a": (1.0, 0.2), "b": (2.0, 0.9)}, tmp_path)
    best = ["run_id=best", f"parent={parent}", "n=2", f"out={tmp_path / 'best.png'}", f"tracking.uri={uri}"]
    assert f"samples of run {by_fid}" in run_cli(sample_main, *best).stdout  # no leaderboard logged yet: fid_clf
    logged = [f"tracking.uri={uri}", f"parent={parent}", "metric=gen_accuracy", f"out={tmp_path / 'r'}"]
    assert report.main(logged, echo=lambda s: None) == 0
    assert f"samples of run {by_accuracy}" in run_cli(sample_main, *best).stdout  # the leaderboard's winner
    assert f"samples of run {by_fid}" in run_cli(sample_main, *best, "metric=fid_clf").stdout  # an explicit metric wins


def test_sample_draws_a_registered_model_by_version_and_by_alias(trained, tmp_path, run_cli):
    uri, run_id, _ = trained
    client = MlflowClient(uri)
    logged = client.get_run(run_id).data.tags[layout.GENERATOR_MODEL_TAG]
    mlflow.set_tracking_uri(uri)
    version = mlflow.register_model(logged, "digits_gen").version
    client.set_registered_model_alias("digits_gen", "champion", version)
    drawn = []
    for i, uri_given in enumerate((logged, f"models:/digits_gen/{version}", "models:/digits_gen@champion")):
        out = tmp_path / f"{i}.npz"
        proc = run_cli(sample_main, f"model={uri_given}", "n=4", "seed=3", f"out={out}", f"tracking.uri={uri}")
        assert proc.returncode == 0, proc.stderr
        assert f"samples of run {run_id}" in proc.stdout
        drawn.append(np.load(out)["images"])
    assert np.array_equal(drawn[0], drawn[1]) and np.array_equal(drawn[0], drawn[2])
    for unknown in ("models:/digits_gen/99", "models:/digits_gen@nobody", "models:/no_such_gen/1", "models:/m-0123"):
        proc = run_cli(sample_main, f"model={unknown}", f"out={tmp_path / 'x.png'}", f"tracking.uri={uri}")
        assert proc.returncode == 2
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"ganbench.sample: error: model={unknown}: no such model")


def test_latest_draws_the_highest_version_of_a_registered_model(trained, tmp_path, run_cli):
    uri, run_id, _ = trained
    _, (copy,) = sweep_of_copies(uri, run_id, "versions", {"a": (1.0, 0.2)}, tmp_path)
    client = MlflowClient(uri)
    client.create_registered_model("gens")
    source = client.get_run(run_id).data.tags[layout.GENERATOR_MODEL_TAG]
    for run in (run_id, copy, run_id):  # versions 1, 2, 3; version 3 deleted: "latest" is the highest left, 2
        client.create_model_version("gens", source, run_id=run)
    client.delete_model_version("gens", "3")
    proc = run_cli(sample_main, "model=models:/gens/latest", "n=2", f"out={tmp_path / 'l.png'}", f"tracking.uri={uri}")
    assert proc.returncode == 0, proc.stderr
    assert f"samples of run {copy}" in proc.stdout  # version 2, the highest left
    client.create_registered_model("empty_gens")
    proc = run_cli(sample_main, "model=models:/empty_gens/latest", f"out={tmp_path / 'e.png'}", f"tracking.uri={uri}")
    assert proc.returncode == 2 and "no registered model 'empty_gens' with a version" in proc.stderr


class _Trap:
    """A pickle that, unpickled, writes a file: what a hostile model in a shared store could do instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).write_text, ("unpickled",))


def test_sample_never_unpickles_the_logged_model(trained, tmp_path, run_cli):
    uri, run_id, _ = trained
    client = MlflowClient(uri)
    model_id = client.get_run(run_id).data.tags[layout.GENERATOR_MODEL_TAG].removeprefix("models:/")
    pickled = Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://")) / "data" / "model.pth"
    kept, marker = pickled.read_bytes(), tmp_path / "ran"
    try:
        torch.save(_Trap(marker), pickled)
        for how in (f"run_id={run_id}", f"model=models:/{model_id}"):
            proc = run_cli(sample_main, how, "n=2", f"out={tmp_path / 'd.png'}", f"tracking.uri={uri}")
            assert proc.returncode == 0, proc.stderr
        assert not marker.exists()  # the digits came from the checkpoint, read as tensors only
    finally:
        pickled.write_bytes(kept)
