"""Sign Language Digits: 100x100 RGB photos of hands in class folders 0-9, made grayscale."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganbench.data.cache import cache_key, cache_root, cached_build, file_sha256
from ganbench.data.core import WHERE_TO_GET, DataError, file_record
from ganbench.data.download import download_file, search_dirs, writable_dir

log = logging.getLogger(__name__)

DATASET_DIR = "sign_digits/Dataset"
CLASSES = tuple(str(digit) for digit in range(10))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ZIP_URL = "https://github.com/ardamavi/Sign-Language-Digits-Dataset/archive/refs/heads/master.zip"
# tree_digest() of the 2,062-image copy in shared/data (upstream master); GitHub rebuilds its zip
# archives, so the images, not the zip, are what is checked.
TREE_SHA256 = "b9b1e9268f27f0449ebba89006e796af42053c5f84428d1a1fc4edc2dfe6f251"
# Every 5th image of a class (sorted by file name) is held out: a fixed, stratified 80/20 split.
TEST_EVERY = 5


def class_images(dataset_dir: Path) -> dict[str, list[Path]]:
    """Image files per class folder, sorted by name; DataError when a folder is missing or empty."""
    found = {}
    for cls in CLASSES:
        folder = dataset_dir / cls
        if not folder.is_dir():
            raise DataError(
                f"sign_digits: class folder {folder} is missing (expected folders 0-9 of .JPG images); "
                + WHERE_TO_GET.format(name="sign_digits")
            )
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"sign_digits: class folder {folder} holds no images; restore it from the dataset")
        found[cls] = files
    return found


def tree_digest(dataset_dir: Path, per_class: dict[str, list[Path]] | None = None) -> str:
    """sha256 over the sorted 'class/file<TAB>sha256' lines of every image: one digest for the folder."""
    lines = []
    for cls, files in (per_class or class_images(dataset_dir)).items():
        lines.extend(f"{cls}/{path.name}\t{file_sha256(path)}\n" for path in files)
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def split_files(per_class: dict[str, list[Path]], split: str) -> tuple[list[Path], list[int]]:
    """The split's images and labels, interleaving classes so any prefix (limit=N) is balanced."""
    chosen = []
    for label, cls in enumerate(CLASSES):
        files = per_class[cls]
        picked = [p for i, p in enumerate(files) if (i % TEST_EVERY == TEST_EVERY - 1) == (split == "test")]
        chosen.extend((rank, label, path) for rank, path in enumerate(picked))
    chosen.sort(key=lambda item: (item[0], item[1]))
    return [path for _, _, path in chosen], [label for _, label, _ in chosen]


def read_gray(path: Path, image_size: int) -> np.ndarray:
    """One photo as uint8 grayscale image_size x image_size (LANCZOS, anti-aliased)."""
    try:
        with Image.open(path) as img:
            gray = img.convert("L")
            return np.asarray(gray.resize((image_size, image_size), Image.Resampling.LANCZOS))
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"sign_digits: cannot read image {path} ({err}); delete or replace that file") from err


def dataset_dir_for(root: Path, download: bool) -> Path:
    """The Dataset folder to read: root's, an earlier download, or a fresh download."""
    candidates = search_dirs(root, DATASET_DIR)
    for folder in candidates:
        if folder.is_dir():
            return folder
    if download:
        return _download(root)
    raise DataError(
        f"sign_digits: no Sign Language Digits images in {candidates[0]} (expected class folders 0-9 of .JPG); "
        + WHERE_TO_GET.format(name="sign_digits")
    )


def _download(root: Path) -> Path:
    """Fetch the GitHub zip, extract Dataset/0-9 into a temp folder, check the tree digest, move it in."""
    target = writable_dir(root / "sign_digits", "sign_digits") / "Dataset"
    with tempfile.TemporaryDirectory(dir=cache_root()) as scratch:
        archive = download_file([ZIP_URL], Path(scratch) / "sign_digits.zip", _check_zip)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".Dataset."))
        try:
            _extract_images(archive, staging)
            digest = tree_digest(staging)
            if digest != TREE_SHA256:
                raise DataError(
                    f"sign_digits: downloaded images have tree digest {digest}, expected {TREE_SHA256}; "
                    "the upstream repository changed, get the dataset by hand"
                )
            os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the dataset from other users
            if target.exists():  # an incomplete earlier copy: move it aside, then drop it
                stale = Path(tempfile.mkdtemp(dir=target.parent, prefix=".Dataset.old."))
                os.replace(target, stale / "Dataset")
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_zip(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise DataError(f"sign_digits: {path.name} is not a zip archive")


def _extract_images(archive: Path, staging: Path) -> None:
    """Copy '<top>/Dataset/<digit>/<image>' members only; names are rebuilt, so no path escapes staging."""
    pattern = re.compile(r"^[^/]+/Dataset/([0-9])/([^/]+)$")
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            match = pattern.match(member.filename)
            if not match or member.is_dir() or Path(match[2]).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            dest = staging / match[1] / match[2]
            dest.parent.mkdir(exist_ok=True)
            with zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def load_sign_digits(
    root: Path, split: str, image_size: int, download: bool
) -> tuple[torch.Tensor, torch.Tensor, list[dict], str]:
    """uint8 (N, S, S) grayscale images, labels, files read and note for one split (cached)."""
    dataset_dir = dataset_dir_for(root, download)
    per_class = class_images(dataset_dir)
    digest = tree_digest(dataset_dir, per_class)
    if digest != TREE_SHA256:
        log.warning("%s differs from the published Sign Language Digits images (tree digest %s)", dataset_dir, digest)

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        paths, labels = split_files(per_class, split)
        images = np.stack([read_gray(path, image_size) for path in paths])
        return torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64)

    key = cache_key(dataset="sign_digits", tree_sha256=digest, split=split, test_every=TEST_EVERY, image_size=image_size)
    images, labels = cached_build(f"sign_digits-{split}", key, image_size, build, {"source": str(dataset_dir)})
    return images, labels, [file_record(dataset_dir, digest)], ""
