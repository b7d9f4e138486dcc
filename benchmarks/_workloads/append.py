"""What the contenders of ``benchmarks/append.py`` do: the ledger's appends and the baselines.

Every side writes ~220-byte ``MessageAppended`` events (or rows of the same shape) rotating
over ``STREAMS`` streams: the ledger through :meth:`EventStore.append`, one event or
``BATCH_SIZE`` events per call; the single-row baseline as Core one-row commits; the batch
baselines through the bare driver, ``executemany`` of ``BATCH_SIZE`` rows in one transaction
(``sqlite3`` with the ledger's PRAGMAs, ``psycopg`` which pipelines it). Each runner returns the
seconds of ``n`` operations, with no per-operation latencies.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec
import psycopg
import sqlalchemy as sa
from _harness.databases import CONTENT, EVENT_TYPE, SCHEMA_VERSION, core_committer, event_row
from _harness.timing import Runner, Timing

from ledger import EventStore, MessageAppended
from ledger.config import Settings

__all__ = [
    "BATCH_SIZE",
    "PAYLOAD",
    "STREAMS",
    "VARIANTS",
    "WRITER",
    "core_singles",
    "ledger_runner",
    "open_sqlite3",
    "open_stores",
    "ordered",
    "psycopg_batches",
    "sqlite3_batches",
]

STREAMS = 10
BATCH_SIZE = 1000
WRITER = "benchmark:append"
#: Store variants: label -> (stream-name prefix, inline projections; ``None`` = installed ones).
#: The views-on path first: it is the one users run, and reports list it first.
VARIANTS: dict[str, tuple[str, tuple[()] | None]] = {
    "log+views": ("session-", None),
    "log": ("log-", ()),
}
INSERT_COLUMNS = (
    "stream",
    "sequence",
    "type",
    "data",
    "event_id",
    "writer",
    "recorded_at",
    "schema_version",
)


class Labelled(Protocol):
    """A result that names the store variant it measured."""

    @property
    def store(self) -> str: ...


L = TypeVar("L", bound=Labelled)


def ordered(results: Sequence[L]) -> list[L]:
    """``results`` in the order of ``VARIANTS`` (views on first), then as measured."""
    order = list(VARIANTS)
    return sorted(results, key=lambda r: order.index(r.store))


def open_stores(
    urls: Mapping[str, str], writer: str, settings: Settings, stack: ExitStack
) -> dict[str, EventStore]:
    """One store per variant at ``urls[variant]``, closed by ``stack``."""
    stores: dict[str, EventStore] = {}
    for variant, (_, projections) in VARIANTS.items():
        store = EventStore.open(
            urls[variant], writer=writer, settings=settings, inline_projections=projections
        )
        stack.callback(store.close)
        stores[variant] = store
    return stores


def make_message(index: int, session_id: str = "single-00") -> MessageAppended:
    """The ``index``-th message: ~220 bytes of JSON once encoded."""
    return MessageAppended(
        session_id=session_id,
        message_id=f"m{index:010d}",
        role="assistant",
        content=CONTENT,
    )


#: What the baselines store as ``data``: the encoding of a typical message, made once.
PAYLOAD = msgspec.json.encode(make_message(0))


class StreamCursor:
    """Rotates over ``STREAMS`` stream names and hands out their next sequences."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.turn = itertools.count()
        self.heads: defaultdict[str, int] = defaultdict(int)

    def take(self, size: int) -> tuple[str, int]:
        """The next stream and the first of ``size`` sequences reserved on it."""
        stream = f"{self.prefix}-{next(self.turn) % STREAMS}"
        first = self.heads[stream] + 1
        self.heads[stream] += size
        return stream, first


def insert_sql(table: str, marker: str) -> str:
    """A plain ``INSERT`` of one row into ``table`` with the driver's parameter ``marker``."""
    names = ", ".join(INSERT_COLUMNS)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join([marker] * len(INSERT_COLUMNS))})"


# -- runners (each returns the seconds of ``n`` operations; no per-operation latencies) --------


def ledger_runner(store: EventStore, prefix: str, case: str, size: int) -> Runner:
    """``store.append`` of ``size`` events per call to ``<prefix><case>-NN``, rotating streams.

    The events are built before the clock starts: making them is the caller's work.
    """
    turn = itertools.count()
    numbers = itertools.count()

    def run(n: int) -> Timing:
        work = []
        for _ in range(n):
            session_id = f"{case}-{next(turn) % STREAMS:02d}"
            events = [make_message(next(numbers), session_id) for _ in range(size)]
            work.append((f"{prefix}{session_id}", events))
        start = time.perf_counter()
        for stream, batch in work:
            store.append(stream, batch)
        return time.perf_counter() - start, []

    return run


def core_singles(engine: sa.Engine, table: sa.Table) -> Runner:
    """One Core ``INSERT`` per ``engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite, as the store)."""
    commit = core_committer(engine, table)
    streams = StreamCursor("single")

    def run(n: int) -> Timing:
        start = time.perf_counter()
        for _ in range(n):
            commit(event_row(*streams.take(1), PAYLOAD, WRITER))
        return time.perf_counter() - start, []

    return run


def batch_runner(write: Callable[[list[tuple[Any, ...]]], None], as_text: bool) -> Runner:
    """``write`` of ``BATCH_SIZE`` fresh rows (in ``INSERT_COLUMNS`` order) per operation.

    With ``as_text`` the UUID and the timestamp are stored as SQLAlchemy stores them on SQLite:
    hex UUID, naive UTC timestamp text; else as the driver's ``UUID`` and ``datetime``.
    """
    streams = StreamCursor("batch")

    def run(n: int) -> Timing:
        start = time.perf_counter()
        for _ in range(n):
            stream, first = streams.take(BATCH_SIZE)
            stamp = dt.datetime.now(dt.UTC)
            now = stamp.replace(tzinfo=None).isoformat(sep=" ") if as_text else stamp
            rows = [
                (
                    stream,
                    first + i,
                    EVENT_TYPE,
                    PAYLOAD,
                    uuid.uuid4().hex if as_text else uuid.uuid4(),
                    WRITER,
                    now,
                    SCHEMA_VERSION,
                )
                for i in range(BATCH_SIZE)
            ]
            write(rows)
        return time.perf_counter() - start, []

    return run


def sqlite3_batches(conn: sqlite3.Connection, table: str) -> Runner:
    """``executemany`` of ``BATCH_SIZE`` rows between ``BEGIN IMMEDIATE`` and ``COMMIT``."""
    sql = insert_sql(table, "?")

    def write(rows: list[tuple[Any, ...]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")

    return batch_runner(write, as_text=True)


def psycopg_batches(conn: psycopg.Connection[Any], table: str) -> Runner:
    """``executemany`` (pipelined by psycopg) of ``BATCH_SIZE`` rows in one transaction."""
    sql = insert_sql(table, "%s")

    def write(rows: list[tuple[Any, ...]]) -> None:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    return batch_runner(write, as_text=False)


def open_sqlite3(path: Path, settings: Settings) -> sqlite3.Connection:
    """A bare ``sqlite3`` connection with the ledger's PRAGMAs, transactions begun by us."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=settings.busy_timeout_ms / 1000)
    conn.execute(f"PRAGMA busy_timeout = {settings.busy_timeout_ms}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
    return conn
