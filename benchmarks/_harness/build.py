"""Writing the large log a read-side benchmark measures, in a child process.

The log is built as a bare log (``EventStore.open(..., inline_projections=())``) in big
``append_streams`` transactions, by a spawned process: its memory then never counts in the peak
RSS of the process that measures, which thus covers only what is measured.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ledger import EventStore, StreamAppend

from .databases import scratch_folder
from .machine import peak_rss_mib
from .output import log
from .timing import progress_logger

__all__ = ["build_figures", "built_log", "in_child", "write_log"]


def write_log(
    url: str,
    writer: str,
    transactions: Iterable[list[StreamAppend]],
    total: int,
    *,
    report_first: bool = False,
) -> tuple[int, int, float]:
    """Append each of ``transactions`` to a bare log at ``url``, logging about every 10% of
    ``total`` events (and after the first transaction with ``report_first``).

    Returns the events and transactions written and the seconds it took.
    """
    progress = progress_logger(
        lambda done: f"build: {done:,}/{total:,} events", total, first=0 if report_first else None
    )
    written = count = 0
    started = time.perf_counter()
    with EventStore.open(url, writer=writer, inline_projections=()) as store:
        for parts in transactions:
            store.append_streams(parts)
            size = sum(len(part.events) for part in parts)
            written += size
            count += 1
            progress(size)
    return written, count, time.perf_counter() - started


def build_figures(events: int, seconds: float) -> dict[str, Any]:
    """The timing of a build and the peak RSS of the (child) process that ran it."""
    return {
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1),
        "child_peak_rss_mib": round(peak_rss_mib(), 1),
    }


@contextmanager
def built_log(
    directory: str | None, build: Callable[..., dict[str, Any]], *args: object
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A scratch folder (under ``directory``) whose ``ledger.db`` ``build(url, *args)`` wrote
    in a child process: yields the file and the build's figures, with the file's size."""
    with scratch_folder(directory) as folder:
        path = folder / "ledger.db"
        log(f"sqlite: file {path}")
        figures = in_child(build, f"sqlite:///{path}", *args)
        figures["file_mib"] = round(path.stat().st_size / 2**20, 1)
        yield path, figures


def in_child(build: Callable[..., dict[str, Any]], *args: object) -> dict[str, Any]:
    """Run ``build(*args)`` in a spawned process, so its memory never counts as ours."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(build, args)
    return result
