"""A rich progress bar for long reads, shown on a terminal only (stderr, transient)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterator

Advance = Callable[[int, int], None]


@contextmanager
def progress_bar(enabled: bool, description: str) -> Iterator[Advance | None]:
    """Yields ``advance(done, total)`` when ``enabled``, else None (and imports nothing).

    The bar (and rich's refresh thread) starts at the first ``advance``, so a reader may fork its worker
    processes before any thread exists.
    """
    if not enabled:
        yield None
        return
    state: dict[str, Any] = {}

    def advance(done: int, total: int) -> None:
        if "progress" not in state:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                                transient=True)
            progress.start()
            from engine.cli.output import printable

            # a file's name is data: no markup read in it, no control character sent to the terminal
            state["progress"], state["task"] = progress, progress.add_task(printable(description), total=total)
        state["progress"].update(state["task"], completed=done, total=total)

    try:
        yield advance
    finally:
        if "progress" in state:
            state["progress"].stop()
