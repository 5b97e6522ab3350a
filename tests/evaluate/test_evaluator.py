"""The evaluator: scoring a generator for real, its metrics against torch-fidelity's, its caches, Inception's weights."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil

import pytest
import torch
import torch_fidelity
from omegaconf import OmegaConf
from torch_fidelity import FeatureExtractorBase

from ganbench.data import cache_root
from ganbench.data.preprocess import to_uint8
from ganbench.evaluate import EvalError, EvalSettings, evaluate_generator
from ganbench.evaluate import reference
from ganbench.evaluate.evaluator import Evaluator, get_evaluator
from ganbench.evaluate.scores import PAIR_IMAGES, Scores
from ganbench.evaluate.features import (
    CLASSIFIER_EXTRACTOR, GeneratorInput, UInt8Images, inception_weights, register_extractor, subset_index, tensor_batches,
)
from ganbench.evaluate.neighbours import NearestPairs
from ganbench.models import build_models
from ganbench.models.sampling import generated_batches
from ganbench.tracking import experiment_id, make_client, mlflow_run
from ganbench.tracking.layout import NEAREST_PAIRS_FILE, REFERENCE_ARTIFACT_DIR

CLF_METRICS = {"fid_clf", "kid_clf", "kid_clf_std", "is_clf", "precision_clf", "recall_clf"}
CONDITIONAL_METRICS = {"gen_accuracy", "intra_fid_clf", "cas"}
UNCONDITIONAL_METRICS = {"modes_covered", "mode_kl"}
INCEPTION_METRICS = {"fid_inception", "kid_inception", "is_inception"}


class TinyRGBExtractor(FeatureExtractorBase):
    """Stands in for Inception (whose weights are a download): uint8 RGB in, a fixed random projection out."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        self.proj = torch.nn.Conv2d(3, 16, 7, stride=4)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))
        self.head = torch.nn.Linear(16, 10)
        torch.nn.init.normal_(self.head.weight, generator=torch.Generator().manual_seed(1))
        for bias in (self.proj.bias, self.head.bias):  # every instance the same function, as real weights make it
            torch.nn.init.zeros_(bias)

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
        pool = self.proj(x.float() / 255).mean(dim=(2, 3))  # linear: a full-rank covariance, so FID is well conditioned
        out = {"pool": pool, "logits": self.head(pool)}
        return tuple(out[k] for k in self.features_list)


register_extractor("ganbench-test-tiny-rgb", TinyRGBExtractor)


@pytest.fixture(scope="module")
def dcgan(quick_classifier, quick_eval_overrides, compose_cfg):
    cfg = compose_cfg("model=dcgan", *quick_eval_overrides)
    torch.manual_seed(0)
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 28, 10)
    return cfg, generator


@pytest.mark.slow
def test_unconditional_generator_gets_mode_metrics_and_the_stand_in_inception_metrics(dcgan, tmp_path, mlflow_uri):
    # Inception's weights are a download: a small registered extractor takes its place (eval.inception=on).
    cfg, generator = dcgan
    stand_in = {"inception": "on", "inception_extractor": "ganbench-test-tiny-rgb", "inception_num_samples": 300}
    cfg = OmegaConf.merge(cfg, {"tracking": {"uri": mlflow_uri}, "eval": {"reference_run": False, **stand_in}})
    settings = EvalSettings.from_config(cfg)
    client = make_client(cfg.tracking.uri)
    rng_before = torch.get_rng_state()
    with mlflow_run(client, "ganbench", "dcgan", {}) as logger:
        metrics = evaluate_generator(settings, generator, False, 10, torch.device("cpu"), logger, step=7)
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


def test_inception_on_without_weights_is_an_error(no_hub_weights, compose_cfg):
    cfg = compose_cfg("eval.inception=on")
    with pytest.raises(EvalError, match="eval.inception=on but Inception weights not found"):
        inception_weights(EvalSettings.from_config(cfg).inception)
    off = compose_cfg("eval.inception=off")
    assert inception_weights(EvalSettings.from_config(off).inception) == (None, "eval.inception=off")
    auto = inception_weights(EvalSettings.from_config(compose_cfg()).inception)
    assert auto[0] is None and "no download is attempted" in auto[1]


