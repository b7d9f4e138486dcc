"""What every command shares: ``--url`` and ``--json``, JSON output, the store, progress bars.

The options and JSON output live in :mod:`ledger.cli._options` and :mod:`ledger.cli._output`
(which import neither rich nor the store) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.cli._options import json_option, url_option
from ledger.cli._output import emit_json
from ledger.store import EventStore

__all__ = ["emit_json", "json_option", "open_store", "progress_bar", "url_option"]


@contextmanager
def open_store(url: str | None, *, create: bool = True) -> Iterator[EventStore]:
    """The store at ``url`` (or the configured default), closed on exit.

    Read-only commands pass ``create=False``: a mistyped SQLite path is then an error naming
    it, never a new empty database.
    """
    store = EventStore.open(url, create=create)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def progress_bar(label: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``. Silent when ``quiet``."""
    if quiet:
        yield lambda _n: None
        return
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=total or None)
        yield lambda n: progress.advance(task, n)
