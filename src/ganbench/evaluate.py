"""The evaluation stage: score a generator against real data and log the numbers to its MLflow run.

``evaluate_generator`` runs at the end of training (and every ``eval.every``
epochs); ``python -m ganbench.evaluate run_id=<id>`` (or ``experiment=<name>``)
loads logged generators back from MLflow and scores them again. Samples are
streamed batch by batch through every feature extractor in one pass; the
classifier, the real-data features and the real-data reference run are
computed once and cached (in the process and on disk), so repeated
evaluations only pay for the samples.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from ganbench.classifier import (
    ClassifierError,
    ClassifierSettings,
    DigitClassifier,
    LoadedClassifier,
    accuracy,
    fit,
    get_classifier,
    load_splits,
    log_classifier_run,
    same_images,
    to_uint8,
    to_unit,
)
from ganbench.data import DataError, cache_root
from ganbench.data.cache import atomic_write, cache_key, file_sha256
from ganbench.locks import file_lock
from ganbench.metrics import (
    CLASSIFIER_EXTRACTOR,
    INCEPTION_EXTRACTOR,
    MetricSettings,
    RealFeatures,
    class_counts,
    classification_report,
    confusion_figure,
    confusion_matrix,
    create_extractor,
    extractor_channels,
    fidelity_metrics,
    format_report,
    histogram_figure,
    intra_fid,
    metric_layers,
    mode_kl,
    modes_covered,
)
from ganbench.progress import progress_bar
from ganbench.tracking import RunLogger, experiment_id, mlflow_run
from ganbench.validate import ConfigError

log = logging.getLogger("ganbench.evaluate")  # not __name__: `python -m` would call it __main__

CHECKPOINT_ARTIFACT = "checkpoints/final.pt"
SPLITS = ("train", "test")


class EvalError(Exception):
    """The evaluation cannot run as asked (missing Inception weights with eval.inception=on, no checkpoint, ...)."""


USER_ERRORS = (ConfigError, DataError, ClassifierError, EvalError)


# --------------------------------------------------------------------------- config


def eval_config_problems(ev: Mapping[str, Any]) -> list[str]:
    """Every problem in the ``eval`` config section, one line each."""
    p: list[str] = []

    def int_at_least(key: str, low: int, allow_null: bool = False) -> None:
        value = ev.get(key) if "." not in key else ev.get(key.split(".")[0], {}).get(key.split(".")[1])
        if allow_null and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            p.append(f"eval.{key}={value!r} is invalid: it must be an integer >= {low}{' or null' if allow_null else ''}")

    int_at_least("num_samples", 2)
    int_at_least("batch_size", 1)
    int_at_least("every", 1, allow_null=True)
    int_at_least("seed", 0)
    int_at_least("reference_limit", 2, allow_null=True)
    int_at_least("heldout_limit", 1, allow_null=True)
    int_at_least("kid_subsets", 1)
    int_at_least("kid_subset_size", 2)
    int_at_least("prc_neighborhood", 1)
    int_at_least("isc_splits", 1)
    int_at_least("inception_num_samples", 2, allow_null=True)
    for key in ("reference_split", "heldout_split"):
        if ev.get(key) not in SPLITS:
            p.append(f"eval.{key}={ev.get(key)!r} is invalid: choose train or test")
    share = ev.get("modes_min_share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        p.append(f"eval.modes_min_share={share!r} is invalid: it must be a number in (0, 1]")
    if inception_mode(ev.get("inception")) not in ("auto", "on", "off"):
        p.append(f"eval.inception={ev.get('inception')!r} is invalid: choose auto, on or off")
    cas = ev.get("cas", {})
    if cas.get("enabled"):
        int_at_least("cas.epochs", 1)
        int_at_least("cas.batch_size", 1)
        if isinstance(cas.get("batch_size"), int) and isinstance(ev.get("num_samples"), int) and cas["batch_size"] > ev["num_samples"]:
            p.append(f"eval.cas.batch_size={cas['batch_size']} exceeds eval.num_samples={ev['num_samples']}; lower it or disable eval.cas.enabled")
    int_at_least("classifier.epochs", 1)
    int_at_least("classifier.batch_size", 1)
    return p


def check_eval_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every problem in ``cfg.eval``."""
    problems = eval_config_problems(OmegaConf.to_container(cfg.eval, resolve=True))  # type: ignore[arg-type]
    if problems:
        raise ConfigError("\n".join(problems))


