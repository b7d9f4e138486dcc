"""Append throughput of ``EventStore`` against the physical limit of the same durable write.

Two cases, on SQLite and (with ``--postgres``) on PostgreSQL, in one run:

``single``
    One ``MessageAppended`` per :meth:`EventStore.append`, rotating over 10 streams (one per
    chat session), as a gateway records each message the moment it arrives. Baseline: raw
    SQLAlchemy Core, one ``INSERT`` of one row per ``with engine.begin()``, on an engine made by
    :func:`ledger.database.create_engine`, so the same PRAGMAs (SQLite) or server settings
    (PostgreSQL) apply. Target: ledger >= 0.8 x baseline.
``batch``
    1,000 events per :meth:`EventStore.append` (an import, a replayed transcript). Baseline: the
    bare driver, ``executemany`` of 1,000 rows in one transaction (``sqlite3`` with the same
    ``journal_mode=WAL`` and ``synchronous``; ``psycopg``, which pipelines ``executemany``).
    Target: ledger >= 0.5 x baseline.

Why the baselines are the physical limit: each commit of a durable transaction costs at least
one flush of the write-ahead log (``fsync`` of the SQLite WAL under ``synchronous=FULL``, of
PostgreSQL's WAL under ``synchronous_commit=on``), and a baseline does nothing else. It writes
the same row (stream, sequence, type, a ~220-byte JSON payload, a fresh UUID, writer,
timestamp, schema version) into a table of the same shape and indexes as ``events`` (an
autoincrement position, ``UNIQUE (stream, sequence)``, ``UNIQUE (event_id)``), but skips all
the ledger adds on top: encoding and validating the event, the append lock, reading and
moving the stream head, ``RETURNING`` positions and building the result. The ratio is thus
the share of the durable-write budget the ledger leaves to the caller.

The ledger runs twice on the same database: as a bare log (``inline_projections=()``, the
row-for-row comparison the targets are about) and as ``EventStore.open`` gives it by default,
with the installed inline projections (``sessions``, ``keys``) updating the session views in the
same transaction; its streams are named ``session-*`` so those views do their work. The second
row says what the views cost on top, against the same baseline; it carries no target.

Each case runs its contenders interleaved, in ``--rounds`` rounds that rotate their order, after
a short warm-up of each, so drift in the disk or the server hits every side alike.
SQLite files live in a fresh temporary folder (``--dir`` picks its parent: the file system
decides the cost of ``fsync``); PostgreSQL runs in a schema made for the run and dropped after.
The table goes to stdout, progress to stderr; with ``--json`` the table goes to stderr too and
stdout holds one JSON object with every figure.

    .venv/bin/python benchmarks/append.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec
import psycopg
import sqlalchemy as sa
from common import log, postgres_schema, raw_table, shown_url

from ledger import EventStore, MessageAppended
from ledger.store import migration
from ledger.config import Settings
from ledger.store.database import WRITE, create_engine

STREAMS = 10
BATCH_SIZE = 1000
SINGLE_TARGET = 0.8
BATCH_TARGET = 0.5
WRITER = "benchmark:append"
CONTENT = "Sure - the deploy finished at 14:02 and every check passed."
#: Store variants: label -> (stream-name prefix, inline projections; ``None`` = installed ones).
VARIANTS: dict[str, tuple[str, tuple[()] | None]] = {
    "log": ("log-", ()),
    "log+views": ("session-", None),
}
RAW_SINGLE = "raw_single"
RAW_BATCH = "raw_batch"
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
SQLITE_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

#: Performs ``n`` operations (appends or transactions) and returns the seconds they took.
Runner = Callable[[int], float]


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """What to run, from the command line."""

    count: int
    batches: int
    rounds: int
    warmup_singles: int
    warmup_batches: int
    synchronous: str
    postgres: str | None
    directory: str | None
    as_json: bool


@dataclass(frozen=True, slots=True)
class Result:
    """One ledger-versus-baseline comparison."""

    backend: str
    case: str
    store: str
    baseline: str
    events: int
    ledger_seconds: float
    baseline_seconds: float
    target: float | None

    @property
    def ledger_rate(self) -> float:
        return self.events / self.ledger_seconds

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.ledger_rate / self.baseline_rate

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "ledger_events_per_s": round(self.ledger_rate, 1),
            "baseline_events_per_s": round(self.baseline_rate, 1),
            "ratio": round(self.ratio, 3),
            "meets_target": None if self.target is None else self.ratio >= self.target,
        }


@dataclass(slots=True)
class Report:
    """Everything measured in one run, with the database settings it ran under."""

    options: Options
    environment: dict[str, dict[str, str]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="EventStore.append throughput against raw-driver baselines."
    )
    parser.add_argument("--count", type=int, default=2000, help="single appends (2000)")
    parser.add_argument("--batches", type=int, default=20, help="appends of 1,000 events (20)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per pair (5)")
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    parser.add_argument(
        "--synchronous",
        type=str.upper,
        choices=("FULL", "NORMAL", "EXTRA"),
        default="FULL",
        help="SQLite PRAGMA synchronous for the ledger and the baselines (FULL)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("LEDGER_TEST_POSTGRES_URL") or None,
        help="PostgreSQL database to measure too (default: $LEDGER_TEST_POSTGRES_URL; '' skips)",
    )
    parser.add_argument("--dir", dest="directory", help="parent folder of the SQLite files")
    parser.add_argument("--json", dest="as_json", action="store_true", help="JSON on stdout")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.batches, args.rounds = 100, 3, 2
    if min(args.count, args.batches, args.rounds) < 1:
        parser.error("--count, --batches and --rounds must be at least 1")
    return Options(
        count=args.count,
        batches=args.batches,
        rounds=min(args.rounds, args.count, args.batches),
        warmup_singles=10 if args.quick else min(100, max(10, args.count // 20)),
        warmup_batches=1 if args.quick else max(1, args.batches // 10),
        synchronous=args.synchronous,
        postgres=args.postgres or None,
        directory=args.directory,
        as_json=args.as_json,
    )


# -- workload ----------------------------------------------------------------------------------


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
EVENT_TYPE = MessageAppended.__struct_config__.tag
SCHEMA_VERSION = MessageAppended.schema_version


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


# -- runners -----------------------------------------------------------------------------------


def ledger_runner(store: EventStore, prefix: str, case: str, size: int) -> Runner:
    """``store.append`` of ``size`` events per call to ``<prefix><case>-NN``, rotating streams.

    The events are built before the clock starts: making them is the caller's work.
    """
    turn = itertools.count()
    numbers = itertools.count()

    def run(n: int) -> float:
        work = []
        for _ in range(n):
            session_id = f"{case}-{next(turn) % STREAMS:02d}"
            events = [make_message(next(numbers), session_id) for _ in range(size)]
            work.append((f"{prefix}{session_id}", events))
        start = time.perf_counter()
        for stream, batch in work:
            store.append(stream, batch)
        return time.perf_counter() - start

    return run


def core_singles(engine: sa.Engine, table: sa.Table) -> Runner:
    """One Core ``INSERT`` per ``engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite, as the store)."""
    insert = table.insert()
    writer_engine = engine.execution_options(**{WRITE: True})
    streams = StreamCursor("single")

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            stream, sequence = streams.take(1)
            row = {
                "stream": stream,
                "sequence": sequence,
                "type": EVENT_TYPE,
                "data": PAYLOAD,
                "event_id": uuid.uuid4(),
                "writer": WRITER,
                "recorded_at": dt.datetime.now(dt.UTC),
                "schema_version": SCHEMA_VERSION,
            }
            with writer_engine.begin() as conn:
                conn.execute(insert, row)
        return time.perf_counter() - start

    return run


def sqlite3_batches(conn: sqlite3.Connection, table: str) -> Runner:
    """``executemany`` of ``BATCH_SIZE`` rows between ``BEGIN IMMEDIATE`` and ``COMMIT``."""
    sql = insert_sql(table, "?")
    streams = StreamCursor("batch")

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            stream, first = streams.take(BATCH_SIZE)
            # Stored as SQLAlchemy stores them on SQLite: hex UUID, naive UTC timestamp text.
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
            rows = [
                (
                    stream,
                    first + i,
                    EVENT_TYPE,
                    PAYLOAD,
                    uuid.uuid4().hex,
                    WRITER,
                    now,
                    SCHEMA_VERSION,
                )
                for i in range(BATCH_SIZE)
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        return time.perf_counter() - start

    return run


def psycopg_batches(conn: psycopg.Connection[Any], table: str) -> Runner:
    """``executemany`` (pipelined by psycopg) of ``BATCH_SIZE`` rows in one transaction."""
    sql = insert_sql(table, "%s")
    streams = StreamCursor("batch")

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            stream, first = streams.take(BATCH_SIZE)
            now = dt.datetime.now(dt.UTC)
            rows = [
                (stream, first + i, EVENT_TYPE, PAYLOAD, uuid.uuid4(), WRITER, now, SCHEMA_VERSION)
                for i in range(BATCH_SIZE)
            ]
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(sql, rows)
        return time.perf_counter() - start

    return run


# -- measuring ---------------------------------------------------------------------------------


def split(total: int, rounds: int) -> list[int]:
    """``total`` operations in ``rounds`` near-equal shares."""
    return [total // rounds + (1 if i < total % rounds else 0) for i in range(rounds)]


def measure(label: str, runners: Sequence[Runner], ops: int, opts: Options) -> list[float]:
    """Seconds each runner took for ``ops`` operations, in rounds that rotate their order."""
    warmup = opts.warmup_singles if label.endswith(" single") else opts.warmup_batches
    log(f"{label}: warming up ({warmup} operations each)")
    for runner in runners:
        runner(warmup)
    totals = [0.0] * len(runners)
    for index, share in enumerate(split(ops, opts.rounds)):
        for offset in range(len(runners)):
            side = (index + offset) % len(runners)
            totals[side] += runners[side](share)
        shown = ", ".join(f"{t:.2f}s" for t in totals)
        log(f"{label}: round {index + 1}/{opts.rounds}, {share} operations each; so far {shown}")
    return totals


def count_rows(engine: sa.Engine, table: str, stream_prefix: str = "") -> int:
    """Rows of ``table`` (whose ``stream`` starts with ``stream_prefix``)."""
    sql = f"SELECT count(*) FROM {table} WHERE stream LIKE :prefix"
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), {"prefix": f"{stream_prefix}%"}).scalar_one())


def compare(
    backend: str,
    case: str,
    stores: dict[str, EventStore],
    baseline: tuple[str, Runner],
    opts: Options,
) -> list[Result]:
    """Every store variant and the ``baseline`` on ``case``, interleaved."""
    ops, size, target = (
        (opts.count, 1, SINGLE_TARGET)
        if case == "single"
        else (opts.batches, BATCH_SIZE, BATCH_TARGET)
    )
    ledgers = [
        ledger_runner(store, VARIANTS[variant][0], case, size) for variant, store in stores.items()
    ]
    *ledger_seconds, baseline_seconds = measure(
        f"{backend} {case}", [*ledgers, baseline[1]], ops, opts
    )
    return [
        Result(
            backend=backend,
            case=case,
            store=variant,
            baseline=baseline[0],
            events=ops * size,
            ledger_seconds=seconds,
            baseline_seconds=baseline_seconds,
            target=target if VARIANTS[variant][1] == () else None,
        )
        for variant, seconds in zip(stores, ledger_seconds, strict=True)
    ]


def run_cases(
    backend: str,
    stores: dict[str, EventStore],
    raw: sa.Engine,
    batch_baseline: tuple[str, Runner],
    opts: Options,
) -> list[Result]:
    """Both cases on one backend; checks that every side stored the same number of rows."""
    singles = ("Core one-row commits", core_singles(raw, raw_table(sa.MetaData(), RAW_SINGLE)))
    results = [
        *compare(backend, "single", stores, singles, opts),
        *compare(backend, "batch", stores, batch_baseline, opts),
    ]
    expected = count_rows(raw, RAW_SINGLE) + count_rows(raw, RAW_BATCH)
    for variant, store in stores.items():
        stored = count_rows(store.engine, "events", VARIANTS[variant][0])
        if stored != expected:
            raise RuntimeError(f"{backend} {variant}: {stored} events stored, baselines {expected}")
    return results


def open_stores(url: str, settings: Settings, stack: ExitStack) -> dict[str, EventStore]:
    """One store per variant on ``url``, closed by ``stack``."""
    stores: dict[str, EventStore] = {}
    for variant, (_, projections) in VARIANTS.items():
        store = EventStore.open(
            url, writer=WRITER, settings=settings, inline_projections=projections
        )
        stack.callback(store.close)
        stores[variant] = store
    return stores


def create_raw_tables(engine: sa.Engine) -> None:
    """The two baseline tables, shaped like ``events``."""
    metadata = sa.MetaData()
    for name in (RAW_SINGLE, RAW_BATCH):
        raw_table(metadata, name)
    metadata.create_all(engine)


# -- backends ----------------------------------------------------------------------------------


def sqlite_pragmas(conn: Any) -> dict[str, str]:
    """``journal_mode`` and ``synchronous`` as a DB-API connection sees them."""
    cursor = conn.cursor()
    journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
    cursor.close()
    return {"journal_mode": str(journal).upper(), "synchronous": SQLITE_SYNCHRONOUS[synchronous]}


def open_sqlite3(path: Path, settings: Settings) -> sqlite3.Connection:
    """A bare ``sqlite3`` connection with the ledger's PRAGMAs, transactions begun by us."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=settings.busy_timeout_ms / 1000)
    conn.execute(f"PRAGMA busy_timeout = {settings.busy_timeout_ms}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
    return conn


def run_sqlite(opts: Options, settings: Settings, report: Report) -> None:
    """SQLite: the ledger in one file, both baselines in another, same folder and PRAGMAs."""
    with (
        tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=opts.directory) as tmp,
        ExitStack() as stack,
    ):
        folder = Path(tmp)
        log(f"sqlite: files in {folder}")
        stores = open_stores(f"sqlite:///{folder / 'ledger.db'}", settings, stack)
        raw = create_engine(f"sqlite:///{folder / 'raw.db'}", settings)
        stack.callback(raw.dispose)
        create_raw_tables(raw)
        conn = open_sqlite3(folder / "raw.db", settings)
        stack.callback(conn.close)
        with stores["log"].engine.connect() as ledger_conn:
            seen = sqlite_pragmas(ledger_conn.connection.dbapi_connection)
        if seen != sqlite_pragmas(conn):
            raise RuntimeError(f"PRAGMAs differ: ledger {seen}, sqlite3 {sqlite_pragmas(conn)}")
        report.environment["sqlite"] = seen | {"sqlite_version": sqlite3.sqlite_version}
        log(f"sqlite: {report.environment['sqlite']}")
        batch = ("sqlite3 executemany", sqlite3_batches(conn, RAW_BATCH))
        report.results += run_cases("sqlite", stores, raw, batch, opts)


