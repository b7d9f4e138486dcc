"""The gateway API under load: messages per second through ``Ledger`` and ``AsyncLedger``.

A chat gateway records every message the moment it arrives, one transaction per message, so
the rate that matters is durable single-message commits. Measured on SQLite (a file with the
default settings: WAL, ``synchronous=FULL``) and, with ``--postgres``, on PostgreSQL (a schema
made for the run, migrated with ``ledger.store.migration.upgrade``, dropped at the end):

``sync``
    :meth:`Ledger.append_message`, one message per call, rotating over 10 open sessions.
``async xN``
    :meth:`AsyncLedger.append_message` from N concurrent asyncio tasks (1, 8 and 32 by default),
    each task on its own session, over one ``AsyncLedger`` with its default worker pool (8
    threads: 32 tasks share 8 workers, as they would in a gateway).

Baseline, in the same run: raw SQLAlchemy Core, one ``INSERT`` of one event-shaped row per
``with engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite, as the ledger), from as many threads as
there are tasks, on an engine made by :func:`ledger.store.database.create_engine` (same PRAGMAs or
server settings) with a pool big enough for every thread. Why this is the physical limit: each
commit of a durable transaction costs at least one flush of the write-ahead log, and the
baseline does nothing else, so it is the best any storage layer could do with the same number of
concurrent committers. The ledger does more per message by design: it validates and encodes the
event, checks that the session is open and the message id new, takes the append lock, moves the
stream head, and updates the inline views (``session_heads``, ``transcript_messages``) in the
same transaction. The ratio is the share of the commit budget left to the gateway. There is no
target for these ratios; per-message latency (median, p99) is shown for the ledger side.

``AgentCache.check``
    The per-turn cache decision on a hit (the cached agent may be reused): one indexed read of
    the session head plus the in-memory decision. Median and p99 of ``--checks`` calls (5,000);
    baseline: the same ``SELECT sequence`` on the bare driver (``sqlite3``, ``psycopg``).
    Target on SQLite: median well under 1 ms.

Every contender runs interleaved with its baseline, in ``--rounds`` rounds (5) that rotate their
order, after a short warm-up, so drift in the disk or the server hits every side alike. The
table goes to stdout, progress to stderr; with ``--json`` the table goes to stderr too and
stdout holds one JSON object with every figure.

    .venv/bin/python benchmarks/gateway.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import sqlalchemy as sa
from _harness.databases import raw_table, scratch_folder
from _harness.machine import engine_pragmas, source_revision, sqlite_environment
from _harness.output import (
    add_run_arguments,
    emit,
    latency_table,
    log,
    on_backends,
    options_document,
    postgres_line,
    run_header,
)
from _harness.postgres import migrated_schema, postgres_settings, psycopg_connect
from _harness.timing import Comparison, Runner, Timing, latency_figures, measure_rounds, percentile
from _workloads.gateway import (
    MODEL,
    SYNC_SESSIONS,
    WRITER,
    async_runner,
    check_samples,
    core_runner,
    sync_runner,
    verify_counts,
)

from ledger import AsyncLedger, Ledger
from ledger.config import Settings
from ledger.store.database import create_engine

CONCURRENCY = (1, 8, 32)
CHECK_TARGET_US = 1000.0
RAW_TABLE = "raw_commits"
#: The bare-driver head read the cache-check baseline runs (``?`` becomes ``%s`` on psycopg).
HEAD_SQL = "SELECT sequence FROM session_heads WHERE session_id = ?"


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """What to run, from the command line."""

    count: int
    rounds: int
    warmup: int
    checks: int
    concurrency: tuple[int, ...]
    postgres: str | None
    directory: str | None
    as_json: bool


@dataclass(frozen=True, slots=True)
class Result(Comparison):
    """One ledger-versus-baseline comparison of message rates."""

    backend: str
    case: str
    baseline: str
    messages: int
    ledger_seconds: float
    baseline_seconds: float
    latencies_ms: list[float]

    @property
    def events(self) -> int:  # type: ignore[override]
        """The messages each side committed, one per transaction."""
        return self.messages

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        return (
            data
            | self.rates("ledger_messages_per_s", "baseline_commits_per_s")
            | {
                "latency_median_ms": round(statistics.median(self.latencies_ms), 3),
                "latency_p99_ms": round(percentile(self.latencies_ms, 0.99), 3),
            }
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """``AgentCache.check`` latency on a hit, against the bare-driver head read, in µs."""

    backend: str
    hits: int
    check_us: list[float]
    baseline_us: list[float]
    target_median_us: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "calls": len(self.check_us), "hits": self.hits} | (
            latency_figures(self.check_us, self.baseline_us, self.target_median_us)
        )


@dataclass(slots=True)
class Report:
    """Everything measured in one run, with the database settings it ran under."""

    options: Options
    environment: dict[str, dict[str, str]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Ledger / AsyncLedger message rates against raw Core commits."
    )
    parser.add_argument("--count", type=int, default=2000, help="messages per contender (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--checks", type=int, default=5000, help="AgentCache.check calls (5000)")
    parser.add_argument(
        "--concurrency",
        default=",".join(map(str, CONCURRENCY)),
        help="AsyncLedger task counts, comma-separated (1,8,32)",
    )
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    add_run_arguments(parser, files="files", postgres=True)
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.rounds, args.checks = 200, 2, 1000
    try:
        concurrency = tuple(sorted({int(part) for part in args.concurrency.split(",")}))
    except ValueError:
        parser.error("--concurrency takes integers, e.g. 1,8,32")
    if min(args.count, args.rounds, args.checks, *concurrency) < 1:
        parser.error("--count, --rounds, --checks and --concurrency must be at least 1")
    if args.count < args.rounds * max(concurrency):
        parser.error("--count must be at least --rounds x the largest --concurrency")
    return Options(
        count=args.count,
        rounds=args.rounds,
        warmup=10 if args.quick else min(100, max(10, args.count // 20)),
        checks=args.checks,
        concurrency=concurrency,
        postgres=args.postgres or None,
        directory=args.directory,
        as_json=args.as_json,
    )


# -- measuring ---------------------------------------------------------------------------------


def run_cases(
    backend: str,
    ledger: Ledger,
    raw: sa.Engine,
    head_read: Callable[[str], object],
    opts: Options,
    report: Report,
) -> None:
    """Every case on one backend, then the cache check; closes ``ledger`` at the end."""
    keys = [f"agent:main:bench:dm:{i}" for i in range(max(max(opts.concurrency), SYNC_SESSIONS))]
    sessions = [ledger.open_session(key, source="bench", model=MODEL) for key in keys]
    table = raw_table(sa.MetaData(), RAW_TABLE)
    table.create(raw)
    aledger = AsyncLedger(ledger)

    def measure(label: str, runners: Sequence[Runner]) -> list[Timing]:
        return measure_rounds(label, runners, opts.count, opts.rounds, opts.warmup, "messages")

    def add(case: str, tasks: int, seconds: float, base: float, latencies: list[float]) -> None:
        baseline = f"Core one-row commits x{tasks}"
        in_ms = [x * 1000.0 for x in latencies]
        report.results.append(Result(backend, case, baseline, opts.count, seconds, base, in_ms))

    try:
        cores = {c: core_runner(raw, table, c) for c in {1, *opts.concurrency}}
        runners: list[Runner] = [sync_runner(ledger, sessions), cores[1]]
        if 1 in opts.concurrency:
            runners.insert(1, async_runner(aledger, sessions, 1))
        found = measure(f"{backend} sync/async x1", runners)
        core_seconds = found[-1][0]
        cases = ["sync", *(["async x1"] if 1 in opts.concurrency else [])]
        for case, (seconds, latencies) in zip(cases, found, strict=False):
            add(case, 1, seconds, core_seconds, latencies)
        for tasks in opts.concurrency:
            if tasks == 1:
                continue
            pair = [async_runner(aledger, sessions, tasks), cores[tasks]]
            (seconds, latencies), (base, _) = measure(f"{backend} async x{tasks}", pair)
            add(f"async x{tasks}", tasks, seconds, base, latencies)
        sent = opts.warmup + opts.count  # by each contender, the warm-up included
        messages = sent * (1 + len(opts.concurrency))  # the sync case and each async one
        commits = sent * len({1, *opts.concurrency})  # one Core baseline per thread count
        verify_counts(backend, ledger, sessions, messages, raw, table, commits)
        measure_check(backend, ledger, sessions[0], head_read, opts, report)
    finally:
        asyncio.run(aledger.close())  # stops the workers and closes ``ledger``


def measure_check(
    backend: str,
    ledger: Ledger,
    session_id: str,
    head_read: Callable[[str], object],
    opts: Options,
    report: Report,
) -> None:
    """``AgentCache.check`` on a hit against the bare-driver head read, alternating order."""
    checks, baseline, hits = check_samples(ledger, session_id, head_read, opts.checks)
    if hits != opts.checks:
        raise RuntimeError(f"{backend}: {hits} of {opts.checks} checks were hits")
    target = CHECK_TARGET_US if backend == "sqlite" else None
    report.checks.append(CheckResult(backend, hits, checks, baseline, target))
    log(f"{backend} AgentCache.check: {opts.checks} hits measured")


# -- backends ----------------------------------------------------------------------------------


def run_sqlite(settings: Settings, report: Report) -> None:
    """SQLite: the ledger in one file, the baseline table in another, same folder and PRAGMAs."""
    opts = report.options
    with scratch_folder(opts.directory) as folder, ExitStack() as stack:
        log(f"sqlite: files in {folder}")
        url = f"sqlite:///{folder / 'ledger.db'}"
        ledger = Ledger.open(url, writer=WRITER, settings=settings)
        stack.callback(ledger.close)
        threads = max(opts.concurrency)
        raw = create_engine(
            f"sqlite:///{folder / 'raw.db'}", settings, pool_size=threads, max_overflow=0
        )
        stack.callback(raw.dispose)
        seen = engine_pragmas(ledger.store.engine)
        if engine_pragmas(raw) != seen:
            raise RuntimeError("the baseline engine runs with other PRAGMAs")
        report.environment["sqlite"] = sqlite_environment(seen)
        log(f"sqlite: {report.environment['sqlite']}")
        bare = sqlite3.connect(folder / "ledger.db", isolation_level=None)
        stack.callback(bare.close)
        head_read = lambda sid: bare.execute(HEAD_SQL, (sid,)).fetchone()  # noqa: E731
        run_cases("sqlite", ledger, raw, head_read, opts, report)


def run_postgres(url: str, settings: Settings, report: Report) -> None:
    """PostgreSQL: the ledger's tables and the baseline table in one fresh schema."""
    opts = report.options
    with migrated_schema(url, settings) as schema_url, ExitStack() as stack:
        ledger = Ledger.open(schema_url, writer=WRITER, settings=settings)
        stack.callback(ledger.close)
        threads = max(opts.concurrency)
        raw = create_engine(schema_url, settings, pool_size=threads, max_overflow=0)
        stack.callback(raw.dispose)
        bare = psycopg_connect(schema_url)
        stack.callback(bare.close)
        report.environment["postgresql"] = postgres_settings(bare, "commit_delay")
        log(f"postgresql: {report.environment['postgresql']}")
        sql = HEAD_SQL.replace("?", "%s")
        head_read = lambda sid: bare.execute(sql, (sid,), prepare=True).fetchone()  # noqa: E731
        run_cases("postgresql", ledger, raw, head_read, opts, report)


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as fixed-width tables."""
    opts = report.options
    print(
        f"{run_header(source_revision(), report.environment.get('sqlite', {}))}; "
        f"{opts.count} messages per contender, "
        f"{opts.rounds} interleaved rounds; AsyncLedger default pool (8 workers)",
        file=out,
    )
    if "postgresql" in report.environment:
        print(postgres_line(report.environment["postgresql"], "wal_sync_method"), file=out)
    print(
        f"{'backend':<11}{'case':<10}{'ledger msg/s':>13}{'p50 ms':>8}{'p99 ms':>8}  "
        f"{'baseline':<25}{'commits/s':>10}{'ratio':>7}",
        file=out,
    )
    for r in report.results:
        d = r.as_dict()
        print(
            f"{r.backend:<11}{r.case:<10}{r.ledger_rate:>13,.0f}{d['latency_median_ms']:>8.2f}"
            f"{d['latency_p99_ms']:>8.2f}  {r.baseline:<25}{r.baseline_rate:>10,.0f}"
            f"{r.ratio:>7.2f}",
            file=out,
        )
    print(file=out)
    heads = ("AgentCache.check hit", "bare-driver head read")
    checks = [(c.backend, "", c.as_dict()) for c in report.checks]
    latency_table(out, heads, checks, (11, 9, 22, 10, 9))


def document(report: Report) -> dict[str, Any]:
    """The JSON document: options, revision, database settings, rates and cache checks."""
    return {
        "options": options_document(report.options),
        "revision": source_revision(),
        "environment": report.environment,
        "results": [r.as_dict() for r in report.results],
        "agent_cache_check": [c.as_dict() for c in report.checks],
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    settings = Settings.from_env({})
    report = on_backends(opts.postgres, settings, Report(opts), run_sqlite, run_postgres)
    return emit(report, print_table, document, opts.as_json)


if __name__ == "__main__":
    sys.exit(main())