def inception_mode(value: Any) -> Any:
    """``eval.inception`` as auto/on/off (YAML reads a bare on/off as a boolean)."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


def eval_due(cfg: DictConfig, epoch: int) -> bool:
    """Whether the epoch-end hook should evaluate after ``epoch`` epochs (``eval.every``)."""
    every = cfg.eval.get("every")
    return bool(cfg.eval.enabled and every and epoch % int(every) == 0)


# --------------------------------------------------------------------------- inputs


Batches = Iterator[tuple[Tensor, Tensor]]  # (uint8 (B, 1, S, S) images on the CPU, int64 labels)


def generated_batches(
    generator: nn.Module,
    num_samples: int,
    batch_size: int,
    z_dim: int,
    prior: str,
    num_classes: int,
    device: torch.device,
    seed: int,
) -> Batches:
    """Samples of ``generator`` as uint8 batches with their requested labels; the same ``seed`` gives the same samples.

    Labels cycle 0..C-1 so every class is equally represented; unconditional generators ignore them.
    """
    from ganbench.noise import sample_noise
    from ganbench.runner import generate

    rng = torch.Generator().manual_seed(seed)
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z = sample_noise(prior, n, z_dim, "cpu", generator=rng).to(device)
        labels = torch.arange(start, start + n) % num_classes
        yield to_uint8(generate(generator, z, labels.to(device))).cpu(), labels


def tensor_batches(images: Tensor, labels: Tensor, batch_size: int) -> Batches:
    """A fixed uint8 image set in order, batch by batch."""
    for start in range(0, images.size(0), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]


def subset_index(total: int, limit: int | None, seed: int) -> Tensor:
    """A seeded random subset of ``limit`` indices out of ``total`` (all, in order, when limit is None or >= total).

    Random, not the first N: Hoda's test file is sorted by class.
    """
    if limit is None or limit >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


@dataclass
class Space:
    """One feature space: a torch-fidelity extractor, the real features it is compared with, its sample cap."""

    name: str  # metric suffix: clf or inception
    extractor: Any
    extractor_name: str
    weights_sha256: str
    real: RealFeatures
    limit: int  # samples fed to this extractor per evaluation
    channels: int


@torch.no_grad()
def extract(
    spaces: Sequence[Space], batches: Batches, total: int, description: str, keep: list[Tensor] | None = None
) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
    """Feed every batch once through every space's extractor; features per space and layer, and the labels.

    The images themselves are dropped batch by batch unless ``keep`` (a list) asks for them.
    """
    collected: dict[str, dict[str, list[Tensor]]] = {s.name: {} for s in spaces}
    labels: list[Tensor] = []
    seen = 0
    with progress_bar(description, total) as advance:
        for images, batch_labels in batches:
            labels.append(batch_labels)
            if keep is not None:
                keep.append(images)
            for space in spaces:
                take = min(images.size(0), space.limit - seen)
                if take <= 0:
                    continue
                device = next(iter(space.extractor.parameters()), torch.empty(0)).device
                x = images[:take].to(device)
                if space.channels == 3:
                    x = x.expand(-1, 3, -1, -1)  # grayscale tiled to RGB for Inception-like extractors
                out = space.extractor.convert_features_tuple_to_dict(space.extractor(x))
                for layer, value in out.items():
                    collected[space.name].setdefault(layer, []).append(value.detach().float().cpu())
            seen += images.size(0)
            advance(images.size(0))
    features = {name: {layer: torch.cat(parts) for layer, parts in layers.items()} for name, layers in collected.items()}
    return features, torch.cat(labels) if labels else torch.empty(0, dtype=torch.int64)


# --------------------------------------------------------------------------- inception


def inception_weights(ev: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(weights path or None, reason to skip or None) for the Inception space; never downloads.

    Raises EvalError when eval.inception=on and the weights are missing, or a given file is unusable.
    """
    mode = inception_mode(ev.get("inception"))
    if mode == "off":
        return None, "eval.inception=off"
    name = ev.get("inception_extractor") or INCEPTION_EXTRACTOR
    given = ev.get("inception_weights")
    if given:
        path = Path(str(given)).expanduser()
        if not path.is_file():
            raise EvalError(f"eval.inception_weights={given}: no such file; give the path of the Inception weights or leave it null")
        _check_state_dict(path)
        return str(path), None
    if name != INCEPTION_EXTRACTOR:
        return None, None  # another registered extractor: it brings its own weights (or needs none)
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    hub = Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1]
    if hub.is_file():
        _check_state_dict(hub)
        return str(hub), None
    reason = (
        f"Inception weights not found at {hub} and eval.inception_weights is not set (no download is attempted); "
        f"fetch {URL_INCEPTION_V3} there or pass eval.inception_weights=PATH"
    )
    if mode == "on":
        raise EvalError(f"eval.inception=on but {reason}")
    return None, reason


