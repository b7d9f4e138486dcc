"""The online rebuild of the ``sessions`` views while a gateway keeps appending messages.

A bare log of ``--events`` events (1,000,000 by default; chat sessions with Zipf-worded text,
the log ``views.py`` measures, ``--sessions`` of them) is built first by a child process, on a
temporary SQLite file (``--dir`` picks its parent) or, with ``--url``, in a throwaway
PostgreSQL schema dropped at the end (never an existing ledger). Its views are then filled
by a first rebuild (unmeasured), so the measured one replaces full views, as an operator's
rebuild does, and retires the old ones afterwards.

Then a WRITER process opens its own session and calls ``Ledger.append_message`` steadily (one
call every ``--interval-ms``, 5 ms by default, as a busy gateway would), timing each call,
while this process runs ``projections.rebuild.rebuild(store, SessionsProjection())`` over the
whole log. Reported:

``stall``
    The longest ``append_message`` call that overlapped the rebuild (target < 100 ms), and the
    p50/p99 of those calls, next to the writer's p50/p99 before the rebuild began.
``rebuild``
    Events folded per second, against a RAW SCAN of ``events`` in the same run: every row read
    with a plain driver cursor (``sqlite3``; on PostgreSQL a ``psycopg`` server-side cursor),
    once before and once after the rebuild (the mean of both). Target: ratio >= 0.25.
``floor``
    The physical limit of a rebuild in the same run: the raw scan plus writing the rebuilt
    views' rows with nothing but the driver (``sqlite3`` executemany, ``psycopg`` COPY) into
    empty copies of their tables, in log order, 2,000 rows a transaction, after the writer has
    stopped. No rebuild of these views can beat it; the rebuild is reported as a share of it.
``lost``
    The writer's successful appends against the messages its session's transcript and log
    hold afterwards: they must be equal.

The load average and the machine's busy share (``/proc/stat``) during the rebuild are printed
with the figures; over 70% busy before the run started means other work shared the cores.

    .venv/bin/python benchmarks/rebuild_online.py                    # SQLite, 1,000,000 events
    .venv/bin/python benchmarks/rebuild_online.py --events 200000 --url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/rebuild_online.py --events 50000 --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from _harness.build import in_child
from _harness.databases import scratch_folder
from _harness.machine import cpu_jiffies, run_environment
from _harness.output import log, shown_url
from _harness.timing import counter, percentile
from _workloads.views import build_log

from ledger import EventStore, Ledger
from ledger.config import Settings
from projections.rebuild import rebuild
from projections.sessions import SessionsProjection

STALL_TARGET_MS = 100.0
RATIO_TARGET = 0.25
WRITER_SESSION = "writer_session"
#: Seconds the writer runs before the rebuild starts (its undisturbed latencies).
WARM_UP_S = 2.0


@dataclass(frozen=True, slots=True)
class Options:
    """What to run, from the command line."""

    events: int
    sessions: int
    url: str | None
    interval_ms: float
    directory: str | None
    as_json: bool


@dataclass(slots=True)
class Report:
    """Every figure of one run."""

    backend: str
    events: int
    environment: dict[str, Any] = field(default_factory=dict)
    build: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    scan: dict[str, Any] = field(default_factory=dict)
    floor: dict[str, Any] = field(default_factory=dict)
    rebuild: dict[str, Any] = field(default_factory=dict)
    appends: dict[str, Any] = field(default_factory=dict)


# -- the writer process ------------------------------------------------------------------------


def writer(url: str, interval_s: float, ready: Any, stop: Any, results: Any) -> None:
    """Append to one session until ``stop``: (start, seconds) of each call, and failures."""
    calls: list[tuple[float, float]] = []
    failures: list[str] = []
    with Ledger.open(url, writer="benchmark:writer", settings=Settings.from_env({})) as ledger:
        ledger.open_session("bench:writer", session_id=WRITER_SESSION)
        for _ in range(10):  # the connection and its cached statements are warm
            ledger.append_message(WRITER_SESSION, "user", "warm-up")
        ready.set()
        n = 0
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            try:
                ledger.append_message(WRITER_SESSION, "user", f"message {n}")
            except Exception as exc:  # counted, reported: a lost append
                failures.append(repr(exc))
            else:
                calls.append((started, time.monotonic() - started))
            n += 1
            next_at += interval_s
            time.sleep(max(0.0, next_at - time.monotonic()))
    results.put({"calls": calls, "failures": failures, "warm_up": 10})


# -- the scans ---------------------------------------------------------------------------------


def sqlite_scan(path: str) -> Callable[[], tuple[int, float]]:
    """Every column of every event with a plain ``sqlite3`` cursor, in position order."""

    def run() -> tuple[int, float]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            started = time.perf_counter()
            count = sum(1 for _ in conn.execute("SELECT * FROM events ORDER BY position"))
            return count, time.perf_counter() - started
        finally:
            conn.close()

    return run


def postgres_scan(url: str) -> Callable[[], tuple[int, float]]:
    """Every column of every event through a ``psycopg`` server-side cursor, in position order."""
    from _harness.postgres import psycopg_connect

    def run() -> tuple[int, float]:
        with psycopg_connect(url) as conn, conn.transaction():
            cursor = conn.cursor(name="raw_scan")
            cursor.itersize = 5000
            started = time.perf_counter()
            cursor.execute("SELECT * FROM events ORDER BY position")
            count = sum(1 for _ in cursor)
            return count, time.perf_counter() - started

    return run


# -- the floor: writing the views' rows with nothing but the driver -----------------------------

#: The view tables a rebuild of ``sessions`` writes, and the rows per transaction of the floor.
VIEW_TABLES = ("transcript_messages", "session_heads")
FLOOR_CHUNK = 2000


def sqlite_floor(path: str) -> float:
    """Seconds to insert the rebuilt views' rows, in log order, into empty copies of their
    tables (same keys and indexes) with ``sqlite3``'s executemany, 2,000 rows a transaction
    committed with ``synchronous = NORMAL`` as the rebuild's batches are."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        took = 0.0
        for table in VIEW_TABLES:
            ddl = [
                sql.replace(f'"{table}"', f'"floor_{table}"').replace(
                    f"TABLE {table}", f"TABLE floor_{table}"
                )
                for (sql,) in conn.execute(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
                    "ORDER BY type DESC",
                    (table,),
                )
            ]
            ddl = [re_index_names(sql, table) for sql in ddl]
            for sql in ddl:
                conn.execute(sql)
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY position").fetchall()
            marks = ", ".join("?" for _ in rows[0]) if rows else ""
            insert = f"INSERT INTO floor_{table} VALUES ({marks})"
            started = time.perf_counter()
            for at in range(0, len(rows), FLOOR_CHUNK):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(insert, rows[at : at + FLOOR_CHUNK])
                conn.execute("COMMIT")
            took += time.perf_counter() - started
            conn.execute(f"DROP TABLE floor_{table}")
        return took
    finally:
        conn.close()