def test_inception_weights_must_be_a_plain_state_dict(tmp_path, compose_cfg):
    missing = compose_cfg(f"eval.inception_weights={tmp_path}/none.pth")
    with pytest.raises(EvalError, match="no such file"):
        inception_weights(EvalSettings.from_config(missing).inception)
    bad = tmp_path / "bad.pth"
    torch.save({"w": torch.zeros(2), "code": EvalError("x")}, bad)
    with pytest.raises(EvalError, match="not a loadable weights file"):
        inception_weights(EvalSettings.from_config(compose_cfg(f"eval.inception_weights={bad}")).inception)
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(2)}, good)
    assert inception_weights(EvalSettings.from_config(compose_cfg(f"eval.inception_weights={good}")).inception) == (str(good), None)


@pytest.mark.slow
def test_metrics_equal_torch_fidelitys_calculate_metrics_on_the_same_samples(dcgan, quick_classifier, no_hub_weights):
    cfg, generator = dcgan
    evaluator = get_evaluator(EvalSettings.from_config(cfg), torch.device("cpu"))
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

    # The streaming wrapper plugs a generator into torch-fidelity directly: the FID of exactly the images it drew,
    # with labels cycling over the classes across batches.
    drawn: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = generator.register_forward_hook(lambda module, args, out: drawn.append((args[1].clone(), out.detach().clone())))
    wrapped = GeneratorInput(generator, cfg.noise.dim, "normal", 10, conditional=False)
    common = dict(input2=UInt8Images(reference), feature_extractor=CLASSIFIER_EXTRACTOR, feature_extractor_weights_path=str(quick_classifier.path),
                  fid=True, cuda=False, cache=False, verbose=False, batch_size=100, save_cpu_ram=True)  # fmt: skip
    try:
        out = torch_fidelity.calculate_metrics(input1=wrapped, input1_model_num_samples=300, **common)
    finally:
        hook.remove()
    assert torch.equal(torch.cat([labels for labels, _ in drawn]), torch.arange(300) % 10)
    images = to_uint8(torch.cat([fakes for _, fakes in drawn]))
    assert images.shape == (300, 1, 28, 28)
    direct = torch_fidelity.calculate_metrics(input1=UInt8Images(images), **common)
    assert out["frechet_inception_distance"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-6)