def _check_state_dict(path: Path) -> None:
    """Refuse weights that are not a plain tensor state dict (torch-fidelity itself unpickles them fully)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EvalError(f"{path} is not a loadable weights file ({first}); replace it with torch-fidelity's Inception weights") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise EvalError(f"{path} is not a state dict of tensors; replace it with torch-fidelity's Inception weights")


# --------------------------------------------------------------------------- the evaluator


@dataclass
class Scores:
    """What one evaluation measured: metrics and the data behind its artifacts."""

    metrics: dict[str, float]
    report: dict[str, Any] | None = None  # per-class precision/recall/F1 (conditional)
    confusion: list[list[int]] | None = None
    intra_fid: dict[int, float] = field(default_factory=dict)
    histogram: list[int] | None = None  # predicted class counts (unconditional)
    real_histogram: list[int] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for the benchmark and the curious

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "intra_fid": {str(k): v for k, v in self.intra_fid.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Scores":
        return cls(**{**data, "intra_fid": {int(k): v for k, v in data.get("intra_fid", {}).items()}})


class Evaluator:
    """Everything fixed for one dataset and eval config: classifier, real features, held-out CAS test set."""

    def __init__(self, cfg: DictConfig, device: torch.device, tracking: tuple[Any, str] | None = None):
        check_eval_config(cfg)
        ev = OmegaConf.to_container(cfg.eval, resolve=True)
        assert isinstance(ev, dict)
        self.ev, self.device = ev, device
        self.settings = MetricSettings.from_config(ev)
        self.num_samples, self.batch_size, self.seed = int(ev["num_samples"]), int(ev["batch_size"]), int(ev["seed"])
        dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
        assert isinstance(dataset, dict)
        self.dataset = str(dataset["name"])
        train, heldout = load_splits(dataset, cfg.data.root, ev["heldout_split"])
        self.splits = {"train": train, ev["heldout_split"]: heldout}
        if ev["reference_split"] in self.splits:
            self.reference = self.splits[ev["reference_split"]]
        else:
            self.reference = load_splits(dataset, cfg.data.root, ev["reference_split"])[1]
        self.heldout = heldout
        self.image_size, self.num_classes = train.image_size, train.num_classes
        # load_splits keeps train and held-out apart; a config can still name one split for both.
        self.heldout_is_reference = same_images(self.reference, heldout)
        if self.heldout_is_reference:
            _warn_once(
                f"{self.dataset}: the held-out split holds the same images as the reference split ({heldout.note or 'same split'}); "
                "the real-data reference and CAS are not measured on held-out images"
            )

        classifier_cfg = ev["classifier"]
        self.classifier: LoadedClassifier = get_classifier(
            train, heldout, ClassifierSettings.from_config(classifier_cfg), device, classifier_cfg.get("path"), tracking
        )
        if self.classifier.model.num_classes != self.num_classes:
            raise ClassifierError(f"{self.classifier.path} predicts {self.classifier.model.num_classes} classes, {self.dataset} has {self.num_classes}")

        ref_index = subset_index(len(self.reference), ev.get("reference_limit"), self.seed)
        self.ref_images = to_uint8(self.reference.images[ref_index])
        self.ref_labels = self.reference.labels[ref_index]
        clf_extractor = create_extractor(CLASSIFIER_EXTRACTOR, str(self.classifier.path), device)
        self.spaces = [self._space("clf", clf_extractor, CLASSIFIER_EXTRACTOR, self.classifier.sha256, self.num_samples, None)]

        self.inception_skipped: str | None = None
        weights, reason = inception_weights(ev)
        if reason is None:
            name = ev.get("inception_extractor") or INCEPTION_EXTRACTOR
            try:
                extractor = create_extractor(name, weights, device)
            except Exception as exc:  # e.g. a registered extractor that wants to download its weights
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                if inception_mode(ev.get("inception")) == "on":
                    raise EvalError(f"eval.inception=on but {name} could not be built ({first})") from None
                reason = f"{name} could not be built ({first})"
            else:
                limit = int(ev.get("inception_num_samples") or self.num_samples)
                sha = file_sha256(weights) if weights else "none"
                # Inception is slow on a CPU: its reference set is capped like its sample count.
                self.spaces.append(self._space("inception", extractor, name, sha, min(limit, self.num_samples), ev.get("inception_num_samples")))
        if reason is not None:
            self.inception_skipped = reason
            _warn_once(f"Inception metrics skipped: {reason}")

        held_index = subset_index(len(heldout), ev.get("heldout_limit"), self.seed + 1)
        self.cas_test_images, self.cas_test_labels = to_uint8(heldout.images[held_index]), heldout.labels[held_index]

    # -- real features, cached on disk keyed by everything they depend on
    def _space(self, name: str, extractor: Any, extractor_name: str, weights_sha: str, limit: int, ref_cap: int | None) -> Space:
        index = subset_index(self.ref_images.size(0), ref_cap, self.seed + 2)
        images, labels = self.ref_images[index], self.ref_labels[index]
        layer_for = metric_layers(extractor_name)
        key = cache_key(
            role="real-features",
            dataset=self.dataset,
            split=self.ev["reference_split"],
            image_size=self.image_size,
            files=[f["sha256"] for f in self.reference.files],
            num_images=len(self.reference),  # a carved split reads the same files as the whole one
            reference_limit=self.ev.get("reference_limit"),
            cap=ref_cap,
            seed=self.seed,
            extractor=extractor_name,
            weights_sha256=weights_sha,
            layers=sorted(set(layer_for.values())),
        )
        path = cache_root() / "eval" / f"real-{self.dataset}-{name}-{key}.pt"
        layers = _load_features(path, images.size(0))
        if layers is None:
            space = Space(name, extractor, extractor_name, weights_sha, None, images.size(0), extractor_channels(extractor))  # type: ignore[arg-type]
            layers, _ = extract([space], tensor_batches(images, labels, self.batch_size), images.size(0), f"real features ({name})")
            layers = layers[name]
            try:
                atomic_write(path, lambda handle: torch.save(layers, handle))
            except OSError as err:
                log.warning("could not cache real features at %s (%s)", path, err)
        prc_index = subset_index(images.size(0), limit, self.seed + 3)
        real = RealFeatures(layers, labels, layer_for, prc_index)
        return Space(name, extractor, extractor_name, weights_sha, real, limit, extractor_channels(extractor))

    @property
    def measured_on(self) -> dict[str, str]:
        """What every number of an evaluation was measured on (logged as tags measured.*)."""
        out = {
            "num_samples": str(self.num_samples),
            "seed": str(self.seed),
            "dataset": self.dataset,
            "reference_split": self.ev["reference_split"],
            "reference_images": str(self.ref_images.size(0)),
            "reference_files": ",".join(f"{Path(f['path']).name}:{f['sha256'][:12]}" for f in self.reference.files),
            "split_note": self.heldout.note or "none",
            "heldout_split": self.ev["heldout_split"],
            "heldout_images": str(self.cas_test_images.size(0)),
            "heldout_is_reference": str(self.heldout_is_reference).lower(),
            "feature_extractor": CLASSIFIER_EXTRACTOR,
            "classifier_sha256": self.classifier.sha256,
            "classifier_test_accuracy": f"{self.classifier.test_accuracy:.4f}",
        }
        inception = next((s for s in self.spaces if s.name == "inception"), None)
        if inception is not None:
            out.update({"inception_extractor": inception.extractor_name, "inception_weights_sha256": inception.weights_sha256, "inception_num_samples": str(inception.limit)})
        else:
            out["inception_extractor"] = "skipped"
        return out

    # -- scoring
    def score(
        self,
        batches: Batches,
        total: int,
        labelled: bool,
        histogram: bool,
        cas_train: str | tuple[Tensor, Tensor] | None,
        description: str,
    ) -> Scores:
        """Score a stream of uint8 images: fidelity in every space, then label metrics and CAS as asked.

        ``cas_train``: None (no CAS), "samples" (train it on the scored images themselves, kept as uint8
        for that: 10,000 28x28 samples are 8 MB, far cheaper than generating them again) or (images, labels).
        """
        clock = time.perf_counter()
        timings: dict[str, float] = {}

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round(now - clock, 3)
            clock = now

        kept: list[Tensor] | None = [] if cas_train == "samples" else None
        features, labels = extract(self.spaces, batches, total, description, kept)
        lap("samples_and_features")
        metrics: dict[str, float] = {}
        for space in self.spaces:
            which = ("fid", "kid", "isc", "prc") if space.name == "clf" else ("fid", "kid", "isc")
            metrics.update(fidelity_metrics(features[space.name], space.real, space.name, self.settings, which))
            lap(f"fidelity_{space.name}")
        clf = self.spaces[0]
        clf_features = features["clf"]
        predicted = clf_features[clf.real.layer_for["isc"]].argmax(1)
        scores = Scores(metrics, timings=timings)
        if labelled:
            matrix = confusion_matrix(labels, predicted, self.num_classes)
            scores.report = classification_report(matrix)
            scores.confusion = matrix.tolist()
            metrics["gen_accuracy"] = scores.report["accuracy"]
            metrics["intra_fid_clf"], scores.intra_fid = intra_fid(clf_features[clf.real.layer_for["fid"]], labels, clf.real.class_stats)
        if histogram:
            counts = class_counts(predicted, self.num_classes)
            real_counts = class_counts(self.ref_labels, self.num_classes)
            scores.histogram, scores.real_histogram = counts.tolist(), real_counts.tolist()
            metrics["modes_covered"] = float(modes_covered(counts, float(self.ev["modes_min_share"])))
            metrics["mode_kl"] = mode_kl(counts, real_counts)
        lap("class_metrics")
        if cas_train is not None:
            images, cas_labels = (torch.cat(kept), labels) if kept is not None else cas_train  # type: ignore[misc]
            metrics["cas"] = self.cas(images, cas_labels)
            lap("cas")
        log.info("evaluation phases (s): %s", timings)
        return scores

    def cas(self, images: Tensor, labels: Tensor) -> float:
        """Classification accuracy score: a fresh classifier trained on ``images`` only, tested on held-out real images."""
        settings = ClassifierSettings.from_config({**self.ev["cas"], "seed": self.seed})
        torch.manual_seed(self.seed)
        model = DigitClassifier(self.image_size, self.num_classes, settings.width, settings.feature_dim, settings.dropout)
        source = lambda epoch: ((to_unit(x), y) for x, y in _shuffled(images, labels, settings.batch_size, self.seed + epoch))  # noqa: E731
        fit(model, source, images.size(0) // settings.batch_size, settings, self.device, "CAS classifier")
        return accuracy(model, self.cas_test_images, self.cas_test_labels, self.device)

    def score_generator(self, generator: nn.Module, conditional: bool, z_dim: int, prior: str) -> Scores:
        """Stream ``num_samples`` samples once through every extractor (and into CAS for conditional models)."""
        batches = generated_batches(generator, self.num_samples, self.batch_size, z_dim, prior, self.num_classes, self.device, self.seed)
        cas = "samples" if conditional and self.ev["cas"]["enabled"] else None
        return self.score(batches, self.num_samples, conditional, not conditional, cas, "evaluating samples")

    def score_real(self) -> Scores:
        """The real-data reference: held-out images scored like samples (their true labels as requested labels).

        Its CAS trains the same quick classifier on as many real reference images: the ceiling for ``cas``.
        """
        n = min(self.num_samples, len(self.heldout))
        index = subset_index(len(self.heldout), n, self.seed + 4)
        images, labels = to_uint8(self.heldout.images[index]), self.heldout.labels[index]
        cas_train = None
        if self.ev["cas"]["enabled"]:
            train_index = subset_index(len(self.reference), n, self.seed + 5)
            cas_train = (to_uint8(self.reference.images[train_index]), self.reference.labels[train_index])
        return self.score(tensor_batches(images, labels, self.batch_size), n, True, True, cas_train, "evaluating held-out real images")


def _shuffled(images: Tensor, labels: Tensor, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Full batches of a fixed set in a seeded random order."""
    order = torch.randperm(images.size(0), generator=torch.Generator().manual_seed(seed))
    for start in range(0, images.size(0) - batch_size + 1, batch_size):
        idx = order[start : start + batch_size]
        yield images[idx], labels[idx]


