"""On-disk cache of decoded, preprocessed uint8 images, keyed by source checksums."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ganbench.data.core import DataError, file_digest
from ganbench.files import WriteError, atomic_save_torch

log = logging.getLogger(__name__)

# Bump when decoding or preprocessing changes, so old cache entries are never reused.
PREPROCESS_VERSION = "v1"

# sha256 by (path, size, mtime): a warm load in the same process skips re-hashing.
_sha_memo: dict[tuple[str, int, int], str] = {}


def cache_root() -> Path:
    """$GANBENCH_CACHE, else ~/.cache/ganbench; created on demand."""
    chosen = os.environ.get("GANBENCH_CACHE") or os.path.join("~", ".cache", "ganbench")
    root = Path(os.path.abspath(os.path.expanduser(chosen)))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot create the cache folder {root} ({err.strerror}); set GANBENCH_CACHE to a writable folder"
        ) from err
    return root


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered for the process while its size and mtime stay the same."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _sha_memo:
        _sha_memo[key] = file_digest(path)
    return _sha_memo[key]


def forget_file_hashes() -> None:
    """Drop the remembered sha256s, so the next load hashes its files again (as a new process would)."""
    _sha_memo.clear()


def cache_key(**parts: object) -> str:
    """Short stable digest of everything that determines a cache entry's contents."""
    blob = json.dumps({"preprocess": PREPROCESS_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(name: str, key: str) -> Path:
    """Where the cache entry `name`-`key` lives (under cache_root()/data/)."""
    return cache_root() / "data" / f"{name}-{key}.pt"


def load_cached(path: Path, image_size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(uint8 images (N,S,S), int64 labels) from a cache file, or None when absent or unusable."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = entry["images"], entry["labels"]
        ok = (
            images.dtype == torch.uint8
            and labels.dtype == torch.int64
            and images.ndim == 3
            and tuple(images.shape[1:]) == (image_size, image_size)
            and labels.shape == (images.shape[0],)
        )
    except Exception as err:  # any unreadable file is rebuilt, whatever torch raised
        log.warning("cache file %s is unreadable (%s); rebuilding it", path, type(err).__name__)
        return None
    if not ok:
        log.warning("cache file %s has unexpected contents; rebuilding it", path)
        return None
    return images, labels


def save_cached(path: Path, images: torch.Tensor, labels: torch.Tensor, meta: dict[str, str]) -> None:
    """Store uint8 images and int64 labels atomically; a cache that cannot be written only warns."""
    entry = {"images": images.contiguous(), "labels": labels.contiguous(), "meta": meta}
    try:
        atomic_save_torch(path, entry, "set GANBENCH_CACHE to a folder with room")
    except WriteError as err:
        log.warning("%s; continuing without the cache", err)


def cached_build(
    name: str,
    key: str,
    image_size: int,
    build: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    meta: dict[str, str],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the cache entry for (name, key) when valid, else build it, store it and return it."""
    try:
        path = cache_path(name, key)
    except DataError as err:
        log.warning("%s; continuing without cache", err)
        return build()
    cached = load_cached(path, image_size)
    if cached is not None:
        return cached
    images, labels = build()
    save_cached(path, images, labels, meta)
    return images, labels
