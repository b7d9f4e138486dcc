"""The gateway API under load: messages per second through ``Ledger`` and ``AsyncLedger``.

A chat gateway records every message the moment it arrives, one transaction per message, so
the rate that matters is durable single-message commits. Measured on SQLite (a file with the
default settings: WAL, ``synchronous=FULL``) and, with ``--postgres``, on PostgreSQL (a schema
made for the run, migrated with ``ledger.migration.upgrade``, dropped at the end):

``sync``
    :meth:`Ledger.append_message`, one message per call, rotating over 10 open sessions.
``async xN``
    :meth:`AsyncLedger.append_message` from N concurrent asyncio tasks (1, 8 and 32 by default),
    each task on its own session, over one ``AsyncLedger`` with its default worker pool (8
    threads: 32 tasks share 8 workers, as they would in a gateway).

Baseline, in the same run: raw SQLAlchemy Core, one ``INSERT`` of one event-shaped row per
``with engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite, as the ledger), from as many threads as
there are tasks, on an engine made by :func:`ledger.database.create_engine` (same PRAGMAs or
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
import datetime as dt
import itertools
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec
import psycopg
import sqlalchemy as sa
from common import log, postgres_schema, raw_table, shown_url, source_revision

from ledger import AsyncLedger, Ledger, MessageAppended
from ledger.store import migration
from ledger.config import Settings
from ledger.store.database import WRITE, create_engine

CONCURRENCY = (1, 8, 32)
SYNC_SESSIONS = 10
WRITER = "benchmark:gateway"
MODEL = "claude"
CONTENT = "Sure - the deploy finished at 14:02 and every check passed."
ROLES = ("user", "assistant")
CHECK_TARGET_US = 1000.0
RAW_TABLE = "raw_commits"
SQLITE_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
#: The bare-driver head read the cache-check baseline runs (``?`` becomes ``%s`` on psycopg).
HEAD_SQL = "SELECT sequence FROM session_heads WHERE session_id = ?"

#: Performs ``n`` operations; returns the seconds they took and each one's latency in seconds.
Runner = Callable[[int], tuple[float, list[float]]]


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


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


@dataclass(frozen=True, slots=True)
class Result:
    """One ledger-versus-baseline comparison of message rates."""

    backend: str
    case: str
    baseline: str
    messages: int
    ledger_seconds: float
    baseline_seconds: float
    latencies_ms: list[float]

    @property
    def ledger_rate(self) -> float:
        return self.messages / self.ledger_seconds

    @property
    def baseline_rate(self) -> float:
        return self.messages / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.ledger_rate / self.baseline_rate

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        return data | {
            "ledger_messages_per_s": round(self.ledger_rate, 1),
            "baseline_commits_per_s": round(self.baseline_rate, 1),
            "ratio": round(self.ratio, 3),
            "latency_median_ms": round(statistics.median(self.latencies_ms), 3),
            "latency_p99_ms": round(percentile(self.latencies_ms, 0.99), 3),
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """``AgentCache.check`` latency on a hit, against the bare-driver head read, in µs."""

    backend: str
    hits: int
    check_us: list[float]
    baseline_us: list[float]
    target_median_us: float | None

    def as_dict(self) -> dict[str, Any]:
        median = statistics.median(self.check_us)
        return {
            "backend": self.backend,
            "calls": len(self.check_us),
            "hits": self.hits,
            "median_us": round(median, 1),
            "p99_us": round(percentile(self.check_us, 0.99), 1),
            "baseline_median_us": round(statistics.median(self.baseline_us), 1),
            "baseline_p99_us": round(percentile(self.baseline_us, 0.99), 1),
            "target_median_us": self.target_median_us,
            "meets_target": None
            if self.target_median_us is None
            else median < self.target_median_us,
        }


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


# -- workload ----------------------------------------------------------------------------------


#: What the baseline stores as ``data``: the encoding of a typical message, made once.
PAYLOAD = msgspec.json.encode(
    MessageAppended(session_id="s", message_id="m" * 32, role="assistant", content=CONTENT)
)
EVENT_TYPE = MessageAppended.__struct_config__.tag
SCHEMA_VERSION = MessageAppended.schema_version


def split(total: int, parts: int) -> list[int]:
    """``total`` operations in ``parts`` near-equal shares."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- runners -----------------------------------------------------------------------------------