@pytest.mark.slow
def test_inception_space_metrics_equal_torch_fidelitys_on_the_same_samples_and_reference(dcgan, tmp_path):
    # The Inception path with a stand-in extractor (the weights are a download): ganbench's fid/kid/is_inception
    # against torch-fidelity's own calculate_metrics on the first eval.inception_num_samples samples, RGB-tiled.
    cfg, generator = dcgan
    stand_in = {"inception": "on", "inception_extractor": "ganbench-test-tiny-rgb", "inception_num_samples": 300, "reference_run": False}
    settings = EvalSettings.from_config(OmegaConf.merge(cfg, {"eval": stand_in}))
    evaluator = get_evaluator(settings, torch.device("cpu"))
    batches = list(generated_batches(generator, 500, 250, cfg.noise.dim, "normal", 10, torch.device("cpu"), 0))
    samples, labels = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    ours = evaluator.score(tensor_batches(samples, labels, 250), 500, False, False, None, "test").metrics
    reference = evaluator.ref_images[subset_index(evaluator.ref_images.size(0), 300, settings.seed + 2)]
    m = settings.metrics
    theirs = torch_fidelity.calculate_metrics(
        input1=UInt8Images(samples[:300], 3), input2=UInt8Images(reference, 3), feature_extractor="ganbench-test-tiny-rgb",
        fid=True, kid=True, isc=True, kid_subsets=m.kid_subsets, kid_subset_size=300, rng_seed=m.seed, isc_splits=m.isc_splits,
        cuda=False, cache=False, verbose=False, save_cpu_ram=True,
    )  # fmt: skip
    assert ours["fid_inception"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours["kid_inception"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours["is_inception"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert ours["fid_inception"] != pytest.approx(ours["fid_clf"], rel=1e-2)  # another space, not the classifier's


@pytest.mark.slow
def test_generated_batches_are_streamed_deterministic_and_class_balanced(dcgan):
    cfg, generator = dcgan
    make = lambda: list(generated_batches(generator, 25, 10, cfg.noise.dim, "normal", 10, torch.device("cpu"), 3))  # noqa: E731
    first, second = make(), make()
    assert [b[0].shape[0] for b in first] == [10, 10, 5]
    assert all(b[0].dtype == torch.uint8 for b in first)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second))
    assert torch.cat([b[1] for b in first]).bincount().tolist() == [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]


@pytest.mark.slow
def test_evaluator_is_built_once_and_real_features_are_cached_on_disk(dcgan, quick_classifier, no_hub_weights, cache_dir):
    cfg, _ = dcgan  # an empty cache folder; the session's classifier by its path
    settings = EvalSettings.from_config(OmegaConf.merge(cfg, {"eval": {"classifier": {"path": str(quick_classifier.path)}}}))
    cpu = torch.device("cpu")
    first = get_evaluator(settings, cpu)
    assert get_evaluator(settings, cpu) is first  # once per process
    (cached,) = (cache_dir / "eval").glob("real-hoda-clf-*.pt")
    written = cached.stat().st_mtime_ns

    def same_features(evaluator: Evaluator) -> bool:
        ours, theirs = evaluator.spaces[0].real.layers, first.spaces[0].real.layers
        return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)

    assert same_features(Evaluator(settings, cpu))  # as another process builds it: read from the file...
    assert cached.stat().st_mtime_ns == written  # ... not extracted and written again
    cached.unlink()
    assert same_features(Evaluator(settings, cpu)) and cached.is_file()  # a missing file is extracted again


@pytest.mark.slow
def test_parallel_jobs_starting_cold_log_one_reference_run(dcgan, tmp_path, no_hub_weights, mlflow_uri):
    from concurrent.futures import ThreadPoolExecutor

    cfg, _ = dcgan
    evaluator = get_evaluator(EvalSettings.from_config(cfg), torch.device("cpu"))
    client = make_client(mlflow_uri)
    client.create_experiment("ganbench")
    reference.forget_reference_runs()  # as in fresh sweep workers, which have no memo yet
    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(lambda _: reference.reference_run(evaluator, client, "ganbench"), range(2)))
    exp = client.get_experiment_by_name("ganbench").experiment_id
    assert len(client.search_runs([exp], "tags.reference = 'real'")) == 1
    assert ids[0] == ids[1]


@pytest.mark.slow
def test_memorisation_reuses_the_reference_features_of_the_whole_training_set(quick_classifier, quick_eval_overrides, compose_cfg, no_hub_weights):
    # The default: FID's reference is the whole training split, the very images memorisation compares with.
    cfg = compose_cfg("model=dcgan", *quick_eval_overrides, "eval.reference_limit=null", "eval.cas.enabled=false", "eval.inception=off")
    evaluator = get_evaluator(EvalSettings.from_config(cfg), torch.device("cpu"))
    train, real = evaluator.splits["train"], evaluator.spaces[0].real
    assert evaluator.memo_train is real.layers[real.layer_for["fid"]]
    extracted = evaluator._clf_features("memo-train", train, "train", torch.arange(len(train)))  # what it would extract
    torch.testing.assert_close(evaluator.memo_train, extracted)


def test_scores_keep_the_pair_grid_through_json_only_when_asked():
    pairs = NearestPairs(torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8), torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8), [0.5, 1.0, 2.0])
    scores = Scores({"fid_clf": 1.5}, intra_fid={3: 2.0}, pairs=pairs)
    plain = json.loads(json.dumps(scores.to_json()))  # metrics.json: distances for readers, no pixels
    assert plain["nearest_pair_distances"] == [0.5, 1.0, 2.0] and Scores.from_json(plain).pairs is None
    back = Scores.from_json(json.loads(json.dumps(scores.to_json(pair_images=True))))
    assert back.pairs is not None and back.pairs.distances == [0.5, 1.0, 2.0]
    assert torch.equal(back.pairs.samples, pairs.samples) and torch.equal(back.pairs.train, pairs.train)
    assert back.metrics == scores.metrics and back.intra_fid == {3: 2.0}


