"""MNIST from torchvision's raw layout (idx files, gzipped or not), read with numpy."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.data.cache import cache_key, cached_build, file_sha256
from ganbench.data.core import WHERE_TO_GET, DataError, file_record
from ganbench.data.download import download_file, search_dirs, verify_checksum, writable_dir
from ganbench.data.preprocess import resize_batch

log = logging.getLogger(__name__)

RAW_DIR = "mnist/MNIST/raw"
# torchvision's mirrors and md5 sums (torchvision.datasets.MNIST.resources).
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PREFIX = {"train": "train", "test": "t10k"}
IDX_MAGIC = {1: 2049, 3: 2051}  # labels (1-D), images (3-D), unsigned bytes


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an idx-ubyte file (plain or .gz) of `ndim` dimensions as a uint8 array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path.name}: cannot read {path} ({err}); replace it with a fresh copy") from err
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path.name}: {len(raw)} bytes, shorter than the idx header ({header} bytes) in {path}")
    magic = int.from_bytes(raw[0:4], "big")
    if magic != IDX_MAGIC[ndim]:
        raise DataError(f"{path.name}: idx magic number {magic} at byte offset 0, expected {IDX_MAGIC[ndim]} in {path}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path.name}: {len(raw) - header} data bytes after the header, expected {expected} for shape {shape} in {path}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_pair(root: Path, prefix: str) -> tuple[Path, Path] | None:
    """(images, labels) paths for a split prefix ('train' or 't10k'), .gz or not, or None."""
    for folder in search_dirs(root, RAW_DIR):
        pair = []
        for kind in ("images-idx3", "labels-idx1"):
            stem = folder / f"{prefix}-{kind}-ubyte"
            found = next((p for p in (stem.with_name(stem.name + ".gz"), stem) if p.is_file()), None)
            pair.append(found)
        if all(pair):
            return pair[0], pair[1]
    return None


def _download_pair(root: Path, prefix: str) -> tuple[Path, Path]:
    folder = writable_dir(root / RAW_DIR, RAW_DIR)
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte.gz"
        urls = [mirror + name for mirror in MIRRORS]
        paths.append(download_file(urls, folder / name, lambda tmp, name=name: verify_checksum(tmp, MD5[name], "md5")))
    return paths[0], paths[1]


def mnist_split_files(root: Path, split: str, download: bool) -> tuple[tuple[Path, Path], str]:
    """The (images, labels) files a split reads, and a note template when the test split stands in for train."""
    pair = _find_pair(root, PREFIX[split])
    if pair is None and download:
        try:
            pair = _download_pair(root, PREFIX[split])
        except DataError as err:
            # Like Hoda: a failed training download still leaves the test split to train on.
            if split != "train":
                raise
            if _find_pair(root, PREFIX["test"]) is None:
                try:
                    _download_pair(root, PREFIX["test"])
                except DataError:
                    raise err from None
            log.warning("%s; falling back to the test split", err)
    if pair is not None:
        return pair, ""
    if split == "train":
        pair = _find_pair(root, PREFIX["test"])
        if pair is not None:
            return pair, "MNIST training split not found; training on the test split ({count:,} images)"
    folder = root / RAW_DIR
    raise DataError(
        f"mnist: no MNIST idx files in {folder} (expected t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz, "
        "and train-*.gz for the training split); " + WHERE_TO_GET.format(name="mnist")
    )


def _to_size(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """28 native; 32 zero-pads 2 pixels per side (as the seed reports did); other sizes resize."""
    if image_size == 28:
        return images
    if image_size == 32:
        return F.pad(images, (2, 2, 2, 2))
    return resize_batch(images, image_size)


def load_mnist(root: Path, split: str, image_size: int, download: bool) -> tuple[torch.Tensor, torch.Tensor, list[dict], str]:
    """uint8 (N, S, S) images, labels, files read and note for one MNIST split (cached)."""
    (image_path, label_path), note = mnist_split_files(root, split, download)
    shas = [file_sha256(image_path), file_sha256(label_path)]

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        images = read_idx(image_path, 3)
        labels = read_idx(label_path, 1).astype(np.int64)
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"mnist: {image_path.name} has {images.shape[0]} images but {label_path.name} has {labels.shape[0]} labels"
            )
        if labels.size and labels.max() >= 10:
            raise DataError(f"mnist: {label_path.name} holds label {labels.max()}, outside 0-9")
        return _to_size(torch.from_numpy(images.copy()), image_size), torch.from_numpy(labels)

    key = cache_key(dataset="mnist", sha256=shas, image_size=image_size)
    meta = {"source": f"{image_path.name},{label_path.name}"}
    images, labels = cached_build("mnist", key, image_size, build, meta)
    if note:
        note = note.format(count=len(labels))
        log.warning(note)
    return images, labels, [file_record(image_path, shas[0]), file_record(label_path, shas[1])], note