def sync_runner(ledger: Ledger, sessions: Sequence[str]) -> Runner:
    """``Ledger.append_message``, one message per call, rotating over ``SYNC_SESSIONS``."""
    turn = itertools.count()

    def run(n: int) -> tuple[float, list[float]]:
        latencies: list[float] = []
        start = time.perf_counter()
        for _ in range(n):
            index = next(turn)
            began = time.perf_counter()
            ledger.append_message(sessions[index % SYNC_SESSIONS], ROLES[index % 2], CONTENT)
            latencies.append(time.perf_counter() - began)
        return time.perf_counter() - start, latencies

    return run


def async_runner(aledger: AsyncLedger, sessions: Sequence[str], tasks: int) -> Runner:
    """``tasks`` asyncio tasks, each appending its share to its own session."""

    def run(n: int) -> tuple[float, list[float]]:
        latencies: list[float] = []

        async def worker(session_id: str, share: int) -> None:
            for index in range(share):
                began = time.perf_counter()
                await aledger.append_message(session_id, ROLES[index % 2], CONTENT)
                latencies.append(time.perf_counter() - began)

        async def main() -> float:
            start = time.perf_counter()
            await asyncio.gather(
                *(worker(sessions[i], share) for i, share in enumerate(split(n, tasks)))
            )
            return time.perf_counter() - start

        return asyncio.run(main()), latencies

    return run


def core_runner(engine: sa.Engine, table: sa.Table, threads: int) -> Runner:
    """One Core ``INSERT`` per ``engine.begin()``, from ``threads`` threads at once."""
    insert = table.insert()
    writer_engine = engine.execution_options(**{WRITE: True})
    sequences = itertools.count(1)
    lock = threading.Lock()

    def commit_one() -> float:
        with lock:
            sequence = next(sequences)
        row = {
            "stream": f"core{threads}-{sequence % SYNC_SESSIONS}",
            "sequence": sequence,
            "type": EVENT_TYPE,
            "data": PAYLOAD,
            "event_id": uuid.uuid4(),
            "writer": WRITER,
            "recorded_at": dt.datetime.now(dt.UTC),
            "schema_version": SCHEMA_VERSION,
        }
        began = time.perf_counter()
        with writer_engine.begin() as conn:
            conn.execute(insert, row)
        return time.perf_counter() - began

    def loop(share: int, latencies: list[float]) -> None:
        for _ in range(share):
            latencies.append(commit_one())

    def run(n: int) -> tuple[float, list[float]]:
        latencies: list[float] = []
        if threads == 1:
            start = time.perf_counter()
            loop(n, latencies)
            return time.perf_counter() - start, latencies
        with ThreadPoolExecutor(max_workers=threads) as pool:
            start = time.perf_counter()
            futures = [pool.submit(loop, share, latencies) for share in split(n, threads)]
            for future in futures:
                future.result()
            return time.perf_counter() - start, latencies

    return run


# -- measuring ---------------------------------------------------------------------------------


def measure(
    label: str, runners: Sequence[Runner], opts: Options
) -> list[tuple[float, list[float]]]:
    """Seconds and latencies of each runner for ``--count`` operations, in rotating rounds."""
    log(f"{label}: warming up ({opts.warmup} operations each)")
    for runner in runners:
        runner(opts.warmup)
    totals: list[tuple[float, list[float]]] = [(0.0, []) for _ in runners]
    for index, share in enumerate(split(opts.count, opts.rounds)):
        for offset in range(len(runners)):
            side = (index + offset) % len(runners)
            seconds, latencies = runners[side](share)
            totals[side] = (totals[side][0] + seconds, totals[side][1] + latencies)
        shown = ", ".join(f"{t[0]:.2f}s" for t in totals)
        log(f"{label}: round {index + 1}/{opts.rounds}, {share} messages each; so far {shown}")
    return totals


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
    try:
        cores = {c: core_runner(raw, table, c) for c in {1, *opts.concurrency}}
        ms = 1000.0
        runners: list[Runner] = [sync_runner(ledger, sessions), cores[1]]
        if 1 in opts.concurrency:
            runners.insert(1, async_runner(aledger, sessions, 1))
        found = measure(f"{backend} sync/async x1", runners, opts)
        core_seconds = found[-1][0]
        cases = ["sync", *(["async x1"] if 1 in opts.concurrency else [])]
        for case, (seconds, latencies) in zip(cases, found, strict=False):
            report.results.append(
                Result(
                    backend,
                    case,
                    "Core one-row commits x1",
                    opts.count,
                    seconds,
                    core_seconds,
                    [x * ms for x in latencies],
                )
            )
        for tasks in opts.concurrency:
            if tasks == 1:
                continue
            (seconds, latencies), (base, _) = measure(
                f"{backend} async x{tasks}",
                [async_runner(aledger, sessions, tasks), cores[tasks]],
                opts,
            )
            report.results.append(
                Result(
                    backend,
                    f"async x{tasks}",
                    f"Core one-row commits x{tasks}",
                    opts.count,
                    seconds,
                    base,
                    [x * ms for x in latencies],
                )
            )
        verify_counts(backend, ledger, sessions, raw, table, opts)
        measure_check(backend, ledger, sessions[0], head_read, opts, report)
    finally:
        asyncio.run(aledger.close())  # stops the workers and closes ``ledger``


