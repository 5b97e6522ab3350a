"""The evaluation stage end to end: a short conditional Hoda run scored, re-scored from MLflow, and its caches."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch_fidelity
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from torch_fidelity import FeatureExtractorBase

from ganbench import evaluate
from ganbench.app import run
from ganbench.evaluate import (
    EvalError,
    check_eval_config,
    eval_due,
    evaluate_generator,
    generated_batches,
    get_evaluator,
    inception_weights,
    parse_args,
    tensor_batches,
)
from ganbench.metrics import CLASSIFIER_EXTRACTOR, GeneratorInput, UInt8Images, register_extractor
from ganbench.models import build_models
from ganbench.tracking import make_client, mlflow_run
from ganbench.validate import ConfigError

CLF_METRICS = {"fid_clf", "kid_clf", "kid_clf_std", "is_clf", "precision_clf", "recall_clf"}
CONDITIONAL_METRICS = {"gen_accuracy", "intra_fid_clf", "cas"}
UNCONDITIONAL_METRICS = {"modes_covered", "mode_kl"}
INCEPTION_METRICS = {"fid_inception", "kid_inception", "is_inception"}


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


class TinyRGBExtractor(FeatureExtractorBase):
    """Stands in for Inception (whose weights are a download): uint8 RGB in, a fixed random projection out."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        self.proj = torch.nn.Conv2d(3, 16, 7, stride=4)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))
        self.head = torch.nn.Linear(16, 10)
        torch.nn.init.normal_(self.head.weight, generator=torch.Generator().manual_seed(1))

    @staticmethod
    def get_provided_features_list():
        return "pool", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "pool", "kid": "pool", "prc": "pool"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3, "Inception-like extractors get grayscale tiled to 3 channels"
        pool = torch.relu(self.proj(x.float() / 255)).mean(dim=(2, 3))
        out = {"pool": pool, "logits": self.head(pool)}
        return tuple(out[k] for k in self.features_list)


register_extractor("ganbench-test-tiny-rgb", TinyRGBExtractor)


