"""The auxiliary digit classifier: a small CNN trained on a dataset's real training split.

It scores generators three ways: accuracy of conditional samples, the class
histogram of unconditional ones, and as the feature extractor behind
FID/KID/IS/PR in a digit feature space (``ganbench.metrics``). One classifier
per dataset + preprocessing + training settings + seed is trained on first
need, cached under ``cache_root()/classifiers/`` and logged to MLflow as its
own run (tag ``role=classifier``). ``python -m ganbench.classifier dataset=hoda``
trains (or finds) it from the command line.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganbench.locks import file_lock
from ganbench.progress import progress_bar
from ganbench.data import DataError, DigitData, cache_root, load_dataset
from ganbench.data.cache import atomic_write, cache_key, file_sha256

log = logging.getLogger("ganbench.classifier")  # not __name__: `python -m` would call it __main__

FORMAT = "ganbench-classifier"
HELDOUT_EVERY = 5  # a split that must serve as both train and held-out gives every 5th image to held-out
VERSION = 1  # bump when the architecture or the file layout changes: old cache files are then retrained


class ClassifierError(Exception):
    """A classifier file that is missing, damaged, not ganbench's, or made for other data."""


# --------------------------------------------------------------------------- the network


def _conv_block(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DigitClassifier(nn.Module):
    """Three conv+BN+pool stages, a BN'd ``feature_dim`` layer (the FID feature space) and a linear head.

    Input: (N, 1, S, S) floats in [-1, 1], like the generators' output. About 8 M multiply-adds per
    28x28 image, so 10,000 images take seconds on a CPU.
    """

    def __init__(self, image_size: int = 28, num_classes: int = 10, width: int = 32, feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        if image_size < 8:
            raise ValueError(f"image_size {image_size} is too small for three 2x poolings (need >= 8)")
        self.arch = {"image_size": image_size, "num_classes": num_classes, "width": width, "feature_dim": feature_dim, "dropout": dropout}
        side = image_size // 8
        self.body = nn.Sequential(
            *_conv_block(1, width, 5), nn.MaxPool2d(2),
            *_conv_block(width, 2 * width, 3), nn.MaxPool2d(2),
            *_conv_block(2 * width, 4 * width, 3), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * width * side * side, feature_dim, bias=False),
            nn.BatchNorm1d(feature_dim),
            nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    @property
    def num_classes(self) -> int:
        return int(self.arch["num_classes"])

    def features(self, x: Tensor) -> Tensor:
        """The ``feature_dim`` activations FID/KID/PR are computed on."""
        return self.body(x)

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return h, self.head(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def to_unit(images: Tensor) -> Tensor:
    """uint8 (N, 1, S, S) -> float32 in [-1, 1], the same mapping the datasets use."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """Floats in [-1, 1] -> uint8, rounding like an 8-bit image file would (real data is stored this way)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class ClassifierSettings:
    """How a classifier is built and trained; every field is part of its cache key."""

    epochs: int = 6
    min_steps: int = 0  # train at least this many steps, adding epochs on small datasets (sign_digits: ~13 steps an epoch)
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    width: int = 32
    feature_dim: int = 128
    dropout: float = 0.3
    rotation_deg: float = 10.0  # augmentation: random rotation, scale and shift per image (0 turns each off)
    scale: float = 0.1
    shift_px: float = 2.0
    seed: int = 0
    train_limit: int | None = None  # train on the first N training images only (quick classifiers for tests)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "ClassifierSettings":
        """Settings from a config mapping (e.g. ``cfg.eval.classifier``); keys that are not settings are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})


def augment(images: Tensor, settings: ClassifierSettings, generator: torch.Generator) -> Tensor:
    """Random small rotations, rescalings and shifts, one affine warp per image (background stays -1)."""
    n, size = images.size(0), images.size(-1)
    if not (settings.rotation_deg or settings.scale or settings.shift_px):
        return images
    u = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731
    angle = u(n) * math.radians(settings.rotation_deg)
    scale = 1 + u(n) * settings.scale
    shift = u(n, 2) * (2 * settings.shift_px / size)  # affine_grid works in [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    # Shift to [0, 2] so zero padding equals the background, then back.
    return F.grid_sample(images + 1, grid, align_corners=False, padding_mode="zeros") - 1


BatchSource = Callable[[int], Iterable[tuple[Tensor, Tensor]]]


def fit(
    model: DigitClassifier,
    batches: BatchSource,
    steps_per_epoch: int,
    settings: ClassifierSettings,
    device: torch.device | str = "cpu",
    description: str = "classifier",
) -> DigitClassifier:
    """Train ``model`` for ``settings.epochs`` (or ``min_steps``) on ``batches(epoch)`` (float images in [-1, 1], labels).

    AdamW with a one-cycle schedule: the fastest route we found to >99.3% on Hoda in a few CPU minutes.
    """
    device = torch.device(device)
    model.to(device).train()
    epochs = max(settings.epochs, math.ceil(settings.min_steps / max(steps_per_epoch, 1)))
    total = epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=max(total, 1))
    aug_rng = torch.Generator().manual_seed(settings.seed + 1)
    done = 0
    with progress_bar(description, total) as advance:
        for epoch in range(epochs):
            for images, labels in batches(epoch):
                if done >= total:
                    break
                images = augment(images, settings, aug_rng).to(device)
                loss = F.cross_entropy(model(images), labels.to(device), label_smoothing=settings.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                done += 1
                advance(1, f"epoch {epoch + 1}/{epochs}  loss {loss.item():.3f}")
    return model.eval()


def tensor_batches(images: Tensor, labels: Tensor, batch_size: int, seed: int) -> BatchSource:
    """Shuffled full batches of in-memory float images, a fresh order per epoch."""

    def batches(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(images.size(0), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for i in range(images.size(0) // batch_size):
            idx = order[i * batch_size : (i + 1) * batch_size]
            yield images[idx], labels[idx]

    return batches


def train_classifier(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    settings: ClassifierSettings,
    device: torch.device | str = "cpu",
    description: str = "classifier",
) -> DigitClassifier:
    """A fresh classifier trained on float images in [-1, 1] (N, 1, S, S) and int64 labels."""
    if images.size(0) < settings.batch_size:
        raise ValueError(f"{images.size(0)} training images are fewer than one batch of {settings.batch_size}")
    torch.manual_seed(settings.seed)
    model = DigitClassifier(images.size(-1), num_classes, settings.width, settings.feature_dim, settings.dropout)
    source = tensor_batches(images, labels, settings.batch_size, settings.seed)
    return fit(model, source, images.size(0) // settings.batch_size, settings, device, description)


@torch.no_grad()
def predict_logits(model: nn.Module, images: Tensor, batch_size: int = 1000, device: torch.device | str = "cpu") -> Tensor:
    """Logits for float images in [-1, 1] (or uint8 images), in eval mode, batch by batch."""
    model.eval()
    out = []
    for start in range(0, images.size(0), batch_size):
        batch = images[start : start + batch_size]
        batch = to_unit(batch) if batch.dtype == torch.uint8 else batch
        out.append(model(batch.to(device)).float().cpu())
    return torch.cat(out) if out else torch.empty(0, getattr(model, "num_classes", 0))


def accuracy(model: nn.Module, images: Tensor, labels: Tensor, device: torch.device | str = "cpu") -> float:
    """Fraction of images whose predicted class is the label."""
    if images.size(0) == 0:
        return float("nan")
    return (predict_logits(model, images, device=device).argmax(1) == labels.cpu()).float().mean().item()


# --------------------------------------------------------------------------- files


@dataclass
class LoadedClassifier:
    """A classifier read from its file, with what it was trained on."""

    model: DigitClassifier
    path: Path
    sha256: str
    meta: dict[str, Any]

    @property
    def test_accuracy(self) -> float:
        return float(self.meta.get("test_accuracy", float("nan")))


def save_classifier(path: str | os.PathLike, model: DigitClassifier, meta: Mapping[str, Any]) -> Path:
    """Write the weights, architecture and metadata atomically (temp file + rename)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": dict(model.arch),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def _reason(exc: Exception) -> str:
    """The first line of a torch loading error, in words a user can act on."""
    text = str(exc).strip()
    if "Weights only load failed" in text:
        return "it holds pickled objects other than tensors and plain values, which weights_only loading refuses"
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def load_classifier(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> LoadedClassifier:
    """Read a classifier file with ``weights_only=True``; anything foreign or damaged raises ClassifierError."""
    path = Path(path)
    retrain = "delete it and retrain with `python -m ganbench.classifier dataset=<name>`"
    if not path.is_file():
        raise ClassifierError(f"classifier file {path} does not exist; {retrain}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise ClassifierError(f"{path} is not a readable ganbench classifier ({_reason(exc)}); {retrain}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ClassifierError(f"{path} is not a ganbench classifier (no '{FORMAT}' marker); {retrain}")
    if payload.get("version") != VERSION:
        raise ClassifierError(f"{path} is classifier format version {payload.get('version')}, this ganbench reads {VERSION}; {retrain}")
    try:
        model = DigitClassifier(**payload["arch"])
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise ClassifierError(f"{path} holds weights that do not fit its architecture ({_reason(exc)}); {retrain}") from None
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
        settings=asdict(settings),
    )


def classifier_path(dataset: str, image_size: int, key: str) -> Path:
    """Where the cached classifier for ``key`` lives."""
    return cache_root() / "classifiers" / f"{dataset}-{image_size}-{key}.pt"


def same_images(a: DigitData, b: DigitData) -> bool:
    """Whether two splits hold the same images (MNIST without its training split: train is test).

    Compared by content: sign_digits' two splits come from one folder, so their files alone look the same.
    """
    return len(a) == len(b) and torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)


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
    from ganbench.tracking import experiment_id, mlflow_run

    exp_id = experiment_id(client, experiment)
    found = client.search_runs(
        [exp_id], filter_string=f"tags.role = 'classifier' and tags.classifier_sha256 = '{loaded.sha256}'", max_results=1
    )
    if found:
        return found[0].info.run_id
    meta = loaded.meta
    tags = {"role": "classifier", "dataset": str(meta.get("dataset")), "classifier_sha256": loaded.sha256, "source": source}
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
        if meta.get("dataset") != train.name or int(meta.get("image_size", -1)) != train.image_size:
            raise ClassifierError(
                f"{path} is a classifier for {meta.get('dataset')} at {meta.get('image_size')}px, not {train.name} at "
                f"{train.image_size}px; pick a matching file or leave eval.classifier.path unset"
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


def load_splits(dataset: Mapping[str, Any], root: str | None, heldout_split: str = "test") -> tuple[DigitData, DigitData]:
    """The (train, held-out) splits a classifier is trained and measured on; they never share an image.

    When the training split is the held-out one standing in (MNIST without its training files), that
    split is carved in two (``carve_heldout``), so accuracies and the real-data reference stay honest.
    """
    common = {"image_size": int(dataset["image_size"]), "root": root, "download": bool(dataset.get("download", False))}
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


def _main(cfg: Any) -> None:
    from ganbench.tracking import make_client

    from ganbench.runner import resolve_device

    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    device = resolve_device(cfg.device)
    train, test = load_splits(cfg.dataset, cfg.data.root, cfg.eval.heldout_split)
    settings = ClassifierSettings.from_config(cfg.eval.classifier)
    client = make_client(cfg.tracking.uri)
    loaded = get_classifier(train, test, settings, device, cfg.eval.classifier.path, (client, cfg.tracking.experiment))
    meta = loaded.meta
    print(f"classifier: {loaded.path}")
    print(f"sha256: {loaded.sha256}")
    print(f"test_accuracy: {loaded.test_accuracy:.4f}")
    if "train_seconds" in meta:
        print(f"train_seconds: {float(meta['train_seconds']):.1f}")


def main() -> None:
    """``python -m ganbench.classifier dataset=hoda [eval.classifier.epochs=...]``: train or find the classifier."""
    import hydra

    from ganbench.validate import ConfigError

    @hydra.main(version_base="1.3", config_path="conf", config_name="classifier")
    def app(cfg: Any) -> None:
        try:
            _main(cfg)
        except (DataError, ClassifierError, ConfigError) as exc:
            for line in str(exc).splitlines():
                print(f"ganbench.classifier: error: {line}", file=sys.stderr)
            sys.exit(2)

    app()


if __name__ == "__main__":
    main()