def postgres_settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The server settings that decide what a commit costs."""
    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "search_path")
    return {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]


def run_postgres(opts: Options, settings: Settings, report: Report) -> None:
    """PostgreSQL: the ledger's tables and both baseline tables in one fresh schema."""
    assert opts.postgres is not None
    with postgres_schema(opts.postgres) as url, ExitStack() as stack:
        raw = create_engine(url, settings)
        stack.callback(raw.dispose)
        migration.upgrade(raw)
        create_raw_tables(raw)
        stores = open_stores(url, settings, stack)
        libpq_url = sa.make_url(url).set(drivername="postgresql")
        conn = psycopg.connect(libpq_url.render_as_string(hide_password=False), autocommit=True)
        stack.callback(conn.close)
        report.environment["postgresql"] = postgres_settings(conn)
        log(f"postgresql: {report.environment['postgresql']}")
        batch = ("psycopg executemany", psycopg_batches(conn, RAW_BATCH))
        report.results += run_cases("postgresql", stores, raw, batch, opts)


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as a fixed-width table."""
    opts = report.options
    print(
        f"SQLite journal_mode=WAL synchronous={opts.synchronous}; "
        f"{opts.count} single appends, {opts.batches} x {BATCH_SIZE}-event appends, "
        f"{opts.rounds} interleaved rounds",
        file=out,
    )
    if "postgresql" in report.environment:
        pg = report.environment["postgresql"]
        print(
            f"PostgreSQL {pg['server_version']} fsync={pg['fsync']} "
            f"synchronous_commit={pg['synchronous_commit']}",
            file=out,
        )
    header = f"{'backend':<11}{'case':<7}{'store':<10}{'ledger ev/s':>12}  {'baseline':<21}"
    print(f"{header}{'baseline ev/s':>14}{'ratio':>7}  target", file=out)
    for r in report.results:
        if r.target is None:
            verdict = "(info)"
        else:
            verdict = f">= {r.target:.1f} " + ("ok" if r.ratio >= r.target else "BELOW")
        print(
            f"{r.backend:<11}{r.case:<7}{r.store:<10}{r.ledger_rate:>12,.0f}  {r.baseline:<21}"
            f"{r.baseline_rate:>14,.0f}{r.ratio:>7.2f}  {verdict}",
            file=out,
        )


def as_json(report: Report) -> str:
    """Every figure of the run as one JSON object."""
    return json.dumps(
        {
            "options": asdict(report.options) | {"postgres": shown_url(report.options.postgres)},
            "batch_size": BATCH_SIZE,
            "streams": STREAMS,
            "variants": {
                name: "bare log" if p == () else "installed inline projections"
                for name, (_, p) in VARIANTS.items()
            },
            "payload_bytes": len(PAYLOAD),
            "environment": report.environment,
            "results": [r.as_dict() for r in report.results],
        },
        indent=2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    settings = Settings.from_env({"LEDGER_SQLITE_SYNCHRONOUS": opts.synchronous})
    report = Report(opts)
    run_sqlite(opts, settings, report)
    if opts.postgres:
        run_postgres(opts, settings, report)
    else:
        log("postgresql: skipped (give --postgres URL or set LEDGER_TEST_POSTGRES_URL)")
    print_table(report, sys.stderr if opts.as_json else sys.stdout)
    if opts.as_json:
        print(as_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
