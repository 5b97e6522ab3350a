"""Types shared by every dataset: the error, the returned bundle, where data lives."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganbench.errors import UserError

DATASETS: tuple[str, ...] = ("hoda", "mnist", "sign_digits")
SPLITS: tuple[str, ...] = ("train", "test")
# dataset.preprocess: "mnist" (MNIST-style normalisation, every dataset's default) or "hoda_reader"
# (HodaDatasetReader's read_hoda_dataset, seed S3's loader), with the datasets each one applies to.
DEFAULT_PREPROCESS = "mnist"
PREPROCESSINGS: dict[str, tuple[str, ...]] = {"mnist": DATASETS, "hoda_reader": ("hoda",)}

# How to point the project at data, appended to every "missing data" message.
WHERE_TO_GET = (
    "set GANBENCH_DATA to the folder holding {name}/, "
    "or pass dataset.download=true on a machine with internet"
)


class DataError(UserError):
    """A data problem, told in one line: what is wrong, where, and what to do."""

    def __init__(self, message: str) -> None:
        # Messages end up in logs and MLflow tags that are read line by line.
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", str(message)).strip())


@dataclass
class DigitData:
    """One split of a digit dataset, ready for a GAN: images in [-1, 1], int64 labels."""

    images: torch.Tensor  # (N, 1, S, S) float32 in [-1, 1]
    labels: torch.Tensor  # (N,) int64
    num_classes: int
    name: str
    split: str
    image_size: int
    # [{"path", "sha256"}] of what was read; sign_digits gives its Dataset folder and tree digest.
    files: list[dict] = field(default_factory=list)
    note: str = ""
    preprocess: str = DEFAULT_PREPROCESS

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def params(self) -> dict[str, str]:
        """Flat str -> str summary for MLflow params (callers prefix it, e.g. "data."): files with short sha, size, note."""
        files = ",".join(f"{Path(f['path']).name}:{f['sha256'][:12]}" for f in self.files)
        return {
            "name": self.name,
            "split": self.split,
            "image_size": str(self.image_size),
            "num_images": str(len(self)),
            "num_classes": str(self.num_classes),
            "files": files,
            "note": self.note,
            "preprocess": self.preprocess,
        }


def same_images(a: DigitData, b: DigitData) -> bool:
    """Whether two splits hold the same images (MNIST without its training split: train is test).

    Compared by content: sign_digits' two splits come from one folder, so their files alone look the same.
    """
    return len(a) == len(b) and torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)


def drawn_from(data: DigitData, other: DigitData, probes: int = 8) -> bool:
    """Whether ``data``'s images come from ``other`` (MNIST without its training files trains on its test split):
    its first ``probes`` images, with their labels, all occur in ``other``. Disjoint splits share none of them."""
    n = min(probes, len(data))
    if n == 0 or data.images.shape[1:] != other.images.shape[1:]:
        return False
    flat = other.images.flatten(1)
    return all(bool(((flat == data.images[i].flatten()).all(dim=1) & (other.labels == data.labels[i])).any())
               for i in range(n))


def preprocess_problem(dataset: str, preprocess: object) -> str | None:
    """Why ``dataset.preprocess`` cannot apply to ``dataset`` (one line), or None when it can."""
    if not isinstance(preprocess, str) or preprocess not in PREPROCESSINGS:
        return f"dataset.preprocess={preprocess!r} is invalid: choose one of {', '.join(PREPROCESSINGS)}"
    if dataset not in PREPROCESSINGS[preprocess]:
        allowed = " or ".join(f"dataset={d}" for d in PREPROCESSINGS[preprocess])
        return (f"dataset.preprocess={preprocess} is for {allowed} only, not dataset={dataset}; "
                f"drop it or set dataset.preprocess={DEFAULT_PREPROCESS}")
    return None


def dataset_label(dataset: Mapping[str, Any]) -> str:
    """The dataset a run's numbers belong to (its ``dataset`` tag): the name, plus the preprocessing when not the default.

    Other preprocessing means other real images, classifier and reference row: "hoda+hoda_reader" keeps them apart,
    while the default keeps the plain name every earlier run was tagged with.
    """
    preprocess = str(dataset.get("preprocess") or DEFAULT_PREPROCESS)
    name = str(dataset["name"])
    return name if preprocess == DEFAULT_PREPROCESS else f"{name}+{preprocess}"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Folder holding hoda/, mnist/, sign_digits/: explicit, $GANBENCH_DATA, ../shared/data or ./data."""
    if explicit is not None and str(explicit) != "":
        chosen = str(explicit)
    elif os.environ.get("GANBENCH_DATA"):
        chosen = os.environ["GANBENCH_DATA"]
    elif Path("../shared/data").is_dir():
        chosen = "../shared/data"
    else:
        chosen = "data"
    # Absolute now, so a later chdir (Hydra's run folder) cannot change what it means;
    # abspath (not resolve) keeps the user's symlinks readable in messages.
    return Path(os.path.abspath(os.path.expanduser(chosen)))


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes with hashlib's `algorithm` ("sha256", "md5")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | os.PathLike, sha256: str) -> dict:
    """The entry DigitData.files holds for one source file."""
    return {"path": str(path), "sha256": sha256}