def re_index_names(sql: str, table: str) -> str:
    """``CREATE INDEX ix_...`` of ``table`` renamed for its floor copy."""
    if sql.startswith("CREATE INDEX") or sql.startswith("CREATE UNIQUE INDEX"):
        return sql.replace('INDEX "', 'INDEX "floor_', 1).replace("INDEX ix_", "INDEX floor_ix_")
    return sql


def postgres_floor(url: str) -> float:
    """Seconds to ``COPY`` the rebuilt views' rows, in log order, into empty copies of their
    tables (``LIKE ... INCLUDING ALL``) through ``psycopg``, 2,000 rows a transaction with
    ``synchronous_commit = off`` as the rebuild's batches are."""
    from _harness.postgres import psycopg_connect

    took = 0.0
    with psycopg_connect(url) as conn:
        for table in VIEW_TABLES:
            conn.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY position").fetchall()
            started = time.perf_counter()
            for at in range(0, len(rows), FLOOR_CHUNK):
                with conn.transaction():
                    conn.execute("SET LOCAL synchronous_commit = off")
                    with conn.cursor().copy(f"COPY floor_{table} FROM STDIN") as copy:
                        for row in rows[at : at + FLOOR_CHUNK]:
                            copy.write_row(row)
            took += time.perf_counter() - started
            conn.execute(f"DROP TABLE floor_{table}")
    return took


# -- the run -----------------------------------------------------------------------------------


