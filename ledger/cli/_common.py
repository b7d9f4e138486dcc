"""What every command shares: ``--url`` and ``--json``, JSON output, the store, progress bars."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.store import EventStore

__all__ = ["emit_json", "json_option", "open_store", "progress_bar", "url_option"]

F = TypeVar("F", bound=Callable[..., Any])


def url_option(func: F) -> F:
    """``--url``: the database to use."""
    return click.option(
        "--url",
        envvar="LEDGER_DATABASE_URL",
        default=None,
        help="SQLAlchemy URL (default: LEDGER_DATABASE_URL, else $LEDGER_HOME/ledger.db).",
    )(func)


def json_option(func: F) -> F:
    """``--json``: print machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def emit_json(data: object) -> None:
    """Print ``data`` as JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


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
