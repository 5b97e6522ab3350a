"""The Hydra app end to end: config composition, a real run into a temporary SQLite MLflow store, the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient

from ganbench.app import run, trains_on_heldout
from ganbench.data import load_dataset
from ganbench.train.checkpoint import load_checkpoint

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def runs_of(uri: str, experiment: str = "ganbench"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client, ([] if exp is None else client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]))


def cli(*args: str, env_extra: dict | None = None, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "ganbench", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_defaults_give_a_sensible_hoda_run():
    cfg = compose_cfg()
    assert (cfg.model.name, cfg.loss.name, cfg.dataset.name, cfg.noise.name) == ("dcgan", "bce", "hoda", "normal")
    assert dict(cfg.stabilize) == {}
    for key in ("seed", "device", "train.epochs", "train.max_steps", "train.batch_size", "data.limit", "tracking.uri", "tracking.experiment"):
        node = cfg
        for part in key.split("."):
            assert part in node, key
            node = node[part]


def test_stabilize_list_combines_tricks():
    cfg = compose_cfg("stabilize=[smooth,noisy]")
    assert list(cfg.stabilize) == ["smooth", "noisy"]
    assert cfg.stabilize.smooth.real_target == 0.9 and cfg.stabilize.noisy.flip_prob == 0.05


@pytest.fixture(scope="module")
def finished_run(data_root, tmp_path_factory, new_store):
    tmp = tmp_path_factory.mktemp("store")
    uri = new_store(tmp / "mlflow.db")
    cfg = compose_cfg(
        f"data.root={data_root}",
        "data.limit=256",
        "train.epochs=2",
        "train.batch_size=32",
        "eval.enabled=false",
        f"tracking.uri={uri}",
        "seed=3",
    )
    result = run(cfg)
    client, runs = runs_of(uri)
    assert len(runs) == 1
    return client, runs[0], result


def test_run_is_recorded_finished_with_grid_tags_and_params(finished_run):
    client, r, result = finished_run
    assert r.info.status == "FINISHED" and r.info.run_id == result["run_id"]
    tags = r.data.tags
    assert {k: tags[k] for k in ("model", "loss", "stabilize", "dataset", "noise", "seed")} == {
        "model": "dcgan", "loss": "bce", "stabilize": "none", "dataset": "hoda", "noise": "normal", "seed": "3",
    }
    params = r.data.params
    assert params["train.batch_size"] == "32" and params["data.limit"] == "256" and params["model.name"] == "dcgan"
    # The run says which Hoda file it trained on, with its checksum.
    assert "RemainingSamples.cdb" in params["data.files"]
    assert params["env.torch"].startswith("2.")


def test_per_step_losses_are_logged_with_steps(finished_run):
    client, r, result = finished_run
    steps = 2 * (256 // 32)
    assert result["steps"] == steps
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        history = client.get_metric_history(r.info.run_id, key)
        assert sorted(m.step for m in history) == list(range(1, steps + 1)), key
    assert 0.0 <= r.data.metrics["d_real"] <= 1.0  # BCE: D's output read as a probability


def test_images_config_and_checkpoint_are_logged(finished_run, tmp_path):
    client, r, _ = finished_run
    paths = {a.path for d in ("samples", "plots", "checkpoints") for a in client.list_artifacts(r.info.run_id, d)}
    assert {"samples/epoch_001.png", "samples/epoch_002.png", "samples/training.gif", "plots/loss_curves.png", "checkpoints/final.pt"} <= paths
    local = Path(client.download_artifacts(r.info.run_id, "samples/epoch_002.png", str(tmp_path)))
    from PIL import Image

    grid = Image.open(local)
    assert grid.size == (10 * 30 + 2, 10 * 30 + 2)  # 10 x 10 samples of 28 px with 2 px padding
    ckpt = load_checkpoint(client.download_artifacts(r.info.run_id, "checkpoints/final.pt", str(tmp_path)))
    assert ckpt["config"]["model"]["name"] == "dcgan" and "generator" in ckpt
    config_text = Path(client.download_artifacts(r.info.run_id, "config.yaml", str(tmp_path))).read_text()
    assert "batch_size: 32" in config_text


def test_cli_rejects_bad_values_in_one_line_and_records_nothing(tmp_path, run_cli):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_cli("ganbench", "train.batch_size=0", "optim.lr=-1", f"tracking.uri={uri}", f"hydra.run.dir={tmp_path}/out")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert "ganbench: error: train.batch_size=0 is invalid: it must be an integer >= 1" in lines
    assert "ganbench: error: optim.lr=-1 is invalid: a learning rate must be a number > 0" in lines
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset=nosuch", "In 'config': Could not find 'dataset/nosuch'; Available options in 'dataset': hoda, mnist, sign_digits"),
        ("train.epoch=3", "Could not override 'train.epoch'. To append to your config use +train.epoch=3"),
        ("train.epochs=[1", "no viable alternative at input '[1'"),
    ],
)
def test_cli_reports_hydras_own_errors_in_one_line(tmp_path, run_cli, override, message):
    # Hydra printed these over several lines (the options one a line, its search path, a stack-trace hint).
    proc = run_cli("ganbench", override, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.run.dir={tmp_path}/out")
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"ganbench: error: {message}"), line
    assert not (tmp_path / "mlflow.db").exists()


def test_cli_trains_on_mnist_and_says_it_used_the_test_split(tmp_path, data_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli("dataset=mnist", "data.limit=128", "train.epochs=1", "train.batch_size=64", "eval.enabled=false",
               f"tracking.uri={uri}", env_extra={"GANBENCH_DATA": str(data_root)})
    assert proc.returncode == 0, proc.stderr
    assert "test split" in proc.stdout + proc.stderr
    _, runs = runs_of(uri)
    assert runs[0].info.status == "FINISHED" and runs[0].data.tags["dataset"] == "mnist"
    assert "test split" in runs[0].data.params["data.note"]


@pytest.mark.parametrize("dataset, seen", [("mnist", True), ("hoda", False)])
def test_training_on_the_heldout_split_is_said_so_the_leaderboard_keeps_such_runs_apart(dataset, seen, data_root):
    # MNIST here has only its test split: the GAN trains on the digits its held-out metrics score (as S1, S2 and S4).
    cfg = compose_cfg(f"dataset={dataset}", "data.limit=256", f"data.root={data_root}")
    data = load_dataset(dataset, split="train", image_size=28, root=str(data_root), limit=256)
    assert trains_on_heldout(cfg, data, "test") is seen
    assert trains_on_heldout(compose_cfg("dataset.train_with_test=true", f"data.root={data_root}"), data, "test")


def test_a_run_is_scored_at_the_end_and_every_epoch_when_asked(tmp_path, data_root, quick_classifier, quick_eval_overrides,
                                                              mlflow_uri):
    uri = mlflow_uri
    cfg = compose_cfg("model=acgan", f"data.root={data_root}", "data.limit=256", "train.epochs=2", "train.batch_size=64",
                      "eval.every=1", f"tracking.uri={uri}", f"train.checkpoint_dir={tmp_path}/ck", *quick_eval_overrides)
    result = run(cfg)
    assert 0 <= result["metrics"]["gen_accuracy"] <= 1
    client = MlflowClient(uri)
    r = client.get_run(result["run_id"])
    assert r.info.status == "FINISHED"
    assert {"fid_clf", "kid_clf", "kid_clf_std", "is_clf", "precision_clf", "recall_clf", "gen_accuracy", "intra_fid_clf", "cas"} <= set(r.data.metrics)
    # A quality curve: scored after epoch 1 and after training, at those steps.
    assert sorted(m.step for m in client.get_metric_history(r.info.run_id, "fid_clf")) == [4, 8]
    assert r.data.tags["measured.num_samples"] == "500"


def test_the_users_sweep_trains_four_runs_whose_targets_are_smoothed_or_flipped(tmp_path, mlflow_uri):
    uri = mlflow_uri
    proc = cli("-m", "model=dcgan,wgan", "stabilize=smooth,noisy", "data.limit=320", "train.batch_size=32", "train.epochs=1",
               "eval.enabled=false", f"tracking.uri={uri}", f"train.checkpoint_dir={tmp_path}/ck",
               f"hydra.sweep.dir={tmp_path}/multirun", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    client, runs = runs_of(uri)
    children = [r for r in runs if r.data.tags.get("role") != "sweep"]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    by_choice = {(r.data.tags["model"], r.data.tags["stabilize"]): r for r in children}
    assert set(by_choice) == {("dcgan", "smooth"), ("dcgan", "noisy"), ("wgan", "smooth"), ("wgan", "noisy")}
    assert by_choice["wgan", "smooth"].data.tags["loss"] == "wasserstein"

    def targets(model, trick, key):
        return {round(m.value, 6) for m in client.get_metric_history(by_choice[model, trick].info.run_id, key)}

    # Smoothing: the real target has magnitude 0.9 under BCE (0/1 targets) and Wasserstein (+-1 targets).
    assert targets("dcgan", "smooth", "d_target_real") == {0.9} and targets("dcgan", "smooth", "d_target_fake") == {0.0}
    assert targets("wgan", "smooth", "d_target_real") == {0.9} and targets("wgan", "smooth", "d_target_fake") == {-1.0}
    # Noisy labels: int(0.05 * 32) = 1 of each batch's 32 targets is flipped to the other side (seed S0b's code).
    assert targets("dcgan", "noisy", "d_target_real") == {31 / 32} and targets("dcgan", "noisy", "d_target_fake") == {1 / 32}
    assert targets("wgan", "noisy", "d_target_real") == {30 / 32} and targets("wgan", "noisy", "d_target_fake") == {-30 / 32}


def test_rerunning_a_finished_run_says_so_and_fresh_trains_again(tmp_path, mlflow_uri, capsys):
    args = ("data.limit=128", "train.batch_size=64", "train.epochs=1", "eval.enabled=false", "tracking.log_model=false",
            f"tracking.uri={mlflow_uri}", f"train.checkpoint_dir={tmp_path}/ck")
    first = run(compose_cfg(*args))
    capsys.readouterr()
    again = run(compose_cfg(*args))
    assert again["run_id"] == first["run_id"] and again["reused"] is True
    err = capsys.readouterr().err
    assert f"this configuration already ran: run {first['run_id']} (FINISHED)" in err and "fresh=true" in err
    fresh = run(compose_cfg(*args, "fresh=true"))
    assert fresh["run_id"] != first["run_id"] and "reused" not in fresh
    _, runs = runs_of(mlflow_uri)
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
    assert len({r.data.tags["run_key"] for r in runs}) == 1  # the same job, trained twice on purpose