def verify_counts(
    backend: str,
    ledger: Ledger,
    sessions: Sequence[str],
    raw: sa.Engine,
    table: sa.Table,
    opts: Options,
) -> None:
    """Every message sent is in the views, every baseline commit in its table."""
    expected = opts.warmup + opts.count
    per_case = 1 + len(opts.concurrency)
    stored = sum(head.message_count for sid in sessions if (head := ledger.head(sid)))
    if stored != expected * per_case:
        raise RuntimeError(f"{backend}: {stored} messages stored, {expected * per_case} sent")
    with raw.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    baseline_rows = expected * len({1, *opts.concurrency})
    if rows != baseline_rows:
        raise RuntimeError(f"{backend}: {rows} baseline rows, {baseline_rows} expected")


def measure_check(
    backend: str,
    ledger: Ledger,
    session_id: str,
    head_read: Callable[[str], object],
    opts: Options,
    report: Report,
) -> None:
    """``AgentCache.check`` on a hit against the bare-driver head read, alternating order."""
    cache = ledger.cache()
    key = "agent:main:bench:check"
    first = cache.check(key, session_id, MODEL)
    if first.action != "miss":
        raise RuntimeError(f"first check: {first.action}, expected miss")
    cache.store(key, session_id, MODEL, object())
    for _ in range(100):
        cache.check(key, session_id, MODEL)
        head_read(session_id)
    checks: list[float] = []
    baseline: list[float] = []
    hits = 0
    for index in range(opts.checks):
        for side in (index % 2, 1 - index % 2):
            began = time.perf_counter_ns()
            if side == 0:
                decision = cache.check(key, session_id, MODEL)
                checks.append((time.perf_counter_ns() - began) / 1000)
                hits += decision.reason == "hit"
            else:
                head_read(session_id)
                baseline.append((time.perf_counter_ns() - began) / 1000)
    if hits != opts.checks:
        raise RuntimeError(f"{backend}: {hits} of {opts.checks} checks were hits")
    target = CHECK_TARGET_US if backend == "sqlite" else None
    report.checks.append(CheckResult(backend, hits, checks, baseline, target))
    log(f"{backend} AgentCache.check: {opts.checks} hits measured")


# -- backends ----------------------------------------------------------------------------------


def sqlite_pragmas(conn: Any) -> dict[str, str]:
    """``journal_mode`` and ``synchronous`` as a DB-API connection sees them."""
    cursor = conn.cursor()
    journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
    cursor.close()
    return {"journal_mode": str(journal).upper(), "synchronous": SQLITE_SYNCHRONOUS[synchronous]}


