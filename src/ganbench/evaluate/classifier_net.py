"""The auxiliary digit classifier's networks and their training loop (also used for CAS's quick classifiers).

Two architectures (``eval.classifier.arch``): ``digit``, the auxiliary classifier every metric uses, and
``lenet``, a LeNet-5-style net with no BatchNorm, as a second, independent opinion on generated digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganbench.data.preprocess import to_unit
from ganbench.evaluate.settings import ClassifierSettings
from ganbench.progress import progress_bar


def _conv_block(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ClassifierNet(nn.Module):
    """A digit classifier as the metrics use it: ``body`` (images -> the feature space) then ``head`` (-> logits).

    Subclasses build the two and ``arch``, the constructor's arguments that ``classifier_from_arch`` rebuilds it from.
    """

    arch: dict
    body: nn.Module
    head: nn.Module

    @property
    def num_classes(self) -> int:
        return int(self.arch["num_classes"])

    def features(self, x: Tensor) -> Tensor:
        """The activations FID/KID/PR are computed on."""
        return self.body(x)

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return h, self.head(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class DigitClassifier(ClassifierNet):
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


class LeNetClassifier(ClassifierNet):
    """LeNet-5 style (LeCun et al. 1998, the widths of Caffe's MNIST example): two unpadded 5x5 conv + max-pool
    stages, a 500-unit layer (its feature space) and a linear head; ReLU, dropout, no BatchNorm.

    Shares no layer layout with ``DigitClassifier``, so that an accuracy both agree on is not an artefact of one net.
    """

    def __init__(self, image_size: int = 28, num_classes: int = 10, feature_dim: int = 500, dropout: float = 0.3):
        super().__init__()
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for LeNet's two 5x5 convs and poolings (need >= 16)")
        self.arch = {"kind": "lenet", "image_size": image_size, "num_classes": num_classes, "feature_dim": feature_dim, "dropout": dropout}
        self.body = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(50 * side * side, feature_dim), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))


ARCHS = ("digit", "lenet")  # eval.classifier.arch's choices


def build_classifier(image_size: int, num_classes: int, settings: ClassifierSettings) -> ClassifierNet:
    """A fresh, untrained classifier of ``settings.arch`` (the caller seeds torch first)."""
    if settings.arch == "lenet":
        return LeNetClassifier(image_size, num_classes, dropout=settings.dropout)
    if settings.arch != "digit":
        raise ValueError(f"eval.classifier.arch={settings.arch!r} is invalid: choose {' or '.join(ARCHS)}")
    return DigitClassifier(image_size, num_classes, settings.width, settings.feature_dim, settings.dropout)


def classifier_from_arch(arch: dict) -> ClassifierNet:
    """The network a saved ``arch`` dict describes (files without ``kind`` predate LeNet: digit)."""
    arch = dict(arch)
    kind = arch.pop("kind", "digit")
    if kind not in ARCHS:
        raise ValueError(f"unknown classifier architecture {kind!r}")
    return LeNetClassifier(**arch) if kind == "lenet" else DigitClassifier(**arch)


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
    model: nn.Module,
    batches: BatchSource,
    steps_per_epoch: int,
    settings: ClassifierSettings,
    device: torch.device | str = "cpu",
    description: str = "classifier",
) -> nn.Module:
    """Train ``model`` for ``settings.epochs`` (or ``min_steps``) on ``batches(epoch)`` (float images in [-1, 1], labels).

    AdamW with a one-cycle schedule: the fastest route we found to >99.3% on Hoda in a few CPU minutes.
    """
    device = torch.device(device)
    model.to(device).train()
    epochs = training_epochs(steps_per_epoch, settings)
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


def shuffled_batches(images: Tensor, labels: Tensor, batch_size: int, seed: int) -> BatchSource:
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
    model = build_classifier(images.size(-1), num_classes, settings)
    source = shuffled_batches(images, labels, settings.batch_size, settings.seed)
    return fit(model, source, images.size(0) // settings.batch_size, settings, device, description)


def training_epochs(steps_per_epoch: int, settings: ClassifierSettings) -> int:
    """The epochs ``fit`` trains: ``settings.epochs``, or more where ``min_steps`` needs them."""
    return max(settings.epochs, math.ceil(settings.min_steps / max(steps_per_epoch, 1)))


def training_updates(n_images: int, settings: ClassifierSettings) -> int:
    """The optimiser steps ``fit`` takes on ``n_images`` in full batches (CAS's ``measured.cas_updates``)."""
    per_epoch = n_images // settings.batch_size
    return training_epochs(per_epoch, settings) * per_epoch


def train_cas_classifier(
    images: Tensor, labels: Tensor, image_size: int, num_classes: int, settings: ClassifierSettings, device: torch.device, seed: int
) -> DigitClassifier:
    """CAS's quick classifier, trained on uint8 ``images`` only: full batches in a seeded order that changes every epoch."""
    torch.manual_seed(seed)
    model = DigitClassifier(image_size, num_classes, settings.width, settings.feature_dim, settings.dropout)

    def source(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(images.size(0), generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, images.size(0) - settings.batch_size + 1, settings.batch_size):
            idx = order[start : start + settings.batch_size]
            yield to_unit(images[idx]), labels[idx]

    return fit(model, source, images.size(0) // settings.batch_size, settings, device, "CAS classifier")


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
