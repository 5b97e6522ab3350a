"""Fetching dataset files from their public homes: checksum-verified, written atomically."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from ganbench.data.cache import cache_root
from ganbench.data.core import DataError, file_digest

log = logging.getLogger(__name__)

USER_AGENT = "ganbench/0.1 (dataset download)"
TIMEOUT_S = 60


def verify_checksum(path: str | os.PathLike, expected: str, algorithm: str = "sha256") -> None:
    """Raise DataError unless the file's `algorithm` digest equals `expected`."""
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise DataError(
            f"{Path(path).name}: {algorithm} is {actual}, expected {expected}; "
            "the file is corrupt or not the published one, delete it and download again"
        )


def writable_dir(preferred: Path, fallback_name: str) -> Path:
    """`preferred` when it can be created and written, else cache_root()/downloads/<fallback_name>."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):
            return preferred
    except OSError:
        pass
    fallback = cache_root() / "downloads" / fallback_name
    fallback.mkdir(parents=True, exist_ok=True)
    log.warning("%s is not writable; downloading into %s instead", preferred, fallback)
    return fallback


def download_file(
    urls: Sequence[str],
    dest: Path,
    verify: Callable[[Path], None],
) -> Path:
    """Download the first URL that works into `dest`, verified by `verify(tmp_path)` before it appears.

    The file is written under a temp name in dest's folder and renamed in only after verify passes,
    so an interrupted or wrong download never looks like a dataset file.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        handle = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False)
        tmp = Path(handle.name)
        try:
            log.info("downloading %s -> %s", url, dest)
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with handle, urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                shutil.copyfileobj(response, handle, 1 << 20)
            verify(tmp)
            os.chmod(tmp, 0o644)  # a dataset file, not a private temp file
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as err:
            failures.append(f"{url}: {getattr(err, 'reason', err)}")
        except DataError as err:
            failures.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(
        f"could not download {dest.name} ({'; '.join(failures)}); "
        f"check the internet connection or put the file at {dest} by hand"
    )


def search_dirs(root: Path, sub: str) -> list[Path]:
    """Where a dataset's files may be: root/<sub>, then cache_root()/downloads/<sub> (earlier downloads)."""
    dirs = [root / sub]
    try:
        downloads = cache_root() / "downloads" / sub
    except DataError:  # no usable cache folder: only the data root counts
        return dirs
    if downloads != dirs[0]:
        dirs.append(downloads)
    return dirs
