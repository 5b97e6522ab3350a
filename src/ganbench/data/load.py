"""load_dataset: one entry point over every dataset, returning a DigitData ready for training."""

from __future__ import annotations

import os

import torch

from ganbench.data.core import DATASETS, SPLITS, DataError, DigitData, data_root
from ganbench.data.hoda import load_hoda
from ganbench.data.mnist import load_mnist
from ganbench.data.preprocess import check_image_size, to_unit_range
from ganbench.data.sign_digits import load_sign_digits

LOADERS = {"hoda": load_hoda, "mnist": load_mnist, "sign_digits": load_sign_digits}
NUM_CLASSES = 10


def load_dataset(
    name: str,
    split: str = "train",
    image_size: int = 28,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    download: bool = False,
) -> DigitData:
    """Load one split as (N, 1, S, S) float32 images in [-1, 1] with int64 labels; decoded once, then cached.

    limit=N keeps the first N images in the split's fixed order: file order for Hoda and MNIST
    ('Test 20000.cdb' is sorted by class, so a small limit there is all zeros), classes interleaved for sign_digits.
    """
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {name}; choose one of {', '.join(SPLITS)}")
    image_size = check_image_size(image_size)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")

    images, labels, files, note = LOADERS[name](data_root(root), split, image_size, bool(download))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return DigitData(
        images=to_unit_range(images),
        labels=labels.to(torch.int64),
        num_classes=NUM_CLASSES,
        name=name,
        split=split,
        image_size=image_size,
        files=files,
        note=note,
    )
