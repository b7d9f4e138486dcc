"""Projection rebuild throughput and view read latency on a large SQLite log.

A log of ``--events`` events (1,000,000 by default) over ``--sessions`` chat sessions (10,000) is
built first, by a child process, as a bare log (``EventStore.open(..., inline_projections=())``)
in big ``append_streams`` transactions: one ``SessionOpened`` per session, then transactions of
runs of ten ``MessageAppended`` (user and assistant turns, words drawn from a Zipf-distributed
vocabulary) on 1,000 random sessions each, one run in 25 ending with an ``undo`` retraction.
Then three things are measured in this process:

``rebuild``
    :func:`projections.rebuild.rebuild` of the ``sessions`` projection (``session_heads`` and
    ``transcript_messages``) from the whole log, in events per second. Baseline: the bare
    ``sqlite3`` driver iterating ``SELECT * FROM events ORDER BY position`` over the same table
    in the same run, fetching every column. That scan is the physical limit of any rebuild: a
    rebuild must read each row once, in log order, and a rebuild can do no less. The ratio is
    the share of the scan rate the rebuild keeps after decoding the events, folding them and
    writing the views. Target: ratio >= 0.25. Each of the ``--rounds`` rebuilds (1) runs
    between two scans, so both sides see the same disk and page cache. Peak RSS
    (``getrusage``) before and after shows that memory stays flat: the log is read in batches
    and a child process did the building, so this process's peak covers only what is measured
    here.
``lookups``
    :meth:`SessionViews.head` and :meth:`SessionViews.live_sequence` of ``--lookups`` random
    sessions (10,000), one call at a time, median and p99. Baseline: the same primary-key
    ``SELECT`` on a bare ``sqlite3`` connection, the cost of the index lookup alone. The four
    contenders take turns on every session id, in rotating order. Target: median < 100 µs.
``search``
    After ``ProjectionRunner(store, [SearchProjection()]).catch_up()`` has indexed every message
    (its rate is reported too), :meth:`SessionViews.search` of ``--queries`` queries (200): a
    common word, a mid-frequency word, a rare word, two mid-frequency words. Baseline: the same
    FTS5 SQL on a bare ``sqlite3`` connection, interleaved; no target.

The database lives in a fresh temporary folder (``--dir`` picks its parent) and is deleted at
the end. The table goes to stdout, progress to stderr; with ``--json`` the table goes to stderr
too and stdout holds one JSON object with every figure.

    .venv/bin/python benchmarks/views.py            # 1,000,000 events
    .venv/bin/python benchmarks/views.py --quick    # 50,000 events
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from _harness.build import built_log
from _harness.machine import engine_pragmas, note_rss, rss_note, run_environment
from _harness.output import (
    add_run_arguments,
    emit,
    latency_table,
    log,
    log_document,
    rss_line,
    run_header,
    verdict,
)
from _harness.timing import TargetComparison, counter, interleaved_calls, latency_figures, log_pass
from _workloads.views import (
    QUERY_KINDS,
    SEED,
    WRITER,
    Workload,
    build_log,
    ledger_rebuild,
    raw_scan,
    session_id,
)

from ledger import EventStore
from ledger.config import Settings
from ledger.views import SessionViews, fts5_query
from projections.runner import ProjectionRunner
from projections.search import SearchProjection

REBUILD_TARGET = 0.25
LOOKUP_TARGET_US = 100.0
#: ``sqlite3`` statements the lookup baselines run (the views' queries, without SQLAlchemy).
RAW_HEAD = "SELECT * FROM session_heads WHERE session_id = ?"
RAW_SEQUENCE = "SELECT sequence FROM session_heads WHERE session_id = ? AND state != 'purged'"
RAW_SEARCH = (
    "SELECT d.session_id, d.message_id, d.role, d.position, "
    "snippet(search_fts, 0, '[', ']', '…', 12) AS snippet, -bm25(search_fts) AS rank "
    "FROM search_fts JOIN search_documents d ON d.doc_id = search_fts.rowid "
    "WHERE search_fts MATCH ? ORDER BY bm25(search_fts), d.position LIMIT 20"
)


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """What to run, from the command line."""

    events: int
    sessions: int
    lookups: int
    queries: int
    rounds: int
    directory: str | None
    as_json: bool


@dataclass(frozen=True, slots=True)
class Throughput(TargetComparison):
    """A ledger-versus-baseline rate over the same events."""

    case: str
    baseline: str
    events: int
    ledger_seconds: float
    baseline_seconds: float
    target: float | None


@dataclass(frozen=True, slots=True)
class Latency:
    """Per-call latencies of one operation and of its bare-driver baseline, in µs."""

    case: str
    baseline: str
    ledger_us: list[float]
    baseline_us: list[float]
    target_median_us: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"case": self.case, "baseline": self.baseline, "calls": len(self.ledger_us)} | (
            latency_figures(self.ledger_us, self.baseline_us, self.target_median_us)
        )


@dataclass(slots=True)
class Report:
    """Everything measured in one run."""

    options: Options
    build: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    throughput: list[Throughput] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    search_catch_up: dict[str, float] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Projection rebuild throughput and view latency on a large SQLite log."
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="log size (1,000,000)")
    parser.add_argument("--sessions", type=int, default=10_000, help="chat sessions (10,000)")
    parser.add_argument("--lookups", type=int, default=10_000, help="head lookups (10,000)")
    parser.add_argument("--queries", type=int, default=200, help="search queries (200)")
    parser.add_argument("--rounds", type=int, default=1, help="rebuilds, each between scans (1)")
    parser.add_argument("--quick", action="store_true", help="50,000 events, a smoke run")
    add_run_arguments(parser, files="file", postgres=False)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.sessions = 50_000, min(args.sessions, 2_000)
        args.lookups, args.queries = min(args.lookups, 2_000), min(args.queries, 100)
    if min(args.sessions, args.lookups, args.queries, args.rounds) < 1:
        parser.error("--sessions, --lookups, --queries and --rounds must be at least 1")
    if args.events < 2 * args.sessions:
        parser.error("--events must be at least twice --sessions")
    return Options(
        events=args.events,
        sessions=args.sessions,
        lookups=args.lookups,
        queries=args.queries,
        rounds=args.rounds,
        directory=args.directory,
        as_json=args.as_json,
    )


# -- measuring ---------------------------------------------------------------------------------


def measure_rebuild(store: EventStore, path: Path, opts: Options, report: Report) -> None:
    """Scan, then ``--rounds`` times (rebuild, scan): every rebuild sits between two scans.

    A rebuild takes far longer than a scan, so bracketing each rebuild with scans (and
    averaging them) exposes both sides to the same state of the disk and page cache. Checks
    that every run saw every event.
    """
    rebuild_run, scan_run = ledger_rebuild(store), raw_scan(path)
    plan = [("sqlite3 scan", scan_run)]
    for _ in range(opts.rounds):
        plan += [("rebuild", rebuild_run), ("sqlite3 scan", scan_run)]
    seconds: dict[str, list[float]] = {"rebuild": [], "sqlite3 scan": []}
    for step, (name, runner) in enumerate(plan, start=1):
        count, took = runner()
        if count != opts.events:
            raise RuntimeError(f"{name} saw {count:,} events, expected {opts.events:,}")
        seconds[name].append(took)
        log_pass(f"rebuild: step {step}/{len(plan)} {name}", count, took)
    scans = seconds["sqlite3 scan"]
    report.throughput.append(
        Throughput(
            case="rebuild sessions",
            baseline="sqlite3 SELECT * scan",
            events=opts.events * opts.rounds,
            ledger_seconds=sum(seconds["rebuild"]),
            baseline_seconds=sum(scans) / len(scans) * opts.rounds,
            target=REBUILD_TARGET,
        )
    )


def measure_lookups(store: EventStore, path: Path, opts: Options, report: Report) -> None:
    """``head`` / ``live_sequence`` against bare-driver primary-key selects, per session id."""
    views = SessionViews(store.engine)
    conn = sqlite3.connect(path, isolation_level=None)
    rng = random.Random(SEED + 2)
    ids = [session_id(rng.randrange(opts.sessions)) for _ in range(opts.lookups)]
    missing = [sid for sid in ids[:100] if views.head(sid) is None]
    if missing:
        raise RuntimeError(f"no head for {missing[:3]}")
    try:
        for sid in ids[:200]:  # warm-up: pool, statement caches, page cache
            views.head(sid)
            views.live_sequence(sid)
            conn.execute(RAW_HEAD, (sid,)).fetchone()
            conn.execute(RAW_SEQUENCE, (sid,)).fetchone()
        calls: list[Callable[[str], object]] = [
            views.head,
            views.live_sequence,
            lambda sid: conn.execute(RAW_HEAD, (sid,)).fetchone(),
            lambda sid: conn.execute(RAW_SEQUENCE, (sid,)).fetchone(),
        ]
        samples = interleaved_calls(calls, ids)
    finally:
        conn.close()
    report.latency += [
        Latency("head()", "sqlite3 SELECT * by key", samples[0], samples[2], LOOKUP_TARGET_US),
        Latency(
            "live_sequence()",
            "sqlite3 SELECT sequence",
            samples[1],
            samples[3],
            LOOKUP_TARGET_US,
        ),
    ]
    log(f"lookups: {opts.lookups:,} of each done; {rss_note()}")


def measure_search(store: EventStore, path: Path, opts: Options, report: Report) -> None:
    """Index every message, then time queries of each kind against the bare FTS5 query."""
    log("search: catching up the search projection")
    progress = counter("search", opts.events, "events indexed")
    start = time.perf_counter()
    applied = ProjectionRunner(store, [SearchProjection()]).catch_up(progress)
    seconds = time.perf_counter() - start
    report.search_catch_up = {
        "events": applied,
        "seconds": round(seconds, 2),
        "events_per_s": round(applied / seconds, 1),
    }
    log(f"search: {applied:,} events in {seconds:.1f}s ({applied / seconds:,.0f} ev/s)")
    views = SessionViews(store.engine)
    conn = sqlite3.connect(path, isolation_level=None)
    queries = Workload(opts.sessions, opts.events).queries(opts.queries)
    try:
        for _, text in queries[: len(QUERY_KINDS)]:  # warm-up
            views.search(text)
            conn.execute(RAW_SEARCH, (fts5_query(text),)).fetchall()
        calls: list[Callable[[str], object]] = [
            views.search,
            lambda text: conn.execute(RAW_SEARCH, (fts5_query(text),)).fetchall(),
        ]
        ledger_us, raw_us = interleaved_calls(calls, [text for _, text in queries])
    finally:
        conn.close()
    report.latency.append(Latency("search() all", "sqlite3 FTS5 query", ledger_us, raw_us, None))
    for kind in QUERY_KINDS:
        picked = [i for i, (k, _) in enumerate(queries) if k == kind]
        if picked:
            ledger_side, raw_side = [ledger_us[i] for i in picked], [raw_us[i] for i in picked]
            report.latency.append(
                Latency(f"search() {kind}", "sqlite3 FTS5 query", ledger_side, raw_side, None)
            )
    log(f"search: {len(queries)} queries done; {rss_note()}")


def run(opts: Options) -> Report:
    """Build the log, then rebuild, lookups and search on it."""
    settings = Settings.from_env({})
    report = Report(opts)
    with built_log(opts.directory, build_log, opts.sessions, opts.events) as (path, build):
        report.build = build
        url = f"sqlite:///{path}"
        memory = report.memory
        with EventStore.open(url, writer=WRITER, settings=settings, inline_projections=()) as store:
            report.environment = run_environment() | engine_pragmas(store.engine)
            log(f"sqlite: {report.environment}")
            note_rss(memory, "before")
            measure_rebuild(store, path, opts, report)
            note_rss(memory, "after_rebuild")
            measure_lookups(store, path, opts, report)
            note_rss(memory, "after_lookups")
            measure_search(store, path, opts, report)
            note_rss(memory, "after_search")
    return report


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as fixed-width tables."""
    opts, env, b = report.options, report.environment, report.build
    print(
        f"{run_header(env.get('revision'), env)}; {b['events']:,} events over "
        f"{opts.sessions:,} sessions ({b['retractions']:,} retractions), "
        f"{b['file_mib']:,} MiB; {opts.rounds} rebuild(s) between scans",
        file=out,
    )
    print(
        f"{'case':<18}{'ledger ev/s':>12}  {'baseline':<23}{'baseline ev/s':>14}{'ratio':>7}"
        "  target",
        file=out,
    )
    for t in report.throughput:
        goal = verdict(t.target, t.meets_target, ">= {:.2f}")
        print(
            f"{t.case:<18}{t.ledger_rate:>12,.0f}  {t.baseline:<23}{t.baseline_rate:>14,.0f}"
            f"{t.ratio:>7.2f}  {goal}",
            file=out,
        )
    s = report.search_catch_up
    print(
        f"{'search catch_up':<18}{s['events_per_s']:>12,.0f}  (indexing {s['events']:,} events "
        f"in {s['seconds']:.1f}s; no baseline)",
        file=out,
    )
    print(file=out)
    rows = [(lat.case, lat.baseline, lat.as_dict()) for lat in report.latency]
    latency_table(out, ("lookup", "baseline"), rows, (12, 13, 24, 12, 13))
    print(file=out)
    stages = {f"after_{stage}": f"after {stage}" for stage in ("rebuild", "lookups", "search")}
    print(rss_line(report.memory, b, stages), file=out)


def document(report: Report) -> dict[str, Any]:
    """The JSON document: options, the built log, rates, catch-up, latencies, memory."""
    results = {
        "throughput": [t.as_dict() for t in report.throughput],
        "search_catch_up": report.search_catch_up,
        "latency": [lat.as_dict() for lat in report.latency],
    }
    return log_document(report, results)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return emit(run(opts), print_table, document, opts.as_json)


if __name__ == "__main__":
    sys.exit(main())
