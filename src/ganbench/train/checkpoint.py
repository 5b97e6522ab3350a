"""Checkpoint files: written atomically, read back without unpickling code."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ganbench.errors import first_line
from ganbench.files import atomic_save_torch

FORMAT = "ganbench-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file that is missing, damaged or not ganbench's."""


CHECKPOINT_HINT = "free some space there or set train.checkpoint_dir to a folder with room"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], hint: str = CHECKPOINT_HINT) -> Path:
    """Write ``payload`` (tensors, numbers, strings, dicts, lists) to ``path`` atomically: a temp file, then rename."""
    return atomic_save_torch(path, {"format": FORMAT, "version": VERSION, **payload}, hint)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a ganbench checkpoint; anything else, or a damaged file, raises CheckpointError.

    ``weights_only=True`` so a file from elsewhere can never run code while loading.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise CheckpointError(f"{path} is not a readable ganbench checkpoint ({first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganbench checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}, this ganbench reads {VERSION}")
    return payload


def config_key(config: dict[str, Any], ignore: tuple[str, ...]) -> str:
    """A short hash of what a run trains, leaving out dotted keys in ``ignore`` (tracking, resume policy, ...)."""
    pruned = copy.deepcopy(config)
    for dotted in ignore:
        node = pruned
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    blob = json.dumps(pruned, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class CheckpointDir:
    """The resume checkpoints of one config + seed: ``step_000500.pt``, ..., keeping the newest ``keep``."""

    def __init__(self, root: str | os.PathLike, key: str, keep: int = 2):
        self.path = Path(root) / key
        self.keep = max(1, keep)

    def save(self, step: int, payload: dict[str, Any]) -> Path:
        path = save_checkpoint(self.path / f"step_{step:09d}.pt", payload)
        for old in self.files()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def files(self) -> list[Path]:
        """Checkpoint files, oldest first (temp files of an interrupted write are not listed)."""
        return sorted(self.path.glob("step_*.pt")) if self.path.is_dir() else []

    def latest(self, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any] | None, list[str]]:
        """The newest readable checkpoint (or None) and a line for each damaged one that was skipped."""
        skipped = []
        for path in reversed(self.files()):
            try:
                return load_checkpoint(path, map_location), skipped
            except CheckpointError as exc:
                skipped.append(str(exc))
        return None, skipped

    def clear(self) -> None:
        """Remove this run's checkpoints (after it finished: the final one lives in MLflow)."""
        if self.path.is_dir():
            for f in self.path.iterdir():
                f.unlink(missing_ok=True)
            self.path.rmdir()
