"""Re-scoring logged runs: a short conditional Hoda run scored again from MLflow by ``python -m ganbench.evaluate``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from ganbench.app import run
from ganbench.errors import ConfigError
from ganbench.evaluate.features import CLASSIFIER_EXTRACTOR
from ganbench.evaluate.rescore import main, parse_args

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLF_METRICS = {"fid_clf", "kid_clf", "kid_clf_std", "is_clf", "precision_clf", "recall_clf"}
CONDITIONAL_METRICS = {"gen_accuracy", "intra_fid_clf", "cas"}
UNCONDITIONAL_METRICS = {"modes_covered", "mode_kl"}
INCEPTION_METRICS = {"fid_inception", "kid_inception", "is_inception"}


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    return new_store(tmp_path_factory.mktemp("store") / "mlflow.db")


@pytest.fixture(scope="module")
def trained_run(quick_classifier, quick_eval_overrides, store, compose_cfg):
    """A short conditional run on real Hoda (evaluated by its own command below, not by the app)."""
    cfg = compose_cfg("model=cgan_conv", "data.limit=512", "train.epochs=1", "train.batch_size=64", f"tracking.uri={store}", "eval.enabled=false", *quick_eval_overrides)
    return run(cfg)["run_id"]


@pytest.fixture(scope="module")
def rescored(trained_run, quick_eval_overrides, store):
    """The run re-scored by ``python -m ganbench.evaluate run_id=...`` (called in-process)."""
    with pytest.MonkeyPatch.context() as mp:
        import tempfile

        home = tempfile.mkdtemp()
        mp.setenv("TORCH_HOME", home)
        mp.setattr(torch.hub, "_hub_dir", None)
        rc = main([f"run_id={trained_run}", f"tracking.uri={store}", *quick_eval_overrides])
    assert rc == 0
    return MlflowClient(store).get_run(trained_run)


@pytest.mark.slow
def test_conditional_run_logs_every_metric_name(rescored):
    metrics = rescored.data.metrics
    assert CLF_METRICS | CONDITIONAL_METRICS <= set(metrics)
    assert not INCEPTION_METRICS & set(metrics)
    for name in CLF_METRICS | CONDITIONAL_METRICS:
        assert math.isfinite(metrics[name]), name
    assert 0 <= metrics["gen_accuracy"] <= 1 and 0 <= metrics["cas"] <= 1 and 1 <= metrics["is_clf"] <= 10


@pytest.mark.slow
def test_inception_is_skipped_with_a_reason_and_measurements_are_tagged(rescored, quick_classifier):
    tags = rescored.data.tags
    assert "Inception weights not found" in tags["inception_skipped"] and "eval.inception_weights" in tags["inception_skipped"]
    assert tags["measured.num_samples"] == "500"
    assert tags["measured.reference_split"] == "train" and tags["measured.reference_images"] == "2000"
    assert tags["measured.feature_extractor"] == CLASSIFIER_EXTRACTOR
    assert tags["measured.classifier_sha256"] == quick_classifier.sha256
    assert tags["measured.inception_extractor"] == "skipped"
    assert tags["measured.cas_updates"] == "3"  # 500 samples in batches of 128, one epoch, min_steps 0 (quick settings)


@pytest.mark.slow
def test_conditional_artifacts_are_logged(rescored, store, tmp_path):
    client = MlflowClient(store)
    folder = [a.path for a in client.list_artifacts(rescored.info.run_id, "eval")][0]
    assert folder.startswith("eval/rescore_")
    files = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(rescored.info.run_id, folder)}
    assert {"metrics.json", "class_report.txt", "confusion_matrix.png"} <= files
    summary = json.loads(Path(client.download_artifacts(rescored.info.run_id, f"{folder}/metrics.json", str(tmp_path))).read_text())
    assert len(summary["confusion"]) == 10 and sum(map(sum, summary["confusion"])) == 500
    assert summary["measured_on"]["num_samples"] == "500"


@pytest.mark.slow
def test_reference_and_classifier_runs_sit_beside_the_run(rescored, store, quick_classifier):
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("ganbench").experiment_id
    (reference,) = client.search_runs([exp], "tags.reference = 'real'")
    (classifier,) = client.search_runs([exp], "tags.role = 'classifier'")
    assert rescored.data.tags["measured.reference_run_id"] == reference.info.run_id
    assert classifier.data.metrics["test_accuracy"] == pytest.approx(quick_classifier.test_accuracy)
    ref = reference.data.metrics
    assert CLF_METRICS | CONDITIONAL_METRICS | UNCONDITIONAL_METRICS <= set(ref)
    # Real held-out images against real training images: the floor for FID, the ceiling for accuracy.
    assert ref["fid_clf"] < 0.1 * rescored.data.metrics["fid_clf"]
    assert ref["gen_accuracy"] > 0.85 and ref["modes_covered"] == 10 and ref["mode_kl"] < 0.05


@pytest.mark.slow
def test_experiment_mode_rescores_training_runs_only_and_reuses_the_reference(rescored, trained_run, quick_eval_overrides, store, no_hub_weights, capsys):
    assert main(["experiment=ganbench", f"tracking.uri={store}", *quick_eval_overrides]) == 0
    out = capsys.readouterr().out
    assert out.count("run ") == 1 and trained_run in out  # not the classifier or reference runs
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("ganbench").experiment_id
    assert len(client.search_runs([exp], "tags.reference = 'real'")) == 1
    history = client.get_metric_history(trained_run, "fid_clf")
    assert len(history) == 2 and history[0].value == pytest.approx(history[1].value)  # same seed, same samples


def test_unknown_run_is_one_clear_error(store, capsys):
    MlflowClient(store).search_experiments()  # the store exists (MLflow logs its creation otherwise)
    capsys.readouterr()
    assert main(["run_id=0123456789abcdef", f"tracking.uri={store}"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "no run '0123456789abcdef'" in err[0]


def test_arguments_must_name_one_target():
    assert parse_args(["run_id=abc", "eval.num_samples=10"]) == ("abc", None, ["eval.num_samples=10"])
    with pytest.raises(ConfigError, match="exactly one"):
        parse_args(["eval.num_samples=10"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_args(["run_id"])


def test_the_main_apps_spelling_names_the_experiment_too():
    assert parse_args(["tracking.experiment=exp", "eval.num_samples=10"]) == (None, "exp", ["eval.num_samples=10"])
    assert parse_args(["experiment=exp", "tracking.experiment=exp"]) == (None, "exp", [])
    with pytest.raises(ConfigError, match="two experiments"):
        parse_args(["experiment=a", "tracking.experiment=b"])
    with pytest.raises(ConfigError, match="exactly one"):
        parse_args(["run_id=abc", "tracking.experiment=exp"])


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    store = f"sqlite:///{tmp_path}/m.db"
    for argv, message in (
        ([f"tracking.uri={store}"], "give exactly one of run_id=<id> or experiment=<name>"),
        (["run_id"], "is not key=value"),
        (["run_id=x", "eval.no_such_key=1"], "eval.no_such_key"),
        (["run_id=x", "eval.num_samples=1", "eval.cas.enabled=false"], "eval.num_samples=1 is invalid"),
        (["run_id=x", "dataset=mnist"], "dataset=mnist: a re-scoring takes the run's own model, dataset and noise"),
        (["run_id=x", "+model.generator.width=8"], "+model.generator.width=8: a re-scoring takes the run's own"),
    ):
        assert main(argv) == 2, argv
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ganbench.evaluate:")]
        assert len(err) == 1 and err[0].startswith("ganbench.evaluate: error: ") and message in err[0], (argv, err)


def test_python_m_ganbench_evaluate_accepts_tracking_experiment(tmp_path, mlflow_uri):
    store = mlflow_uri
    MlflowClient(store).create_experiment("empty")
    out = subprocess.run(
        [sys.executable, "-m", "ganbench.evaluate", "tracking.experiment=empty", f"tracking.uri={store}"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=dict(os.environ), timeout=300,
    )  # fmt: skip
    # The experiment was found and searched (an unknown one would say "no experiment"): it simply has no runs.
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("ganbench.evaluate:")]
    assert errors == ["ganbench.evaluate: error: experiment 'empty' has no finished training runs to score"]


@pytest.mark.parametrize("target", ["run_id=abc", "experiment=ganbench"])
def test_an_unreachable_server_is_one_line_naming_it(dead_server_uri, capsys, target):
    # MLflow's client retried it for about five minutes, then said "no run 'abc'" (pytest-timeout bounds this test).
    assert main([target, f"tracking.uri={dead_server_uri}"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("ganbench.evaluate: error: cannot reach the MLflow tracking server at "), err
    assert dead_server_uri in err[0]


@pytest.mark.parametrize("target", ["run_id=abc", "experiment=ganbench"])
def test_a_missing_store_is_refused_and_nothing_is_created(tmp_path, capsys, target):
    uri = f"sqlite:///{tmp_path}/nodir/none.db"
    assert main([target, f"tracking.uri={uri}"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"ganbench.evaluate: error: no MLflow store at {uri}; give tracking.uri= of the store the runs were logged to"]
    assert list(tmp_path.iterdir()) == []  # no folder, empty store or lock file


@pytest.mark.parametrize(
    "override,message",
    [
        ("eval=nosuch", "In 'config': Could not find 'eval/nosuch'; Available options in 'eval': default"),
        ("eval.classifier.epoch=3", "Could not override 'eval.classifier.epoch'. To append to your config use +eval.classifier.epoch=3"),
        ("eval.classifier.lr=-1", "eval.classifier.lr=-1 is invalid: a learning rate must be a number > 0"),
    ],
)
def test_a_bad_override_is_one_line_with_hydras_choices(tmp_path, capsys, override, message):
    assert main(["run_id=abc", override, f"tracking.uri=sqlite:///{tmp_path}/m.db"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"ganbench.evaluate: error: {message}"]
    assert not (tmp_path / "m.db").exists()