def reference_files(client, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, REFERENCE_ARTIFACT_DIR)}


@pytest.mark.slow
def test_a_reference_run_from_cached_scores_keeps_its_pair_grid(dcgan, no_hub_weights, mlflow_uri, tmp_path, monkeypatch):
    cfg, _ = dcgan
    evaluator = get_evaluator(EvalSettings.from_config(cfg), torch.device("cpu"))
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))  # after the evaluator: only the reference scores land here
    client = make_client(mlflow_uri)
    reference.forget_reference_runs()
    first = reference.reference_run(evaluator, client, "first")  # scored now and cached
    (cached,) = (cache_root() / "eval").glob("reference-hoda-*.json")
    written = cached.stat().st_mtime_ns
    reference.forget_reference_runs()  # as a later process, which reads the scores from the cache
    second = reference.reference_run(evaluator, client, "second")
    assert second != first
    assert cached.stat().st_mtime_ns == written  # not scored again
    pairs = f"{REFERENCE_ARTIFACT_DIR}/{NEAREST_PAIRS_FILE}"
    assert pairs in reference_files(client, first) and pairs in reference_files(client, second)
    # A cache written before the grid was cached (no pixels) is scored again rather than logged without the grid.
    data = json.loads(cached.read_text())
    data.pop(PAIR_IMAGES)
    cached.write_text(json.dumps(data))
    reference.forget_reference_runs()
    third = reference.reference_run(evaluator, client, "third")
    assert pairs in reference_files(client, third) and PAIR_IMAGES in json.loads(cached.read_text())


ROUNDS = 8


def _reference_on_its_own_machine(evaluator, uri, cache, ids, barrier):
    """One job on a machine of its own (its own cache, so its own file lock): each round, the reference run at once with the other."""
    os.environ["GANBENCH_CACHE"] = str(cache)
    client = make_client(uri)
    for k in range(ROUNDS):
        reference.forget_reference_runs()
        barrier.wait(timeout=30)
        ids.put((k, reference.reference_run(evaluator, client, f"machines-{k}")))


@pytest.mark.slow
def test_jobs_on_two_machines_settle_on_one_reference_run(dcgan, tmp_path, no_hub_weights, mlflow_uri, run_together):
    # SLURM nodes with caches of their own do not share reference_run's file lock: both can log the row. Each then
    # keeps the earliest, deleting its own when it came second, so every job names one run and the store holds one.
    cfg, _ = dcgan
    evaluator = get_evaluator(EvalSettings.from_config(cfg), torch.device("cpu"))
    client = make_client(mlflow_uri)
    reference.reference_run(evaluator, client, "warm-up")  # the real images' scores, cached for both "machines"
    scores = list((cache_root() / "eval").glob("reference-*.json"))
    for k in range(ROUNDS):
        experiment_id(client, f"machines-{k}")
    caches = [tmp_path / f"machine-{m}" for m in range(2)]
    for cache in caches:
        (cache / "eval").mkdir(parents=True)
        for path in scores:
            shutil.copy(path, cache / "eval" / path.name)
    ids = multiprocessing.get_context("fork").Queue()  # the evaluator is handed over as it is; only MLflow work races
    run_together(_reference_on_its_own_machine, [(evaluator, mlflow_uri, cache, ids) for cache in caches])

    named: dict[int, set[str]] = {}
    for _ in range(2 * ROUNDS):
        k, run_id = ids.get(timeout=10)
        named.setdefault(k, set()).add(run_id)
    for k in range(ROUNDS):
        exp = client.get_experiment_by_name(f"machines-{k}").experiment_id
        active = [r.info.run_id for r in client.search_runs([exp], "tags.reference = 'real'")]
        assert named[k] == set(active) and len(active) == 1