_EVALUATORS: dict[str, Evaluator] = {}
_WARNED: set[str] = set()
_LOGGED_CLASSIFIERS: set[tuple[str, str]] = set()
_REFERENCE_RUNS: dict[tuple[str, str], str] = {}


def _warn_once(message: str) -> None:
    """One warning line per process for a condition every evaluation would repeat."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def _load_features(path: Path, expected: int) -> dict[str, Tensor] | None:
    if not path.is_file():
        return None
    try:
        layers = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(layers, dict) and layers and all(isinstance(v, Tensor) and v.size(0) == expected for v in layers.values()):
            return layers
    except Exception as err:  # a damaged cache file is recomputed, whatever torch raised
        log.warning("cached real features %s are unreadable (%s); recomputing them", path, type(err).__name__)
        return None
    log.warning("cached real features %s do not match; recomputing them", path)
    return None


def get_evaluator(cfg: DictConfig, device: torch.device, tracking: tuple[Any, str] | None = None) -> Evaluator:
    """The evaluator for this dataset and eval config, built once per process."""
    key = json.dumps(
        {
            "eval": OmegaConf.to_container(cfg.eval, resolve=True),
            "dataset": OmegaConf.to_container(cfg.dataset, resolve=True),
            "root": str(cfg.data.root),
            "device": str(device),
            "cache": str(cache_root()),
        },
        sort_keys=True,
        default=str,
    )
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        evaluator = _EVALUATORS[key] = Evaluator(cfg, device, tracking)
    if tracking is not None and (tracking[0].tracking_uri, evaluator.classifier.sha256) not in _LOGGED_CLASSIFIERS:
        log_classifier_run(tracking[0], tracking[1], evaluator.classifier, "cache")
        _LOGGED_CLASSIFIERS.add((tracking[0].tracking_uri, evaluator.classifier.sha256))
    return evaluator


# --------------------------------------------------------------------------- logging


def log_scores(logger: RunLogger, scores: Scores, step: int, artifact_dir: str, measured_on: Mapping[str, str], title: str = "") -> None:
    """Metrics at ``step``, measurement tags, and the tables and figures behind them under ``artifact_dir``."""
    logger.log_metrics(scores.metrics, step=step)
    logger.flush()
    logger.set_tags({f"measured.{k}": v for k, v in measured_on.items()})
    summary = {"step": step, "metrics": scores.metrics, "measured_on": dict(measured_on), **scores.to_json()}
    logger.log_text(json.dumps(summary, indent=2, sort_keys=True, default=float), f"{artifact_dir}/metrics.json")
    if scores.report is not None and scores.confusion is not None:
        logger.log_text(format_report(scores.report), f"{artifact_dir}/class_report.txt")
        logger.log_figure(confusion_figure(np.asarray(scores.confusion), title), f"{artifact_dir}/confusion_matrix.png")
    if scores.histogram is not None and scores.real_histogram is not None:
        histogram = {"predicted": scores.histogram, "real": scores.real_histogram}
        logger.log_text(json.dumps(histogram, indent=2), f"{artifact_dir}/class_histogram.json")
        logger.log_figure(histogram_figure(np.asarray(scores.histogram), np.asarray(scores.real_histogram), title), f"{artifact_dir}/class_histogram.png")


def reference_run(evaluator: Evaluator, client: Any, experiment: str) -> str:
    """The real-data reference run (tag reference=real) for this setting in this store: found, or computed and logged."""
    measured = {k: v for k, v in evaluator.measured_on.items()}
    key = cache_key(role="reference", measured=measured, eval={k: v for k, v in evaluator.ev.items() if k not in ("enabled", "every", "reference_run")})
    memo = (client.tracking_uri, key)
    if memo in _REFERENCE_RUNS:
        return _REFERENCE_RUNS[memo]
    # Parallel sweep jobs starting cold must log one reference run between them, not one each.
    with file_lock(cache_root() / "eval" / f"reference-{key}.lock"):
        _REFERENCE_RUNS[memo] = _find_or_log_reference(evaluator, client, experiment, key, measured)
    return _REFERENCE_RUNS[memo]


def _find_or_log_reference(evaluator: Evaluator, client: Any, experiment: str, key: str, measured: dict) -> str:
    """The run id of the reference run with ``key`` in ``experiment``, logging it (scores cached on disk) if missing."""
    exp_id = experiment_id(client, experiment)
    found = client.search_runs([exp_id], filter_string=f"tags.reference = 'real' and tags.reference_key = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    path = cache_root() / "eval" / f"reference-{evaluator.dataset}-{key}.json"
    scores = None
    if path.is_file():
        try:
            scores = Scores.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as err:
            log.warning("cached reference scores %s are unreadable (%s); recomputing them", path, err)
    if scores is None:
        scores = evaluator.score_real()
        atomic_write(path, lambda handle: handle.write(json.dumps(scores.to_json(), default=float).encode()))
    tags = {"reference": "real", "role": "reference", "dataset": evaluator.dataset, "reference_key": key}
    if evaluator.inception_skipped:
        tags["inception_skipped"] = evaluator.inception_skipped
    with mlflow_run(client, experiment, f"reference-real-{evaluator.dataset}", tags) as logger:
        logger.log_params({"eval.num_samples": evaluator.num_samples, "dataset.name": evaluator.dataset, "dataset.image_size": evaluator.image_size})
        log_scores(logger, scores, 0, "eval/reference", measured, f"{evaluator.dataset}: held-out real images")
    return logger.run_id


def evaluate_generator(
    cfg: DictConfig,
    generator: nn.Module,
    conditional: bool,
    num_classes: int,
    device: torch.device,
    logger: RunLogger,
    step: int | None = None,
    artifact_dir: str | None = None,
) -> dict[str, float]:
    """Score ``generator`` and log metrics (at ``step``), measurement tags and artifacts to ``logger``'s run.

    Classifier runs and the real-data reference run go to ``cfg.tracking.experiment`` in the same store.
    """
    # Evaluation draws its own seeded randomness (and may train classifiers): the training run's
    # random stream must continue after it exactly as if nothing had happened.
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        return _evaluate_generator(cfg, generator, conditional, num_classes, device, logger, step, artifact_dir)


def _evaluate_generator(
    cfg: DictConfig,
    generator: nn.Module,
    conditional: bool,
    num_classes: int,
    device: torch.device,
    logger: RunLogger,
    step: int | None,
    artifact_dir: str | None,
) -> dict[str, float]:
    experiment = str(cfg.tracking.experiment)
    evaluator = get_evaluator(cfg, device, (logger.client, experiment))
    if num_classes != evaluator.num_classes:
        raise ConfigError(f"the generator has {num_classes} classes but {evaluator.dataset} has {evaluator.num_classes}")
    measured = evaluator.measured_on
    if evaluator.ev.get("reference_run", True):
        measured["reference_run_id"] = reference_run(evaluator, logger.client, experiment)
    started = time.perf_counter()
    scores = evaluator.score_generator(generator, conditional, int(cfg.noise.dim), str(cfg.noise.name))
    # The per-evaluation cost only: classifier training and real features are paid once and cached.
    scores.metrics["eval_seconds"] = time.perf_counter() - started
    step = 0 if step is None else int(step)
    if evaluator.inception_skipped:
        logger.set_tags({"inception_skipped": evaluator.inception_skipped})
    log_scores(logger, scores, step, artifact_dir or f"eval/step_{step:07d}", measured)
    return dict(scores.metrics)


# --------------------------------------------------------------------------- re-scoring logged runs


def load_generator(checkpoint: Mapping[str, Any], device: torch.device) -> tuple[nn.Module, DictConfig]:
    """Rebuild a run's generator from its final checkpoint; returns it with the run's config."""
    from ganbench.models import build_models

    run_cfg = OmegaConf.create(checkpoint["config"])
    model_cfg = OmegaConf.to_container(run_cfg.model, resolve=True)
    stabilize = OmegaConf.to_container(run_cfg.stabilize, resolve=True) if "stabilize" in run_cfg else {}
    generator, _ = build_models(model_cfg, int(run_cfg.noise.dim), int(run_cfg.dataset.image_size), int(checkpoint["num_classes"]), stabilize)
    generator.load_state_dict(checkpoint["generator"])
    return generator.to(device).eval(), run_cfg


def evaluate_run(cfg: DictConfig, client: Any, run_id: str) -> dict[str, float]:
    """Load run ``run_id``'s generator from MLflow, score it with ``cfg.eval`` and add the metrics to that run."""
    from mlflow.exceptions import MlflowException

    from ganbench.checkpoint import CheckpointError, load_checkpoint
    from ganbench.runner import resolve_device

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise EvalError(f"no run {run_id!r} in {cfg.tracking.uri}; check run_id= and tracking.uri=") from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, CHECKPOINT_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise EvalError(f"run {run_id} has no {CHECKPOINT_ARTIFACT} artifact; only finished ganbench training runs can be re-scored") from None
        try:
            checkpoint = load_checkpoint(local)
        except CheckpointError as err:
            raise EvalError(str(err)) from None
    device = resolve_device(cfg.device)
    generator, run_cfg = load_generator(checkpoint, device)
    # The run's model, noise and dataset; this command's eval settings, data location and store.
    run_cfg.eval = cfg.eval
    run_cfg.data = run_cfg.get("data", {}) or {}
    run_cfg.data.root = cfg.data.root
    run_cfg.tracking = OmegaConf.merge(cfg.tracking, {"experiment": client.get_experiment(run.info.experiment_id).name})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logger = RunLogger(client, run_id)
    metrics = evaluate_generator(
        run_cfg,
        generator,
        bool(getattr(generator, "conditional", False)),
        int(checkpoint["num_classes"]),
        device,
        logger,
        step=int(checkpoint.get("step", 0)),
        artifact_dir=f"eval/rescore_{stamp}",
    )
    logger.set_tags({"rescored": stamp})
    return metrics


