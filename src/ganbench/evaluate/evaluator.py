"""The evaluator: everything fixed for one dataset and eval setting, built once per process, and the scoring itself.

The classifier, the real-data features and the held-out CAS test set are prepared once (and cached on
disk), so repeated evaluations only pay for the samples, which are streamed batch by batch through
every feature space in one pass.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.data import cache_root
from ganbench.data.cache import cache_key, file_sha256
from ganbench.data.preprocess import to_uint8
from ganbench.errors import first_line
from ganbench.evaluate.classifier import LoadedClassifier, get_classifier, load_splits, log_classifier_run, same_images
from ganbench.evaluate.classifier_net import accuracy, train_cas_classifier
from ganbench.evaluate.errors import ClassifierError, EvalError
from ganbench.evaluate.features import (
    CLASSIFIER_EXTRACTOR,
    INCEPTION_EXTRACTOR,
    Batches,
    Space,
    create_extractor,
    extract,
    extractor_channels,
    inception_weights,
    metric_layers,
    real_features,
    subset_index,
    tensor_batches,
)
from ganbench.evaluate.metrics import (
    class_counts,
    classification_report,
    confusion_matrix,
    fidelity_metrics,
    intra_fid,
    mode_kl,
    modes_covered,
)
from ganbench.evaluate.settings import EvalSettings
from ganbench.models.sampling import generated_batches

log = logging.getLogger("ganbench.evaluate")  # not __name__: `python -m` would call it __main__


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
    """Everything fixed for one dataset and eval setting: classifier, real features, held-out CAS test set."""

    def __init__(self, settings: EvalSettings, device: torch.device, tracking: tuple[Any, str] | None = None):
        self.settings, self.device = settings, device
        self.num_samples, self.batch_size, self.seed = settings.num_samples, settings.batch_size, settings.seed
        self.dataset = settings.dataset_name
        train, heldout = load_splits(settings.dataset, settings.data_root, settings.heldout_split)
        self.splits = {"train": train, settings.heldout_split: heldout}
        if settings.reference_split in self.splits:
            self.reference = self.splits[settings.reference_split]
        else:
            self.reference = load_splits(settings.dataset, settings.data_root, settings.reference_split)[1]
        self.heldout = heldout
        self.image_size, self.num_classes = train.image_size, train.num_classes
        # load_splits keeps train and held-out apart; a config can still name one split for both.
        self.heldout_is_reference = same_images(self.reference, heldout)
        if self.heldout_is_reference:
            warn_once(
                f"{self.dataset}: the held-out split holds the same images as the reference split ({heldout.note or 'same split'}); "
                "the real-data reference and CAS are not measured on held-out images"
            )

        self.classifier: LoadedClassifier = get_classifier(train, heldout, settings.classifier, device, settings.classifier_path, tracking)
        if self.classifier.model.num_classes != self.num_classes:
            raise ClassifierError(f"{self.classifier.path} predicts {self.classifier.model.num_classes} classes, {self.dataset} has {self.num_classes}")

        ref_index = subset_index(len(self.reference), settings.reference_limit, self.seed)
        self.ref_images = to_uint8(self.reference.images[ref_index])
        self.ref_labels = self.reference.labels[ref_index]
        clf_extractor = create_extractor(CLASSIFIER_EXTRACTOR, str(self.classifier.path), device)
        self.spaces = [self._space("clf", clf_extractor, CLASSIFIER_EXTRACTOR, self.classifier.sha256, self.num_samples, None)]

        self.inception_skipped: str | None = None
        inception = settings.inception
        weights, reason = inception_weights(inception)
        if reason is None:
            name = inception.extractor or INCEPTION_EXTRACTOR
            try:
                extractor = create_extractor(name, weights, device)
            except Exception as exc:  # e.g. a registered extractor that wants to download its weights
                if inception.mode == "on":
                    raise EvalError(f"eval.inception=on but {name} could not be built ({first_line(exc)})") from None
                reason = f"{name} could not be built ({first_line(exc)})"
            else:
                limit = int(inception.num_samples or self.num_samples)
                sha = file_sha256(weights) if weights else "none"
                # Inception is slow on a CPU: its reference set is capped like its sample count.
                self.spaces.append(self._space("inception", extractor, name, sha, min(limit, self.num_samples), inception.num_samples))
        if reason is not None:
            self.inception_skipped = reason
            warn_once(f"Inception metrics skipped: {reason}")

        held_index = subset_index(len(heldout), settings.heldout_limit, self.seed + 1)
        self.cas_test_images, self.cas_test_labels = to_uint8(heldout.images[held_index]), heldout.labels[held_index]

    def _space(self, name: str, extractor: Any, extractor_name: str, weights_sha: str, limit: int, ref_cap: int | None) -> Space:
        """A feature space with its real features, cached on disk keyed by everything they depend on."""
        index = subset_index(self.ref_images.size(0), ref_cap, self.seed + 2)
        images, labels = self.ref_images[index], self.ref_labels[index]
        key = cache_key(
            role="real-features",
            dataset=self.dataset,
            split=self.settings.reference_split,
            image_size=self.image_size,
            files=[f["sha256"] for f in self.reference.files],
            num_images=len(self.reference),  # a carved split reads the same files as the whole one
            reference_limit=self.settings.reference_limit,
            cap=ref_cap,
            seed=self.seed,
            extractor=extractor_name,
            weights_sha256=weights_sha,
            layers=sorted(set(metric_layers(extractor_name).values())),
        )
        path = cache_root() / "eval" / f"real-{self.dataset}-{name}-{key}.pt"
        space = Space(name, extractor, extractor_name, weights_sha, None, limit, extractor_channels(extractor))
        prc_index = subset_index(images.size(0), limit, self.seed + 3)
        space.real = real_features(space, images, labels, self.batch_size, path, prc_index)
        return space

    @property
    def measured_on(self) -> dict[str, str]:
        """What every number of an evaluation was measured on (logged as tags measured.*)."""
        out = {
            "num_samples": str(self.num_samples),
            "seed": str(self.seed),
            "dataset": self.dataset,
            "reference_split": self.settings.reference_split,
            "reference_images": str(self.ref_images.size(0)),
            "reference_files": ",".join(f"{Path(f['path']).name}:{f['sha256'][:12]}" for f in self.reference.files),
            "split_note": self.heldout.note or "none",
            "heldout_split": self.settings.heldout_split,
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
            assert space.real is not None
            which = ("fid", "kid", "isc", "prc") if space.name == "clf" else ("fid", "kid", "isc")
            metrics.update(fidelity_metrics(features[space.name], space.real, space.name, self.settings.metrics, which))
            lap(f"fidelity_{space.name}")
        real = self.spaces[0].real
        assert real is not None
        clf_features = features["clf"]
        predicted = clf_features[real.layer_for["isc"]].argmax(1)
        scores = Scores(metrics, timings=timings)
        if labelled:
            scores.report = classification_report(labels, predicted, self.num_classes)
            scores.confusion = confusion_matrix(labels, predicted, self.num_classes).tolist()
            metrics["gen_accuracy"] = scores.report["accuracy"]
            metrics["intra_fid_clf"], scores.intra_fid = intra_fid(clf_features[real.layer_for["fid"]], labels, real.class_stats)
        if histogram:
            counts = class_counts(predicted, self.num_classes)
            real_counts = class_counts(self.ref_labels, self.num_classes)
            scores.histogram, scores.real_histogram = counts.tolist(), real_counts.tolist()
            metrics["modes_covered"] = float(modes_covered(counts, self.settings.modes_min_share))
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
        model = train_cas_classifier(images, labels, self.image_size, self.num_classes, self.settings.cas, self.device, self.seed)
        return accuracy(model, self.cas_test_images, self.cas_test_labels, self.device)

    def score_generator(self, generator: nn.Module, conditional: bool, z_dim: int, prior: str) -> Scores:
        """Stream ``num_samples`` samples once through every extractor (and into CAS for conditional models)."""
        batches = generated_batches(generator, self.num_samples, self.batch_size, z_dim, prior, self.num_classes, self.device, self.seed)
        cas = "samples" if conditional and self.settings.cas_enabled else None
        return self.score(batches, self.num_samples, conditional, not conditional, cas, "evaluating samples")

    def score_real(self) -> Scores:
        """The real-data reference: held-out images scored like samples (their true labels as requested labels).

        Its CAS trains the same quick classifier on as many real reference images: the ceiling for ``cas``.
        """
        n = min(self.num_samples, len(self.heldout))
        index = subset_index(len(self.heldout), n, self.seed + 4)
        images, labels = to_uint8(self.heldout.images[index]), self.heldout.labels[index]
        cas_train = None
        if self.settings.cas_enabled:
            train_index = subset_index(len(self.reference), n, self.seed + 5)
            cas_train = (to_uint8(self.reference.images[train_index]), self.reference.labels[train_index])
        return self.score(tensor_batches(images, labels, self.batch_size), n, True, True, cas_train, "evaluating held-out real images")


# --------------------------------------------------------------------------- per-process caches

_EVALUATORS: dict[str, Evaluator] = {}
_WARNED: set[str] = set()
_LOGGED_CLASSIFIERS: set[tuple[str, str]] = set()


def warn_once(message: str) -> None:
    """One warning line per process for a condition every evaluation would repeat."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def get_evaluator(settings: EvalSettings, device: torch.device, tracking: tuple[Any, str] | None = None) -> Evaluator:
    """The evaluator for this dataset and eval setting, built once per process."""
    key = json.dumps(
        {
            "eval": settings.scoring(),
            "dataset": dict(settings.dataset),
            "root": str(settings.data_root),
            "device": str(device),
            "cache": str(cache_root()),
        },
        sort_keys=True,
        default=str,
    )
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        evaluator = _EVALUATORS[key] = Evaluator(settings, device, tracking)
    if tracking is not None and (tracking[0].tracking_uri, evaluator.classifier.sha256) not in _LOGGED_CLASSIFIERS:
        log_classifier_run(tracking[0], tracking[1], evaluator.classifier, "cache")
        _LOGGED_CLASSIFIERS.add((tracking[0].tracking_uri, evaluator.classifier.sha256))
    return evaluator