@contextmanager
def database(
    opts: Options,
) -> Iterator[tuple[str, Callable[[], tuple[int, float]], Callable[[], float]]]:
    """A fresh migrated database, its raw scan and its raw write of the views' rows: a
    temporary file or a throwaway schema."""
    if opts.url is None:
        with scratch_folder(opts.directory) as folder:
            path = folder / "ledger.db"
            log(f"sqlite: file {path}")
            yield f"sqlite:///{path}", sqlite_scan(str(path)), lambda: sqlite_floor(str(path))
        return
    from _harness.postgres import migrated_schema

    with migrated_schema(opts.url, Settings.from_env({})) as url:
        yield url, postgres_scan(url), lambda: postgres_floor(url)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The machine's busy share of CPU time between two :func:`cpu_jiffies` readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(busy / total, 3) if total else None


def measure(opts: Options, report: Report) -> None:
    """Build, scan, rebuild under a writer, scan again; fill ``report``."""
    with database(opts) as (url, scan, floor):
        report.build = in_child(build_log, url, opts.sessions, opts.events)
        # The operator's case: views that are there already (the swap retires them, in chunks).
        with EventStore.open(url, writer="benchmark:fill", settings=Settings.from_env({})) as s:
            started = time.monotonic()
            rebuild(s, SessionsProjection(), counter("views", opts.events, "events folded"))
            report.build["views_filled_s"] = round(time.monotonic() - started, 1)
        idle_from = cpu_jiffies()
        time.sleep(1.0)
        report.machine["busy_before"] = busy_share(idle_from, cpu_jiffies())
        report.machine["load_before"] = [round(v, 2) for v in os.getloadavg()]
        scans = [scan()]
        log(f"scan: {scans[0][0]:,} rows in {scans[0][1]:.2f}s")
        context = multiprocessing.get_context("spawn")
        ready, stop, results = context.Event(), context.Event(), context.Queue()
        child = context.Process(
            target=writer, args=(url, opts.interval_ms / 1000, ready, stop, results)
        )
        child.start()
        if not ready.wait(120):
            raise SystemExit("the writer did not start")
        time.sleep(WARM_UP_S)
        with EventStore.open(
            url, writer="benchmark:rebuild", settings=Settings.from_env({})
        ) as store:
            progress = counter("rebuild", opts.events, "events folded")
            jiffies = cpu_jiffies()
            began = time.monotonic()
            folded = rebuild(store, SessionsProjection(), progress)
            ended = time.monotonic()
            report.machine["busy_during"] = busy_share(jiffies, cpu_jiffies())
            report.machine["load_after"] = [round(v, 2) for v in os.getloadavg()]
            time.sleep(1.0)  # appends after the rebuild, too
            stop.set()
            written = results.get(timeout=120)
            child.join(60)
            with Ledger.open(url, settings=Settings.from_env({})) as ledger:
                in_views = len(ledger.transcript(WRITER_SESSION))
                in_log = sum(1 for _ in ledger.read_stream(f"session-{WRITER_SESSION}")) - 1
        scans.append(scan())
        log(f"scan: {scans[1][0]:,} rows in {scans[1][1]:.2f}s")
        written_s = floor()
        log(f"floor: the views' rows written raw in {written_s:.2f}s")
    seconds = ended - began
    scan_rate = statistics.mean(count / took for count, took in scans)
    report.scan = {"rows": scans[0][0], "events_per_s": round(scan_rate)}
    floor_rate = scans[0][0] / (scans[0][0] / scan_rate + written_s)
    report.floor = {
        "write_seconds": round(written_s, 2),
        "events_per_s": round(floor_rate),
        "ratio_to_scan": round(floor_rate / scan_rate, 3),
    }
    report.rebuild = {
        "events": folded,
        "seconds": round(seconds, 2),
        "events_per_s": round(folded / seconds),
        "ratio": round(folded / seconds / scan_rate, 3),
        "ratio_target": RATIO_TARGET,
        "ratio_to_floor": round(folded / seconds / floor_rate, 3),
    }
    calls: list[tuple[float, float]] = written["calls"]
    during = [took * 1000 for at, took in calls if at + took >= began and at <= ended]
    before = [took * 1000 for at, took in calls if at + took < began]
    worst = max(
        ((took, at) for at, took in calls if at + took >= began and at <= ended), default=None
    )
    succeeded = len(calls) + written["warm_up"]
    report.appends = {
        "during": len(during),
        "stall_max_ms": round(max(during), 1) if during else None,
        "stall_target_ms": STALL_TARGET_MS,
        "stall_at_s": None if worst is None else round(worst[1] - began, 2),
        "slowest": [
            (round(at - began, 2), round(took * 1000, 1))
            for took, at in sorted(
                ((took, at) for at, took in calls if at + took >= began and at <= ended),
                reverse=True,
            )[:8]
        ],
        "p50_ms": round(percentile(during, 0.5), 2) if during else None,
        "p99_ms": round(percentile(during, 0.99), 2) if during else None,
        "before_p50_ms": round(percentile(before, 0.5), 2) if before else None,
        "before_p99_ms": round(percentile(before, 0.99), 2) if before else None,
        "succeeded": succeeded,
        "failed": len(written["failures"]),
        "failures": written["failures"][:5],
        "in_transcript": in_views,
        "in_log": in_log,
        "lost": succeeded - min(in_views, in_log),
    }


