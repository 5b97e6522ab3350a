"""The evaluator: everything fixed for one dataset and eval setting, built once per process, and the scoring itself.

The classifier, the real-data features and the held-out CAS test set are prepared once (and cached on
disk), so repeated evaluations only pay for the samples, which are streamed batch by batch through
every feature space in one pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.data import cache_root, dataset_label, same_images
from ganbench.data.cache import cache_key, file_sha256
from ganbench.data.preprocess import to_uint8
from ganbench.errors import first_line
from ganbench.evaluate.classifier import LoadedClassifier, get_classifier, load_splits, log_classifier_run
from ganbench.evaluate.batchnorm import sampling_generator, smallest_batch
from ganbench.evaluate.classifier_net import accuracy, train_cas_classifier, training_updates
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
    report_metrics,
    confusion_matrix,
    fidelity_metrics,
    intra_fid,
    mode_kl,
    modes_covered,
)
from ganbench.evaluate.neighbours import Memorization, memorization_threshold, nearest_neighbours, neighbour_metrics
from ganbench.evaluate.pixels import pixel_metrics
from ganbench.evaluate.resize import ResizedGenerator
from ganbench.evaluate.scores import Scores
from ganbench.evaluate.settings import EvalSettings
from ganbench.models.sampling import generated_batches
from ganbench.tracking.layout import BN_MODE_MEASURED

log = logging.getLogger("ganbench.evaluate")  # not __name__: `python -m` would call it __main__
class Evaluator:
    """Everything fixed for one dataset and eval setting: classifier, real features, held-out CAS test set."""

    def __init__(self, settings: EvalSettings, device: torch.device, tracking: tuple[Any, str] | None = None):
        self.settings, self.device = settings, device
        self.num_samples, self.batch_size, self.seed = settings.num_samples, settings.batch_size, settings.seed
        self.dataset = dataset_label(settings.dataset)  # hoda+hoda_reader: its real features, reference row and tags apart
        # At eval.image_size when set: generators of every size are then scored against the same images and classifier.
        train, heldout = load_splits(settings.eval_dataset, settings.data_root, settings.heldout_split)
        self.splits = {"train": train, settings.heldout_split: heldout}
        if settings.reference_split in self.splits:
            self.reference = self.splits[settings.reference_split]
        else:
            self.reference = load_splits(settings.eval_dataset, settings.data_root, settings.reference_split)[1]
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

        self.ref_index = subset_index(len(self.reference), settings.reference_limit, self.seed)
        self.ref_images = to_uint8(self.reference.images[self.ref_index])
        self.ref_labels = self.reference.labels[self.ref_index]
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
        self._prepare_memorization()
        self.pixels = pixel_metrics(settings, train, self.ref_images, self.cas_test_images, settings.heldout_split, device)

    def _prepare_memorization(self) -> None:
        """Training-image features (memorisation, MiFID) and the threshold set by held-out images' distances to them."""
        train, heldout, s = self.splits["train"], self.heldout, self.settings
        train_index = subset_index(len(train), s.memorization_train_limit, self.seed + 6)
        self.memo_train_images = to_uint8(train.images[train_index])
        real = self.spaces[0].real
        assert real is not None
        if self.reference is train and torch.equal(self.ref_index, train_index):
            # By default FID's reference images are these very training images: their features are extracted already.
            self.memo_train = real.layers[real.layer_for["fid"]]
        else:
            self.memo_train = self._clf_features("memo-train", train, "train", train_index)
        # The threshold comes from held-out images the reference row does not score, so that row's memorisation is a
        # measurement (about the quantile when real images are not closer to train than other real images), not the
        # quantile by construction. Small held-out splits have no spare images: then all of them are used.
        scored = torch.zeros(len(heldout), dtype=torch.bool)
        scored[self._real_index()] = True
        spare = torch.nonzero(~scored).flatten()
        if spare.numel() < 2:
            spare = torch.arange(len(heldout))
        calibration = spare[subset_index(spare.numel(), s.memorization_heldout_limit, self.seed + 7)]
        self.memo_heldout_images = int(calibration.numel())
        held_nn, _ = nearest_neighbours(self._clf_features("memo-heldout", heldout, s.heldout_split, calibration), self.memo_train)
        self.memo_threshold = memorization_threshold(held_nn, s.metrics.memorization_quantile)

    def _clf_features(self, role: str, data: Any, split: str, index: Tensor) -> Tensor:
        """Classifier features (the fid layer) of ``data.images[index]``, cached on disk like the reference features."""
        space = self.spaces[0]
        key = cache_key(
            role=role, dataset=self.dataset, split=split, image_size=self.image_size, files=[f["sha256"] for f in data.files],
            num_images=len(data), index=hashlib.sha256(index.numpy().tobytes()).hexdigest(), weights_sha256=space.weights_sha256,
        )  # fmt: skip
        path = cache_root() / "eval" / f"{role}-{self.dataset}-{key}.pt"
        features = real_features(space, to_uint8(data.images[index]), data.labels[index], self.batch_size, path, None)
        return features.layers[features.layer_for["fid"]]

    def _real_index(self) -> Tensor:
        """The held-out images the real-data reference row scores."""
        return subset_index(len(self.heldout), min(self.num_samples, len(self.heldout)), self.seed + 4)

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
            "cas_updates": str(training_updates(self.num_samples, self.settings.cas)) if self.settings.cas_enabled else "off",
            "feature_extractor": CLASSIFIER_EXTRACTOR,
            "classifier_sha256": self.classifier.sha256,
            "classifier_test_accuracy": f"{self.classifier.test_accuracy:.4f}",
            BN_MODE_MEASURED: self.settings.bn_mode + (f" ({self.settings.standing_steps} steps)" if self.settings.bn_mode == "standing" else ""),
            "prc_neighborhood": str(self.settings.metrics.prc_neighborhood),
            "density_neighborhood": str(self.settings.metrics.density_neighborhood),
            "mifid_cosine_eps": str(self.settings.metrics.mifid_cosine_eps),
            "memorization_train_images": str(self.memo_train.size(0)),
            "memorization_heldout_images": str(self.memo_heldout_images),
            "memorization_quantile": str(self.settings.metrics.memorization_quantile),
            "memorization_threshold": f"{self.memo_threshold:.6g}",
            "fid_inf": self._fid_inf_counts(),
            "image_size": str(self.image_size),
            "resized_from": "none",  # score_generator's Scores.measured says when samples were mapped to image_size
            "resize": "none",
            **self.pixels.measured,
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
        parzen: bool = False,
    ) -> Scores:
        """Score a stream of uint8 images: fidelity in every space, pixel metrics, then label metrics and CAS as asked.

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

        kept: list[Tensor] = []  # uint8, 8 MB at 10,000 28x28 samples: the pair grid and CAS train on them
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
        images = torch.cat(kept)
        metrics.update(self._neighbour_metrics(clf_features, images, scores, lap))
        metrics.update(self.pixels.score(images, parzen))  # Parzen (eval.parzen) for generators only: see score_real
        lap("pixel_metrics")
        if labelled:
            scores.report = classification_report(labels, predicted, self.num_classes)
            scores.confusion = confusion_matrix(labels, predicted, self.num_classes).tolist()
            metrics["gen_accuracy"] = scores.report["accuracy"]
            metrics.update(report_metrics(scores.report))
            metrics["intra_fid_clf"], scores.intra_fid = intra_fid(clf_features[real.layer_for["fid"]], labels, real.class_stats)
            # Conditional: predicted classes against the requested ones (unconditional: mode_kl, against the real shares).
            metrics["label_kl"] = mode_kl(class_counts(predicted, self.num_classes), class_counts(labels, self.num_classes))
        if histogram:
            counts = class_counts(predicted, self.num_classes)
            real_counts = class_counts(self.ref_labels, self.num_classes)
            scores.histogram, scores.real_histogram = counts.tolist(), real_counts.tolist()
            metrics["modes_covered"] = float(modes_covered(counts, self.settings.modes_min_share))
            metrics["mode_kl"] = mode_kl(counts, real_counts)
        lap("class_metrics")
        if cas_train is not None:
            cas_images, cas_labels = (images, labels) if cas_train == "samples" else cas_train  # type: ignore[misc]
            metrics["cas"] = self.cas(cas_images, cas_labels)
            lap("cas")
        log.info("evaluation phases (s): %s", timings)
        return scores

    def _neighbour_metrics(self, clf_features: Mapping[str, Tensor], images: Tensor, scores: Scores, lap: Any) -> dict[str, float]:
        """Density, coverage, memorisation, MiFID (and FID at infinity) of classifier features; the pair grid into ``scores``."""
        assert self.spaces[0].real is not None
        memo = Memorization(self.memo_train_images, self.memo_train, self.memo_threshold, self.settings.memorization_pairs)
        out, scores.pairs, scores.fid_by_n = neighbour_metrics(clf_features, images, self.spaces[0].real, memo, self.settings.metrics, lap)
        return out

    def _fid_inf_counts(self) -> str:
        """measured.fid_inf: the fit's sample-count range, or off."""
        m = self.settings.metrics
        return f"{m.fid_inf_points} sample counts from {m.fid_inf_min_samples} to all" if m.fid_inf else "off"

    def cas(self, images: Tensor, labels: Tensor) -> float:
        """Classification accuracy score: a fresh classifier trained on ``images`` only, tested on held-out real images."""
        model = train_cas_classifier(images, labels, self.image_size, self.num_classes, self.settings.cas, self.device, self.seed)
        return accuracy(model, self.cas_test_images, self.cas_test_labels, self.device)

    def score_generator(self, generator: nn.Module, conditional: bool, z_dim: int, prior: str) -> Scores:
        """Stream ``num_samples`` samples once through every extractor (and into CAS for conditional models)."""
        s = self.settings
        sampler = sampling_generator(
            generator, s.bn_mode, steps=s.standing_steps, batch_size=self.batch_size, z_dim=z_dim, prior=prior,
            num_classes=self.num_classes, device=self.device, seed=self.seed,
        )  # fmt: skip
        resized = None if s.image_size is None else ResizedGenerator(sampler, s.dataset_name, self.image_size, str(s.dataset.get("preprocess") or "mnist"))
        # bn_mode=batch cannot normalise a last batch of one (501 samples at 250 a batch): it joins the pass before.
        batches = generated_batches(
            resized or sampler, self.num_samples, self.batch_size, z_dim, prior, self.num_classes, self.device, self.seed,
            min_batch=smallest_batch(s.bn_mode),
        )  # fmt: skip
        cas = "samples" if conditional and self.settings.cas_enabled else None
        scores = self.score(batches, self.num_samples, conditional, not conditional, cas, "evaluating samples", parzen=True)
        if resized is not None:
            scores.measured.update(resized.measured())
        return scores

    def score_real(self) -> Scores:
        """The real-data reference: held-out images scored like samples (their true labels as requested labels).

        Its CAS trains the same quick classifier on as many real reference images: the ceiling for ``cas``. No Parzen
        row: these "samples" are held-out images, the very images Parzen's test scores.
        """
        index = self._real_index()
        n = int(index.numel())
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
