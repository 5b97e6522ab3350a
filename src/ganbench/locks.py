"""An exclusive inter-process file lock, for what parallel sweep jobs must not do twice at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing, with its folder) for the ``with`` block.

    ``filelock`` picks the OS's own mechanism (``fcntl`` on POSIX, ``msvcrt`` on Windows).
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path)):
        yield
