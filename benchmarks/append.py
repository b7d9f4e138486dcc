"""Append throughput of ``EventStore`` against the physical limit of the same durable write.

Two cases, on SQLite and (with ``--postgres``) on PostgreSQL, in one run:

``single``
    One ``MessageAppended`` per :meth:`EventStore.append`, rotating over 10 streams (one per
    chat session), as a gateway records each message the moment it arrives. Baseline: raw
    SQLAlchemy Core, one ``INSERT`` of one row per ``with engine.begin()``, on an engine made by
    :func:`ledger.store.database.create_engine`, so the same PRAGMAs (SQLite) or server settings
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

The ledger runs twice on the same database: as ``EventStore.open`` gives it by default, with
the installed inline projections (``sessions``, ``keys``) updating the session views in the same
transaction (the path users run, as ``Ledger.append_message`` does; its streams are named
``session-*`` so those views do their work), and as a bare log (``inline_projections=()``, the
row-for-row comparison the targets are about). The report lists the views-on figures first:
they say what a user's append gets, against the same baseline; they carry no target. The
log-only figures follow, with the targets.

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
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

import sqlalchemy as sa
from _harness.databases import raw_table, scratch_folder
from _harness.machine import sqlite_environment, sqlite_pragmas
from _harness.output import (
    RunOptions,
    add_run_arguments,
    add_synchronous_argument,
    log,
    options_document,
    postgres_line,
    run_options,
    run_script,
    verdict,
)
from _harness.postgres import migrated_schema, postgres_settings, psycopg_connect
from _harness.timing import Runner, TargetComparison, measure_rounds
from _workloads.append import (
    BATCH_SIZE,
    PAYLOAD,
    STREAMS,
    VARIANTS,
    WRITER,
    core_singles,
    ledger_runner,
    open_sqlite3,
    open_stores,
    ordered,
    psycopg_batches,
    sqlite3_batches,
)

from ledger import EventStore
from ledger.config import Settings
from ledger.store.database import create_engine

SINGLE_TARGET = 0.8
BATCH_TARGET = 0.5
RAW_SINGLE = "raw_single"
RAW_BATCH = "raw_batch"


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options(RunOptions):
    """What to run, from the command line."""

    count: int
    batches: int
    rounds: int
    warmup_singles: int
    warmup_batches: int
    synchronous: str


@dataclass(frozen=True, slots=True)
class Result(TargetComparison):
    """One ledger-versus-baseline comparison."""

    backend: str
    case: str
    store: str
    baseline: str
    events: int
    ledger_seconds: float
    baseline_seconds: float
    target: float | None


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
    add_synchronous_argument(parser, "the baselines")
    add_run_arguments(parser, files="files", postgres=True)
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
        **run_options(args),
    )


# -- measuring ---------------------------------------------------------------------------------


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
    ops, size, target, warmup = (
        (opts.count, 1, SINGLE_TARGET, opts.warmup_singles)
        if case == "single"
        else (opts.batches, BATCH_SIZE, BATCH_TARGET, opts.warmup_batches)
    )
    ledgers = [
        ledger_runner(store, VARIANTS[variant][0], case, size) for variant, store in stores.items()
    ]
    runners = [*ledgers, baseline[1]]
    timings = measure_rounds(f"{backend} {case}", runners, ops, opts.rounds, warmup)
    *ledger_seconds, baseline_seconds = (seconds for seconds, _ in timings)
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


def raw_engine(url: str, settings: Settings, stack: ExitStack) -> sa.Engine:
    """An engine for the baselines, disposed by ``stack``, with both baseline tables made."""
    engine = create_engine(url, settings)
    stack.callback(engine.dispose)
    metadata = sa.MetaData()
    for name in (RAW_SINGLE, RAW_BATCH):
        raw_table(metadata, name)
    metadata.create_all(engine)
    return engine


# -- backends ----------------------------------------------------------------------------------


def run_sqlite(settings: Settings, report: Report) -> None:
    """SQLite: the ledger in one file, both baselines in another, same folder and PRAGMAs."""
    opts = report.options
    with scratch_folder(opts.directory) as folder, ExitStack() as stack:
        log(f"sqlite: files in {folder}")
        ledger_url = f"sqlite:///{folder / 'ledger.db'}"
        stores = open_stores(dict.fromkeys(VARIANTS, ledger_url), WRITER, settings, stack)
        raw = raw_engine(f"sqlite:///{folder / 'raw.db'}", settings, stack)
        conn = open_sqlite3(folder / "raw.db", settings)
        stack.callback(conn.close)
        with stores["log"].engine.connect() as ledger_conn:
            seen = sqlite_pragmas(ledger_conn.connection.dbapi_connection)
        if seen != sqlite_pragmas(conn):
            raise RuntimeError(f"PRAGMAs differ: ledger {seen}, sqlite3 {sqlite_pragmas(conn)}")
        report.environment["sqlite"] = sqlite_environment(seen)
        log(f"sqlite: {report.environment['sqlite']}")
        batch = ("sqlite3 executemany", sqlite3_batches(conn, RAW_BATCH))
        report.results += run_cases("sqlite", stores, raw, batch, opts)


def run_postgres(url: str, settings: Settings, report: Report) -> None:
    """PostgreSQL: the ledger's tables and both baseline tables in one fresh schema."""
    with migrated_schema(url, settings) as schema_url, ExitStack() as stack:
        raw = raw_engine(schema_url, settings, stack)
        stores = open_stores(dict.fromkeys(VARIANTS, schema_url), WRITER, settings, stack)
        conn = psycopg_connect(schema_url)
        stack.callback(conn.close)
        report.environment["postgresql"] = postgres_settings(conn, "search_path")
        log(f"postgresql: {report.environment['postgresql']}")
        batch = ("psycopg executemany", psycopg_batches(conn, RAW_BATCH))
        report.results += run_cases("postgresql", stores, raw, batch, report.options)


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
        print(postgres_line(report.environment["postgresql"]), file=out)
    header = f"{'backend':<11}{'case':<7}{'store':<10}{'ledger ev/s':>12}  {'baseline':<21}"
    print(f"{header}{'baseline ev/s':>14}{'ratio':>7}  target", file=out)
    for r in ordered(report.results):
        goal = verdict(r.target, r.meets_target, ">= {:.1f}")
        print(
            f"{r.backend:<11}{r.case:<7}{r.store:<10}{r.ledger_rate:>12,.0f}  {r.baseline:<21}"
            f"{r.baseline_rate:>14,.0f}{r.ratio:>7.2f}  {goal}",
            file=out,
        )


def document(report: Report) -> dict[str, Any]:
    """The JSON document: options, the workload, the database settings, every result."""
    return {
        "options": options_document(report.options),
        "batch_size": BATCH_SIZE,
        "streams": STREAMS,
        "variants": {
            name: "bare log" if p == () else "installed inline projections"
            for name, (_, p) in VARIANTS.items()
        },
        "payload_bytes": len(PAYLOAD),
        "environment": report.environment,
        "results": [r.as_dict() for r in ordered(report.results)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_script(opts, Report(opts), (run_sqlite, run_postgres), (print_table, document))


if __name__ == "__main__":
    sys.exit(main())
