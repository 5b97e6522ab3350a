"""The auxiliary digit classifier's files, cache and MLflow run, the splits it learns from, and its command.

It scores generators three ways: accuracy of conditional samples, the class histogram of unconditional
ones, and as the feature extractor behind FID/KID/IS/PR in a digit feature space
(``ganbench.evaluate.features``). One classifier per dataset + preprocessing + training settings + seed
is trained on first need, cached under ``cache_root()/classifiers/`` and logged to MLflow as its own run
(tag ``role=classifier``). ``python -m ganbench.evaluate.classifier dataset=hoda`` trains (or finds) it
from the command line. The network and its training loop are in ``classifier_net``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import hydra
import torch

from ganbench.data import DEFAULT_PREPROCESS, DigitData, cache_root, load_dataset, same_images
from ganbench.data.cache import cache_key, file_sha256
from ganbench.device import resolve_device, set_threads
from ganbench.errors import EXIT_USAGE, UserError, first_line, print_error, run_compact
from ganbench.evaluate.classifier_net import ClassifierNet, accuracy, classifier_from_arch, train_classifier
from ganbench.evaluate.errors import ClassifierError
from ganbench.evaluate.settings import ClassifierSettings, EvalSettings
from ganbench.files import atomic_save_torch
from ganbench.locks import file_lock
from ganbench.tracking import check_reachable, experiment_id, keep_earliest, live_runs, make_client, mlflow_run
from ganbench.tracking.layout import CLASSIFIER_SHA_TAG, ROLE_CLASSIFIER, ROLE_TAG

log = logging.getLogger("ganbench.classifier")  # not __name__: `python -m` would call it __main__

PROG = "ganbench.evaluate.classifier"
FORMAT = "ganbench-classifier"
HELDOUT_EVERY = 5  # a split that must serve as both train and held-out gives every 5th image to held-out
VERSION = 1  # bump when the architecture or the file layout changes: old cache files are then retrained
RETRAIN = f"delete it and retrain with `python -m {PROG} dataset=<name>`"


# --------------------------------------------------------------------------- files


@dataclass
class LoadedClassifier:
    """A classifier read from its file, with what it was trained on."""

    model: ClassifierNet
    path: Path
    sha256: str
    meta: dict[str, Any]

    @property
    def test_accuracy(self) -> float:
        return float(self.meta.get("test_accuracy", float("nan")))


def save_classifier(path: str | os.PathLike, model: ClassifierNet, meta: Mapping[str, Any]) -> Path:
    """Write the weights, architecture and metadata atomically (temp file + rename)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": dict(model.arch),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }
    atomic_save_torch(path, payload)
    return path


def _reason(exc: Exception) -> str:
    """The first line of a torch loading error, in words a user can act on."""
    if "Weights only load failed" in str(exc):
        return "it holds pickled objects other than tensors and plain values, which weights_only loading refuses"
    return first_line(exc)