def table(report: Report, out: TextIO) -> None:
    """The figures as a small table."""
    a, r, m = report.appends, report.rebuild, report.machine
    stall_ok = a["stall_max_ms"] is not None and a["stall_max_ms"] < STALL_TARGET_MS
    lines = [
        f"online rebuild of sessions, {report.backend}, {report.events:,} events "
        f"(revision {report.environment.get('revision')})",
        f"machine: load {m['load_before']} before, {m['load_after']} after; "
        f"busy {m['busy_before']:.0%} idle-before, {m['busy_during']:.0%} during"
        + (" (BUSY: other work shared the cores)" if (m["busy_before"] or 0) > 0.7 else ""),
        "",
        f"{'what':<34} {'figure':>14}   target",
        f"{'append stall (max) during rebuild':<34} {a['stall_max_ms']:>11} ms   "
        f"< {STALL_TARGET_MS:.0f} ms {'met' if stall_ok else 'MISSED'} "
        f"(at +{a['stall_at_s']} s of {r['seconds']} s)",
        f"{'append p50 / p99 during':<34} {a['p50_ms']:>5} / {a['p99_ms']:<5} ms",
        f"{'append p50 / p99 before':<34} {a['before_p50_ms']:>5} / {a['before_p99_ms']:<5} ms",
        f"{'rebuild':<34} {r['events_per_s']:>10,} ev/s   ({r['seconds']} s)",
        f"{'raw scan':<34} {report.scan['events_per_s']:>10,} ev/s",
        f"{'ratio':<34} {r['ratio']:>14}   >= {RATIO_TARGET} "
        f"{'met' if r['ratio'] >= RATIO_TARGET else 'MISSED'}",
        f"{'floor: raw scan + raw view writes':<34} {report.floor['events_per_s']:>10,} ev/s   "
        f"({report.floor['ratio_to_scan']} of the raw scan)",
        f"{'rebuild / floor':<34} {r['ratio_to_floor']:>14}",
        f"{'appends during / lost / failed':<34} {a['during']:>6} / {a['lost']} / {a['failed']}",
    ]
    print("\n".join(lines), file=out)


def parse(argv: list[str]) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="log size (1,000,000)")
    parser.add_argument("--sessions", type=int, default=None, help="sessions (events / 100)")
    parser.add_argument("--url", help="a PostgreSQL database for a throwaway schema")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="between appends (5)")
    parser.add_argument("--dir", help="parent of the temporary SQLite folder")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    if args.url is not None and not args.url.startswith(("postgresql", "postgres")):
        parser.error("--url must be a PostgreSQL URL (SQLite runs on a temporary file)")
    sessions = args.sessions or max(1, args.events // 100)
    if args.events < 2 * sessions:
        parser.error("--events must be at least twice --sessions")
    return Options(args.events, sessions, args.url, args.interval_ms, args.dir, args.json)


def main(argv: list[str]) -> int:
    """Run, print the table (and with ``--json`` the document)."""
    opts = parse(argv)
    report = Report(backend="PostgreSQL" if opts.url else "SQLite", events=opts.events)
    report.environment = run_environment() | {"url": shown_url(opts.url)}
    measure(opts, report)
    table(report, sys.stderr if opts.as_json else sys.stdout)
    if opts.as_json:
        print(json.dumps(asdict(report), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