def run_sqlite(opts: Options, settings: Settings, report: Report) -> None:
    """SQLite: the ledger in one file, the baseline table in another, same folder and PRAGMAs."""
    with (
        tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=opts.directory) as tmp,
        ExitStack() as stack,
    ):
        folder = Path(tmp)
        log(f"sqlite: files in {folder}")
        url = f"sqlite:///{folder / 'ledger.db'}"
        ledger = Ledger.open(url, writer=WRITER, settings=settings)
        stack.callback(ledger.close)
        threads = max(opts.concurrency)
        raw = create_engine(
            f"sqlite:///{folder / 'raw.db'}", settings, pool_size=threads, max_overflow=0
        )
        stack.callback(raw.dispose)
        with ledger.store.engine.connect() as conn:
            seen = sqlite_pragmas(conn.connection.dbapi_connection)
        with raw.connect() as conn:
            if sqlite_pragmas(conn.connection.dbapi_connection) != seen:
                raise RuntimeError("the baseline engine runs with other PRAGMAs")
        report.environment["sqlite"] = seen | {"sqlite_version": sqlite3.sqlite_version}
        log(f"sqlite: {report.environment['sqlite']}")
        bare = sqlite3.connect(folder / "ledger.db", isolation_level=None)
        stack.callback(bare.close)
        head_read = lambda sid: bare.execute(HEAD_SQL, (sid,)).fetchone()  # noqa: E731
        run_cases("sqlite", ledger, raw, head_read, opts, report)


def postgres_settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The server settings that decide what a commit costs."""
    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "commit_delay")
    return {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]


def run_postgres(opts: Options, settings: Settings, report: Report) -> None:
    """PostgreSQL: the ledger's tables and the baseline table in one fresh schema."""
    assert opts.postgres is not None
    with postgres_schema(opts.postgres) as url, ExitStack() as stack:
        migrator = create_engine(url, settings)
        migration.upgrade(migrator)
        migrator.dispose()
        ledger = Ledger.open(url, writer=WRITER, settings=settings)
        stack.callback(ledger.close)
        threads = max(opts.concurrency)
        raw = create_engine(url, settings, pool_size=threads, max_overflow=0)
        stack.callback(raw.dispose)
        libpq_url = sa.make_url(url).set(drivername="postgresql")
        bare = psycopg.connect(libpq_url.render_as_string(hide_password=False), autocommit=True)
        stack.callback(bare.close)
        report.environment["postgresql"] = postgres_settings(bare)
        log(f"postgresql: {report.environment['postgresql']}")
        sql = HEAD_SQL.replace("?", "%s")
        head_read = lambda sid: bare.execute(sql, (sid,), prepare=True).fetchone()  # noqa: E731
        run_cases("postgresql", ledger, raw, head_read, opts, report)


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as fixed-width tables."""
    opts = report.options
    sqlite_env = report.environment.get("sqlite", {})
    print(
        f"ledger {source_revision()}; SQLite {sqlite_env.get('sqlite_version')} "
        f"journal_mode={sqlite_env.get('journal_mode')} "
        f"synchronous={sqlite_env.get('synchronous')}; {opts.count} messages per contender, "
        f"{opts.rounds} interleaved rounds; AsyncLedger default pool (8 workers)",
        file=out,
    )
    if "postgresql" in report.environment:
        pg = report.environment["postgresql"]
        print(
            f"PostgreSQL {pg['server_version']} fsync={pg['fsync']} "
            f"synchronous_commit={pg['synchronous_commit']} "
            f"wal_sync_method={pg['wal_sync_method']}",
            file=out,
        )
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
    print(
        f"{'AgentCache.check hit':<22}{'calls':>7}{'median µs':>11}{'p99 µs':>9}  "
        f"{'bare-driver head read':<22}{'median µs':>10}{'p99 µs':>9}  target",
        file=out,
    )
    for c in report.checks:
        d = c.as_dict()
        verdict = "(info)"
        if c.target_median_us is not None:
            verdict = f"median < {c.target_median_us:,.0f} " + (
                "ok" if d["meets_target"] else "ABOVE"
            )
        print(
            f"{c.backend:<22}{d['calls']:>7,}{d['median_us']:>11,.1f}{d['p99_us']:>9,.1f}  "
            f"{'':<22}{d['baseline_median_us']:>10,.1f}{d['baseline_p99_us']:>9,.1f}  {verdict}",
            file=out,
        )


def as_json(report: Report) -> str:
    """Every figure of the run as one JSON object."""
    return json.dumps(
        {
            "options": asdict(report.options) | {"postgres": shown_url(report.options.postgres)},
            "revision": source_revision(),
            "environment": report.environment,
            "results": [r.as_dict() for r in report.results],
            "agent_cache_check": [c.as_dict() for c in report.checks],
        },
        indent=2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    settings = Settings.from_env({})
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