def load_classifier(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> LoadedClassifier:
    """Read a classifier file with ``weights_only=True``; anything foreign or damaged raises ClassifierError."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"classifier file {path} does not exist; {RETRAIN}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise ClassifierError(f"{path} is not a readable ganbench classifier ({_reason(exc)}); {RETRAIN}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ClassifierError(f"{path} is not a ganbench classifier (no '{FORMAT}' marker); {RETRAIN}")
    if payload.get("version") != VERSION:
        raise ClassifierError(f"{path} is classifier format version {payload.get('version')}, this ganbench reads {VERSION}; {RETRAIN}")
    try:
        model = classifier_from_arch(payload["arch"])
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise ClassifierError(f"{path} holds weights that do not fit its architecture ({_reason(exc)}); {RETRAIN}") from None
    model.to(map_location).eval().requires_grad_(False)
    return LoadedClassifier(model, path, file_sha256(path), dict(payload.get("meta") or {}))


# --------------------------------------------------------------------------- cache and MLflow


def classifier_key(train: DigitData, settings: ClassifierSettings) -> str:
    """Everything the trained weights depend on: data files, preprocessing, image size, settings, seed, format."""
    return cache_key(
        role="classifier",
        format_version=VERSION,
        dataset=train.name,
        image_size=train.image_size,
        files=[f["sha256"] for f in train.files],
        num_images=len(train),  # a carved split (carve_heldout) reads the same files as the whole one
        # The architecture joins the key only when it is not the default, whose cached classifiers predate the choice.
        settings={k: v for k, v in asdict(settings).items() if k != "arch" or v != "digit"},
        # Other preprocessing, other images: its own classifier. Left out for the default, whose cached classifiers predate the choice.
        **({} if train.preprocess == DEFAULT_PREPROCESS else {"preprocessing": train.preprocess}),
    )


def classifier_path(dataset: str, image_size: int, key: str) -> Path:
    """Where the cached classifier for ``key`` lives."""
    return cache_root() / "classifiers" / f"{dataset}-{image_size}-{key}.pt"


def train_and_save(train: DigitData, test: DigitData, settings: ClassifierSettings, path: Path, device: torch.device | str = "cpu") -> LoadedClassifier:
    """Train on ``train``, measure on ``test``, write the file and return it loaded back."""
    images, labels = train.images, train.labels
    if settings.train_limit:
        images, labels = images[: settings.train_limit], labels[: settings.train_limit]
    started = time.perf_counter()
    model = train_classifier(images, labels, train.num_classes, settings, device, f"classifier {train.name}")
    seconds = time.perf_counter() - started
    test_accuracy = accuracy(model, test.images, test.labels, device)
    overlap = same_images(train, test)
    if overlap:
        log.warning("%s: the held-out split is the training split (%s); test_accuracy is a training accuracy", train.name, train.note)
    meta = {
        "dataset": train.name,
        "image_size": train.image_size,
        "preprocess": train.preprocess,
        "num_classes": train.num_classes,
        "key": path.stem.rsplit("-", 1)[-1],
        "settings": {k: v for k, v in asdict(settings).items() if v is not None},
        "train_files": [f"{Path(f['path']).name}:{f['sha256']}" for f in train.files],
        "test_files": [f"{Path(f['path']).name}:{f['sha256']}" for f in test.files],
        "train_images": int(images.size(0)),
        "test_images": len(test),
        "test_accuracy": float(test_accuracy),
        "train_seconds": float(seconds),
        "heldout_is_train": bool(overlap),
        "torch": str(torch.__version__),  # TorchVersion is not a plain str: weights_only would refuse it
    }
    save_classifier(path, model.cpu(), meta)
    log.info("classifier %s: test accuracy %.4f after %.0f s -> %s", train.name, test_accuracy, seconds, path)
    return load_classifier(path)


def log_classifier_run(client: Any, experiment: str, loaded: LoadedClassifier, source: str) -> str:
    """The classifier's own MLflow run (tag role=classifier, metric test_accuracy); reused when the store has one."""
    exp_id = experiment_id(client, experiment)
    wanted = f"tags.{ROLE_TAG} = '{ROLE_CLASSIFIER}' and tags.{CLASSIFIER_SHA_TAG} = '{loaded.sha256}'"
    # Parallel sweep jobs evaluating at once must log one classifier run between them, not one each.
    with file_lock(cache_root() / "classifiers" / f"run-{loaded.sha256[:16]}.lock"):
        found = live_runs(client, exp_id, wanted)
        if found:
            return found[0]
        ours = _log_classifier_run(client, experiment, loaded, source)
    return keep_earliest(client, exp_id, wanted, ours, "classifier run")


def _log_classifier_run(client: Any, experiment: str, loaded: LoadedClassifier, source: str) -> str:
    meta = loaded.meta
    tags = {ROLE_TAG: ROLE_CLASSIFIER, "dataset": str(meta.get("dataset")), CLASSIFIER_SHA_TAG: loaded.sha256, "source": source}
    name = f"classifier-{meta.get('dataset')}-{loaded.sha256[:8]}"
    with mlflow_run(client, experiment, name, tags) as logger:
        params = {f"classifier.{k}": v for k, v in dict(meta.get("settings", {})).items()}
        params.update(
            {
                "classifier.image_size": meta.get("image_size"),
                "classifier.train_images": meta.get("train_images"),
                "classifier.test_images": meta.get("test_images"),
                "classifier.train_files": ",".join(meta.get("train_files", [])),
                "classifier.test_files": ",".join(meta.get("test_files", [])),
                "classifier.heldout_is_train": meta.get("heldout_is_train"),
                "classifier.path": str(loaded.path),
            }
        )
        logger.log_params(params)
        values = {"test_accuracy": loaded.test_accuracy}
        if "train_seconds" in meta:
            values["train_seconds"] = float(meta["train_seconds"])
        logger.log_metrics(values, step=0)
        logger.log_artifact(loaded.path, "classifier")
    return logger.run_id


_LOADED: dict[str, LoadedClassifier] = {}  # path -> classifier, so repeated evaluations skip disk


def get_classifier(
    train: DigitData,
    test: DigitData,
    settings: ClassifierSettings,
    device: torch.device | str = "cpu",
    path: str | os.PathLike | None = None,
    tracking: tuple[Any, str] | None = None,
) -> LoadedClassifier:
    """The classifier for ``train``'s data and ``settings``: in-process, cached on disk, or trained now.

    ``path`` names a specific classifier file instead (it must match the dataset and image size).
    ``tracking=(client, experiment)`` makes sure that store has the classifier's run.
    """
    if path is not None:
        loaded = load_classifier(path)
        meta = loaded.meta
        trained_on = (meta.get("dataset"), int(meta.get("image_size", -1)), meta.get("preprocess", DEFAULT_PREPROCESS))
        if trained_on != (train.name, train.image_size, train.preprocess):
            raise ClassifierError(
                f"{path} is a classifier for {meta.get('dataset')} at {meta.get('image_size')}px ({trained_on[2]} preprocessing), "
                f"not {train.name} at {train.image_size}px ({train.preprocess}); pick a matching file or leave eval.classifier.path unset"
            )
        source = "file"
    else:
        target = classifier_path(train.name, train.image_size, classifier_key(train, settings))
        loaded = _LOADED.get(str(target))
        source = "cache"
        if loaded is None:
            with file_lock(target.with_name(target.name + ".lock")):  # parallel sweep jobs train one classifier, not one each
                if target.is_file():
                    try:
                        loaded = load_classifier(target)
                    except ClassifierError as err:
                        log.warning("%s; retraining it", err)
                if loaded is None:
                    loaded = train_and_save(train, test, settings, target, device)
                    source = "trained"
    _LOADED[str(loaded.path)] = loaded
    if tracking is not None:
        log_classifier_run(tracking[0], tracking[1], loaded, source)
    loaded.model.to(device)
    return loaded


def forget_loaded() -> None:
    """Drop the in-process classifiers, so the next lookup reads the disk cache (as a new process would)."""
    _LOADED.clear()


# --------------------------------------------------------------------------- splits


def load_splits(dataset: Mapping[str, Any], root: str | None, heldout_split: str = "test") -> tuple[DigitData, DigitData]:
    """The (train, held-out) splits a classifier is trained and measured on; they never share an image.

    When the training split is the held-out one standing in (MNIST without its training files), that
    split is carved in two (``carve_heldout``), so accuracies and the real-data reference stay honest.
    """
    # dataset.train_with_test is the GAN's choice only: the classifier still learns from train and is measured on held-out.
    common = {
        "image_size": int(dataset["image_size"]),
        "root": root,
        "download": bool(dataset.get("download", False)),
        "preprocess": str(dataset.get("preprocess") or DEFAULT_PREPROCESS),
    }
    train = load_dataset(dataset["name"], split="train", **common)
    test = load_dataset(dataset["name"], split=heldout_split, **common)
    if same_images(train, test):
        return carve_heldout(test)
    return train, test


def carve_heldout(data: DigitData, every: int = HELDOUT_EVERY) -> tuple[DigitData, DigitData]:
    """Disjoint (train, held-out) parts of one split: every ``every``-th image held out, the rest to train on."""
    held = torch.arange(len(data)) % every == every - 1
    note = f"{data.split} split carved: every {every}th image held out, the rest trained on"
    train = replace(data, images=data.images[~held], labels=data.labels[~held], split="train", note=note)
    heldout = replace(data, images=data.images[held], labels=data.labels[held], note=note)
    log.warning("%s: no training split apart from the %s split; %s (%d / %d images)", data.name, data.split, note, len(train), len(heldout))
    return train, heldout


# --------------------------------------------------------------------------- command line


def find_or_train(settings: EvalSettings, device: torch.device, tracking_uri: str) -> LoadedClassifier:
    """The classifier ``settings`` name, trained now if the cache has none, with its run in the store at ``tracking_uri``."""
    # A dead server is found now, not after the training, by minutes of the MLflow client's retries.
    check_reachable(tracking_uri)
    train, test = load_splits(settings.eval_dataset, settings.data_root, settings.heldout_split)
    client = make_client(tracking_uri)
    return get_classifier(train, test, settings.classifier, device, settings.classifier_path, (client, settings.experiment))


def _main(cfg: Any) -> None:
    """The command behind ``main``: the composed ``classifier`` config in, the classifier's summary on stdout."""
    settings = EvalSettings.from_config(cfg)
    set_threads(cfg.get("num_threads"))
    loaded = find_or_train(settings, resolve_device(str(cfg.device)), str(cfg.tracking.uri))
    print(f"classifier: {loaded.path}")
    print(f"sha256: {loaded.sha256}")
    print(f"test_accuracy: {loaded.test_accuracy:.4f}")
    if "train_seconds" in loaded.meta:
        print(f"train_seconds: {float(loaded.meta['train_seconds']):.1f}")


def main() -> None:
    """``python -m ganbench.evaluate.classifier dataset=hoda [eval.classifier.epochs=...]``: train or find the classifier."""

    @hydra.main(version_base="1.3", config_path="pkg://ganbench.conf", config_name="classifier")
    def app(cfg: Any) -> None:
        try:
            _main(cfg)
        except UserError as exc:
            print_error(PROG, exc)
            sys.exit(EXIT_USAGE)

    run_compact(app, PROG)  # an unknown dataset=, a misspelt key: one line and exit 2, as every other bad input


if __name__ == "__main__":
    main()
