"""A trained run as MLflow objects (experiment kind, dataset input, generator model) and digits on demand."""

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient
from PIL import Image

import mlflow.pytorch
from ganbench.app import run
from ganbench.noise import sample_noise
from ganbench.sample import main as sample_main


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


def test_sample_writes_npz_and_finds_the_best_run_and_a_models_uri(trained, tmp_path, run_cli):
    uri, run_id, _ = trained
    out = tmp_path / "best.npz"
    assert run_cli(sample_main, "run_id=best", "parent=none", "metric=d_loss", "n=12", f"out={out}", f"tracking.uri={uri}").returncode == 0
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
