"""load_dataset: one entry point over every dataset, returning a DigitData ready for training."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ganbench.data.core import DATASETS, DEFAULT_PREPROCESS, SPLITS, DataError, DigitData, data_root, preprocess_problem
from ganbench.data.hoda import load_hoda
from ganbench.data.mnist import load_mnist
from ganbench.data.preprocess import check_image_size, to_unit_range
from ganbench.data.sign_digits import load_sign_digits

log = logging.getLogger(__name__)

LOADERS = {"hoda": load_hoda, "mnist": load_mnist, "sign_digits": load_sign_digits}
NUM_CLASSES = 10
Split = tuple[torch.Tensor, torch.Tensor, list[dict], str]  # uint8 images, labels, files read, note


def load_dataset(
    name: str,
    split: str = "train",
    image_size: int = 28,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    download: bool = False,
    preprocess: str = DEFAULT_PREPROCESS,
    with_test: bool = False,
) -> DigitData:
    """Load one split as (N, 1, S, S) float32 images in [-1, 1] with int64 labels; decoded once, then cached.

    limit=N keeps the first N images in the split's fixed order: file order for Hoda and MNIST
    ('Test 20000.cdb' is sorted by class, so a small limit there is all zeros), classes interleaved for sign_digits.
    preprocess: "mnist" (every dataset) or "hoda_reader" (Hoda only; HodaDatasetReader's images, exactly -1 and 1).
    with_test=True (split "train" only; dataset.train_with_test) appends the test split, as seed S3 trained:
    the split is then "train+test" and the test split is no longer held out.
    """
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {name}; choose one of {', '.join(SPLITS)}")
    image_size = check_image_size(image_size)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")
    problem = preprocess_problem(name, preprocess)
    if problem is not None:
        raise DataError(problem)
    if with_test and split != "train":
        raise DataError(f"with_test adds the test split to the training split; it does not apply to split={split!r}")

    folder = data_root(root)
    images, labels, files, note = read_split(name, folder, split, image_size, download, preprocess)
    if with_test:
        images, labels, files, note = add_test_split(
            (images, labels, files, note), read_split(name, folder, "test", image_size, download, preprocess)
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return DigitData(
        images=to_unit_range(images),
        labels=labels.to(torch.int64),
        num_classes=NUM_CLASSES,
        name=name,
        split="train+test" if with_test else split,
        image_size=image_size,
        files=files,
        note=note,
        preprocess=preprocess,
    )


def read_split(name: str, root: Path, split: str, image_size: int, download: bool, preprocess: str) -> Split:
    """One split from its dataset's loader (cached uint8); only Hoda has a preprocessing besides the default."""
    if preprocess == DEFAULT_PREPROCESS:
        return LOADERS[name](root, split, image_size, download)
    return load_hoda(root, split, image_size, download, preprocess)  # preprocess_problem allows Hoda only


def add_test_split(train: Split, test: Split) -> Split:
    """The training split followed by the test split, files of both, and a note that the test split is not held out."""
    images, labels, files, _note = train
    test_images, test_labels, test_files, _test_note = test
    if torch.equal(labels, test_labels) and torch.equal(images, test_images):
        # MNIST without its training files already trains on the test split: adding it again would double it.
        note = f"train_with_test: the training split is the test split ({len(labels):,} images); it is not held out"
        log.warning(note)
        return images, labels, files, note
    known = {f["path"] for f in files}
    note = (f"train_with_test: the train split and the test split together ({len(labels):,} + {len(test_labels):,} "
            "images); the test split is not held out")
    log.warning(note)
    return (torch.cat([images, test_images]), torch.cat([labels, test_labels]),
            files + [f for f in test_files if f["path"] not in known], note)