def runs_to_score(client: Any, experiment: str) -> list[str]:
    """Finished training runs of ``experiment`` (classifier and reference runs left out)."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise EvalError(f"no experiment {experiment!r} in this store; check experiment= and tracking.uri=")
    ids, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'", max_results=1000, page_token=token)
        ids += [r.info.run_id for r in page if r.data.tags.get("role") not in ("classifier", "reference")]
        token = page.token
        if not token:
            return ids


def parse_args(argv: Sequence[str]) -> tuple[str | None, str | None, list[str]]:
    """(run_id, experiment, Hydra overrides) from ``key=value`` arguments."""
    run_id = experiment = None
    overrides = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"argument {arg!r} is not key=value; use run_id=<id> or experiment=<name> plus config overrides")
        if key == "run_id":
            run_id = value
        elif key == "experiment":
            experiment = value
        else:
            overrides.append(arg)
    if (run_id is None) == (experiment is None):
        raise ConfigError("give exactly one of run_id=<id> or experiment=<name>")
    return run_id, experiment, overrides


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganbench.evaluate run_id=<id> | experiment=<name> [eval.num_samples=... tracking.uri=...]``."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    from ganbench.tracking import make_client

    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(levelname)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        run_id, experiment, overrides = parse_args(argv)
        try:
            with initialize_config_module("ganbench.conf", version_base="1.3"):
                cfg = compose("config", overrides=overrides)
        except HydraException as exc:
            raise ConfigError(str(exc).splitlines()[0]) from None
        check_eval_config(cfg)
        if cfg.train.num_threads:
            torch.set_num_threads(int(cfg.train.num_threads))
        client = make_client(cfg.tracking.uri)
        ids = [run_id] if run_id else runs_to_score(client, str(experiment))
        if not ids:
            raise EvalError(f"experiment {experiment!r} has no finished training runs to score")
        failed = 0
        for rid in ids:
            try:
                metrics = evaluate_run(cfg, client, rid)
            except EvalError as err:
                if run_id:
                    raise
                failed += 1
                print(f"ganbench.evaluate: skipped {rid}: {err}", file=sys.stderr)
                continue
            print(f"run {rid}: " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if math.isfinite(v)))
        return 1 if failed == len(ids) else 0
    except USER_ERRORS as exc:
        for line in str(exc).splitlines():
            print(f"ganbench.evaluate: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