@pytest.fixture
def no_hub_weights(tmp_path, monkeypatch):
    """A torch hub cache without the Inception weights (what every machine here has)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


@pytest.fixture(scope="module")
def trained_run(quick_classifier, quick_eval_overrides, store):
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
        rc = evaluate.main([f"run_id={trained_run}", f"tracking.uri={store}", *quick_eval_overrides])
    assert rc == 0
    return MlflowClient(store).get_run(trained_run)


def test_conditional_run_logs_every_metric_name(rescored):
    metrics = rescored.data.metrics
    assert CLF_METRICS | CONDITIONAL_METRICS <= set(metrics)
    assert not INCEPTION_METRICS & set(metrics)
    for name in CLF_METRICS | CONDITIONAL_METRICS:
        assert math.isfinite(metrics[name]), name
    assert 0 <= metrics["gen_accuracy"] <= 1 and 0 <= metrics["cas"] <= 1 and 1 <= metrics["is_clf"] <= 10


def test_inception_is_skipped_with_a_reason_and_measurements_are_tagged(rescored, quick_classifier):
    tags = rescored.data.tags
    assert "Inception weights not found" in tags["inception_skipped"] and "eval.inception_weights" in tags["inception_skipped"]
    assert tags["measured.num_samples"] == "500"
    assert tags["measured.reference_split"] == "train" and tags["measured.reference_images"] == "2000"
    assert tags["measured.feature_extractor"] == CLASSIFIER_EXTRACTOR
    assert tags["measured.classifier_sha256"] == quick_classifier.sha256
    assert tags["measured.inception_extractor"] == "skipped"


def test_conditional_artifacts_are_logged(rescored, store, tmp_path):
    client = MlflowClient(store)
    folder = [a.path for a in client.list_artifacts(rescored.info.run_id, "eval")][0]
    assert folder.startswith("eval/rescore_")
    files = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(rescored.info.run_id, folder)}
    assert {"metrics.json", "class_report.txt", "confusion_matrix.png"} <= files
    summary = json.loads(Path(client.download_artifacts(rescored.info.run_id, f"{folder}/metrics.json", str(tmp_path))).read_text())
    assert len(summary["confusion"]) == 10 and sum(map(sum, summary["confusion"])) == 500
    assert summary["measured_on"]["num_samples"] == "500"


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


def test_experiment_mode_rescores_training_runs_only_and_reuses_the_reference(rescored, trained_run, quick_eval_overrides, store, no_hub_weights, capsys):
    assert evaluate.main(["experiment=ganbench", f"tracking.uri={store}", *quick_eval_overrides]) == 0
    out = capsys.readouterr().out
    assert out.count("run ") == 1 and trained_run in out  # not the classifier or reference runs
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("ganbench").experiment_id
    assert len(client.search_runs([exp], "tags.reference = 'real'")) == 1
    history = client.get_metric_history(trained_run, "fid_clf")
    assert len(history) == 2 and history[0].value == pytest.approx(history[1].value)  # same seed, same samples


def test_unknown_run_is_one_clear_error(store, capsys):
    assert evaluate.main(["run_id=0123456789abcdef", f"tracking.uri={store}"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "no run '0123456789abcdef'" in err[0]


def test_arguments_must_name_one_target():
    assert parse_args(["run_id=abc", "eval.num_samples=10"]) == ("abc", None, ["eval.num_samples=10"])
    with pytest.raises(ConfigError, match="exactly one"):
        parse_args(["eval.num_samples=10"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_args(["run_id"])


@pytest.fixture(scope="module")
def dcgan(quick_classifier, quick_eval_overrides):
    cfg = compose_cfg("model=dcgan", *quick_eval_overrides)
    torch.manual_seed(0)
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 28, 10)
    return cfg, generator


def test_unconditional_generator_gets_mode_metrics_and_the_stand_in_inception_metrics(dcgan, tmp_path):
    # Inception's weights are a download: a small registered extractor takes its place (eval.inception=on).
    cfg, generator = dcgan
    stand_in = {"inception": "on", "inception_extractor": "ganbench-test-tiny-rgb", "inception_num_samples": 300}
    cfg = OmegaConf.merge(cfg, {"tracking": {"uri": f"sqlite:///{tmp_path}/m.db"}, "eval": {"reference_run": False, **stand_in}})
    client = make_client(cfg.tracking.uri)
    rng_before = torch.get_rng_state()
    with mlflow_run(client, "ganbench", "dcgan", {}) as logger:
        metrics = evaluate_generator(cfg, generator, False, 10, torch.device("cpu"), logger, step=7)
    assert torch.equal(torch.get_rng_state(), rng_before)  # training's random stream is left as it was
    assert CLF_METRICS | UNCONDITIONAL_METRICS | INCEPTION_METRICS <= set(metrics)
    assert not CONDITIONAL_METRICS & set(metrics)
    assert 0 <= metrics["modes_covered"] <= 10 and metrics["mode_kl"] >= 0
    assert all(math.isfinite(metrics[m]) for m in INCEPTION_METRICS)
    files = {a.path for a in client.list_artifacts(logger.run_id, "eval/step_0000007")}
    assert {"eval/step_0000007/class_histogram.json", "eval/step_0000007/class_histogram.png"} <= files
    assert client.get_metric_history(logger.run_id, "fid_clf")[0].step == 7
    tags = client.get_run(logger.run_id).data.tags
    assert tags["measured.inception_extractor"] == "ganbench-test-tiny-rgb" and tags["measured.inception_num_samples"] == "300"
    assert "inception_skipped" not in tags


def test_inception_on_without_weights_is_an_error(no_hub_weights):
    cfg = compose_cfg("eval.inception=on")
    with pytest.raises(EvalError, match="eval.inception=on but Inception weights not found"):
        inception_weights(OmegaConf.to_container(cfg.eval))
    off = compose_cfg("eval.inception=off")
    assert inception_weights(OmegaConf.to_container(off.eval)) == (None, "eval.inception=off")
    auto = inception_weights(OmegaConf.to_container(compose_cfg().eval))
    assert auto[0] is None and "no download is attempted" in auto[1]


def test_inception_weights_must_be_a_plain_state_dict(tmp_path):
    missing = compose_cfg(f"eval.inception_weights={tmp_path}/none.pth")
    with pytest.raises(EvalError, match="no such file"):
        inception_weights(OmegaConf.to_container(missing.eval))
    bad = tmp_path / "bad.pth"
    torch.save({"w": torch.zeros(2), "code": EvalError("x")}, bad)
    with pytest.raises(EvalError, match="not a loadable weights file"):
        inception_weights(OmegaConf.to_container(compose_cfg(f"eval.inception_weights={bad}").eval))
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(2)}, good)
    assert inception_weights(OmegaConf.to_container(compose_cfg(f"eval.inception_weights={good}").eval)) == (str(good), None)


def test_metrics_equal_torch_fidelitys_calculate_metrics_on_the_same_samples(dcgan, quick_classifier, no_hub_weights):
    cfg, generator = dcgan
    evaluator = get_evaluator(cfg, torch.device("cpu"))
    batches = list(generated_batches(generator, 500, 250, cfg.noise.dim, "normal", 10, torch.device("cpu"), 0))
    samples = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    ours = evaluator.score(tensor_batches(samples, labels, 250), 500, False, False, None, "test").metrics
    reference = evaluator.ref_images
    theirs = torch_fidelity.calculate_metrics(
        input1=UInt8Images(samples), input2=UInt8Images(reference), feature_extractor=CLASSIFIER_EXTRACTOR,
        feature_extractor_weights_path=str(quick_classifier.path), fid=True, kid=True, isc=True,
        kid_subsets=20, kid_subset_size=500, rng_seed=0, isc_splits=10, cuda=False, cache=False, verbose=False,
        save_cpu_ram=True,  # no DataLoader worker processes
    )  # fmt: skip
    assert ours["fid_clf"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours["kid_clf"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours["is_clf"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    # (Precision/recall differ by design: ganbench compares with a reference subset as large as the sample set.)

    # The streaming wrapper plugs a generator into torch-fidelity directly.
    wrapped = GeneratorInput(generator, cfg.noise.dim, "normal", 10, conditional=False)
    out = torch_fidelity.calculate_metrics(
        input1=wrapped, input1_model_num_samples=300, input2=UInt8Images(reference), feature_extractor=CLASSIFIER_EXTRACTOR,
        feature_extractor_weights_path=str(quick_classifier.path), fid=True, cuda=False, cache=False, verbose=False, batch_size=100, save_cpu_ram=True,
    )  # fmt: skip
    assert math.isfinite(out["frechet_inception_distance"])


def test_generated_batches_are_streamed_deterministic_and_class_balanced(dcgan):
    cfg, generator = dcgan
    make = lambda: list(generated_batches(generator, 25, 10, cfg.noise.dim, "normal", 10, torch.device("cpu"), 3))  # noqa: E731
    first, second = make(), make()
    assert [b[0].shape[0] for b in first] == [10, 10, 5]
    assert all(b[0].dtype == torch.uint8 for b in first)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second))
    assert torch.cat([b[1] for b in first]).bincount().tolist() == [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]


def test_evaluator_is_built_once_and_real_features_are_cached_on_disk(dcgan, no_hub_weights):
    from ganbench.data import cache_root

    cfg, _ = dcgan
    first = get_evaluator(cfg, torch.device("cpu"))
    assert get_evaluator(cfg, torch.device("cpu")) is first
    assert list((cache_root() / "eval").glob("real-hoda-clf-*.pt"))


def test_eval_config_is_validated():
    check_eval_config(compose_cfg())
    with pytest.raises(ConfigError) as info:
        check_eval_config(compose_cfg("eval.num_samples=1", "eval.inception=maybe", "eval.reference_split=val", "eval.modes_min_share=0", "eval.cas.enabled=false"))
    lines = str(info.value).splitlines()
    assert len(lines) == 4 and any("eval.inception" in line for line in lines)
    with pytest.raises(ConfigError, match="eval.cas.batch_size"):
        check_eval_config(compose_cfg("eval.num_samples=100"))


def test_eval_due_follows_eval_every():
    assert not eval_due(compose_cfg(), 3)
    cfg = compose_cfg("eval.every=2")
    assert [eval_due(cfg, e) for e in (1, 2, 3, 4)] == [False, True, False, True]
    assert not eval_due(compose_cfg("eval.every=2", "eval.enabled=false"), 2)


def test_parallel_jobs_starting_cold_log_one_reference_run(dcgan, tmp_path, no_hub_weights):
    from concurrent.futures import ThreadPoolExecutor

    cfg, _ = dcgan
    evaluator = get_evaluator(cfg, torch.device("cpu"))
    client = make_client(f"sqlite:///{tmp_path}/m.db")
    client.create_experiment("ganbench")
    evaluate._REFERENCE_RUNS.clear()  # as in fresh sweep workers, which have no memo yet
    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(lambda _: evaluate.reference_run(evaluator, client, "ganbench"), range(2)))
    exp = client.get_experiment_by_name("ganbench").experiment_id
    assert len(client.search_runs([exp], "tags.reference = 'real'")) == 1
    assert ids[0] == ids[1]
