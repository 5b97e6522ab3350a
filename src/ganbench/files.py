"""Files written whole or not at all: a reader (another job, another node, a re-run) never sees half of one."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ganbench.errors import UserError

DEFAULT_HINT = "free some space there or choose another folder"


class WriteError(UserError):
    """A file could not be written (no space, no permission, read-only): what, where, and what to do."""


def write_error(what: str, where: str | os.PathLike, exc: OSError, hint: str = DEFAULT_HINT) -> WriteError:
    """The one-line error for an OSError met while writing ``what`` to ``where``."""
    reason = exc.strerror or type(exc).__name__
    return WriteError(f"could not write {what} to {where} ({reason}); {hint}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temps(path: Path) -> None:
    """Delete temp files of ``path`` whose writer is gone (killed with SIGKILL mid-write): ``.<name>.<pid>.*.tmp``."""
    for temp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = temp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            temp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], hint: str = DEFAULT_HINT) -> Path:
    """Write ``path`` through a temp file in the same folder, fsync it and ``os.replace`` it in, or leave nothing.

    An OSError (a full disk, no permission, a read-only folder) becomes a ``WriteError`` naming the file and ``hint``.
    A temp file left by a writer killed mid-write is removed by the next write of the same file.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        # The writer's pid in the temp name: a later write can tell a dead writer's leftover from a live one's.
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", delete=False)
        tmp = Path(handle.name)
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # Also on KeyboardInterrupt: a half-written temp file must not stay behind.
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path.name, path.parent, exc, hint) from None
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, hint: str = DEFAULT_HINT) -> Path:
    """``data`` into ``path``, atomically."""
    return atomic_write(path, lambda handle: handle.write(data), hint)


def atomic_write_text(path: str | os.PathLike, text: str, hint: str = DEFAULT_HINT) -> Path:
    """UTF-8 ``text`` into ``path``, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), hint)


def atomic_save_torch(path: str | os.PathLike, obj: Any, hint: str = DEFAULT_HINT) -> Path:
    """``torch.save(obj)`` into ``path``, atomically.

    Serialised in memory first: torch's zip writer reports a full disk as an internal RuntimeError
    ("unexpected pos ..."), a plain file write as the OSError it is, which becomes a clear WriteError.
    """
    import torch  # here, not at the top: the report writes its files with this module and starts without torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda handle: handle.write(buffer.getbuffer()), hint)


def atomic_write_json(path: str | os.PathLike, data: Any, hint: str = DEFAULT_HINT) -> Path:
    """``data`` as indented, key-sorted JSON into ``path``, atomically."""
    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str), hint)
