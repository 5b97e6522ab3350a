"""The one progress bar every long loop shows (training, classifier training, evaluation)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextlib.contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """A rich progress bar; yields ``update(n=1, status="", completed=None)`` (``completed`` sets the position)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    task = progress.add_task(description, total=total, status="")

    def update(n: int = 1, status: str = "", completed: int | None = None) -> None:
        if completed is None:
            progress.update(task, advance=n, status=status)
        else:
            progress.update(task, completed=completed, status=status)

    with progress:
        yield update
