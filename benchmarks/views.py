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
    :meth:`SessionViews.head` and :meth:`SessionViews.head_sequence` of ``--lookups`` random
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
import itertools
import json
import multiprocessing
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from common import log, peak_rss_mib, source_revision

from ledger import EventStore, MessageAppended, MessagesRetracted, SessionOpened, StreamAppend
from ledger.config import Settings
from ledger.events import Event
from ledger.views import SessionViews, fts5_query
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from projections.search import SearchProjection
from projections.sessions import SessionsProjection

WRITER = "benchmark:projections"
SEED = 20_240_601
#: Parts per build transaction and messages per part (one burst of turns on one session).
PARTS_PER_APPEND = 1000
RUN_LENGTH = 10
#: One message run in this many ends with an ``undo`` of its last message.
RETRACT_EVERY = 25
VOCABULARY = 5000
#: Distinct message texts (drawing words per message would dominate the build time).
SENTENCES = 20_000
REBUILD_TARGET = 0.25
LOOKUP_TARGET_US = 100.0
QUERY_KINDS = ("common", "mid", "rare", "two words")
SYLLABLES = (
    *("ba", "ko", "ri", "tu", "ne", "sa", "mo", "li", "da", "ve", "gu", "pi", "fe", "zo", "ha"),
    *("ju", "ma", "ro", "si", "ka", "te", "lu", "no", "wi", "ye", "bra", "cle", "dro", "fin"),
    *("gal", "hex", "jor", "kin", "lam", "mur", "nox", "pol", "quin", "rus", "sel", "tam"),
    *("urn", "vex", "wol", "zin"),
)
#: ``sqlite3`` statements the lookup baselines run (the views' queries, without SQLAlchemy).
RAW_HEAD = "SELECT * FROM session_heads WHERE session_id = ?"
RAW_SEQUENCE = "SELECT sequence FROM session_heads WHERE session_id = ?"
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
class Throughput:
    """A ledger-versus-baseline rate over the same events."""

    case: str
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


@dataclass(frozen=True, slots=True)
class Latency:
    """Per-call latencies of one operation and of its bare-driver baseline, in µs."""

    case: str
    baseline: str
    ledger_us: list[float]
    baseline_us: list[float]
    target_median_us: float | None

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values)

    @staticmethod
    def p99(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def as_dict(self) -> dict[str, Any]:
        median = self.median(self.ledger_us)
        return {
            "case": self.case,
            "baseline": self.baseline,
            "calls": len(self.ledger_us),
            "median_us": round(median, 1),
            "p99_us": round(self.p99(self.ledger_us), 1),
            "baseline_median_us": round(self.median(self.baseline_us), 1),
            "baseline_p99_us": round(self.p99(self.baseline_us), 1),
            "target_median_us": self.target_median_us,
            "meets_target": None
            if self.target_median_us is None
            else median < self.target_median_us,
        }


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
    parser.add_argument("--dir", dest="directory", help="parent folder of the SQLite file")
    parser.add_argument("--json", dest="as_json", action="store_true", help="JSON on stdout")
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


# -- workload ----------------------------------------------------------------------------------


def vocabulary(rng: random.Random) -> list[str]:
    """``VOCABULARY`` distinct pseudo-words, most frequent first."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_weights(n: int) -> list[float]:
    """Cumulative Zipf (s = 1) weights over ranks 1..n."""
    return list(itertools.accumulate(1 / rank for rank in range(1, n + 1)))


class Workload:
    """Deterministic message text and the build's event stream."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.rng = random.Random(SEED)
        self.words = vocabulary(self.rng)
        cumulative = zipf_weights(len(self.words))
        self.sentences = [
            " ".join(
                self.rng.choices(self.words, cum_weights=cumulative, k=self.rng.randint(8, 24))
            )
            for _ in range(SENTENCES)
        ]

    def sentence(self) -> str:
        """8 to 24 words drawn by Zipf frequency (~100 characters), from a pool made once."""
        return self.sentences[self.rng.randrange(SENTENCES)]

    def session_id(self, index: int) -> str:
        return f"bench_{index:06d}"

    def opened(self, index: int) -> SessionOpened:
        return SessionOpened(
            session_id=self.session_id(index),
            session_key=f"agent:main:telegram:dm:{index}",
            source="telegram",
            reason="new",
            model="claude",
        )

    def transactions(self) -> Iterator[list[StreamAppend]]:
        """Yield the build's transactions, lists of ``StreamAppend`` parts, ``events`` in all."""
        opts = self.opts
        for start in range(0, opts.sessions, PARTS_PER_APPEND):
            stop = min(opts.sessions, start + PARTS_PER_APPEND)
            yield [
                StreamAppend(
                    stream=f"session-{self.session_id(i)}",
                    events=[self.opened(i)],
                    expected_sequence=0,
                )
                for i in range(start, stop)
            ]
        remaining = opts.events - opts.sessions
        counters = [0] * opts.sessions
        while remaining > 0:
            parts: list[StreamAppend] = []
            chosen = self.rng.sample(range(opts.sessions), min(PARTS_PER_APPEND, opts.sessions))
            for index in chosen:
                if remaining <= 0:
                    break
                sid = self.session_id(index)
                size = min(RUN_LENGTH, remaining)
                events: list[Event] = []
                for k in range(size):
                    counters[index] += 1
                    events.append(
                        MessageAppended(
                            session_id=sid,
                            message_id=f"m{counters[index]:06d}",
                            role="user" if k % 2 == 0 else "assistant",
                            content=self.sentence(),
                            token_count=self.rng.randint(5, 400),
                        )
                    )
                if size == RUN_LENGTH and self.rng.randrange(RETRACT_EVERY) == 0:
                    events[-1] = MessagesRetracted(
                        session_id=sid, message_ids=[f"m{counters[index] - 1:06d}"], reason="undo"
                    )
                remaining -= len(events)
                parts.append(StreamAppend(stream=f"session-{sid}", events=events))
            yield parts

    def queries(self, count: int) -> list[tuple[str, str]]:
        """``count`` (kind, text) queries, cycling through ``QUERY_KINDS``."""
        rng = random.Random(SEED + 1)
        words = self.words
        found: list[tuple[str, str]] = []
        for kind in itertools.islice(itertools.cycle(QUERY_KINDS), count):
            if kind == "common":
                text = rng.choice(words[:10])
            elif kind == "mid":
                text = rng.choice(words[100:500])
            elif kind == "rare":
                text = rng.choice(words[2000:])
            else:
                text = f"{rng.choice(words[20:200])} {rng.choice(words[20:200])}"
            found.append((kind, text))
        return found


def build(url: str, opts: Options) -> dict[str, Any]:
    """Write the log (runs in a child process; returns counts and timing)."""
    workload = Workload(opts)
    written = retractions = transactions = 0
    started = time.perf_counter()
    next_report = 0
    with EventStore.open(url, writer=WRITER, inline_projections=()) as store:
        for parts in workload.transactions():
            store.append_streams(parts)
            transactions += 1
            for part in parts:
                written += len(part.events)
                retractions += sum(isinstance(e, MessagesRetracted) for e in part.events)
            if written >= next_report:
                log(f"build: {written:,}/{opts.events:,} events")
                next_report += max(opts.events // 10, 1)
    seconds = time.perf_counter() - started
    log(f"build: {written:,} events in {seconds:.1f}s ({written / seconds:,.0f} ev/s)")
    return {
        "events": written,
        "retractions": retractions,
        "transactions": transactions,
        "seconds": round(seconds, 2),
        "events_per_s": round(written / seconds, 1),
        "child_peak_rss_mib": round(peak_rss_mib(), 1),
    }


def build_in_child(url: str, opts: Options) -> dict[str, Any]:
    """Run :func:`build` in a spawned process, so its memory never counts as ours."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(build, (url, opts))
    return result


# -- measuring ---------------------------------------------------------------------------------


def raw_scan(path: Path) -> Callable[[], tuple[int, float]]:
    """The baseline: iterate every column of every event, in position order, with ``sqlite3``."""

    def run() -> tuple[int, float]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            start = time.perf_counter()
            count = 0
            for _row in conn.execute("SELECT * FROM events ORDER BY position"):
                count += 1
            return count, time.perf_counter() - start
        finally:
            conn.close()

    return run


def ledger_rebuild(store: EventStore) -> Callable[[], tuple[int, float]]:
    """``rebuild(store, SessionsProjection())``, with a progress line every ~10%."""
    total = store.last_position()
    step = max(total // 10, 1)

    def run() -> tuple[int, float]:
        done = 0
        next_report = step

        def progress(n: int) -> None:
            nonlocal done, next_report
            done += n
            if done >= next_report:
                log(f"  rebuild: {done:,} events folded")
                next_report += step

        start = time.perf_counter()
        count = rebuild(store, SessionsProjection(), progress)
        return count, time.perf_counter() - start

    return run


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
        log(
            f"rebuild: step {step}/{len(plan)} {name}: {count:,} events in {took:.2f}s "
            f"({count / took:,.0f} ev/s); peak RSS {peak_rss_mib():.1f} MiB"
        )
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


def timed(call: Callable[[], object]) -> float:
    """One call's wall time in µs."""
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000


def measure_lookups(store: EventStore, path: Path, opts: Options, report: Report) -> None:
    """``head`` / ``head_sequence`` against bare-driver primary-key selects, per session id."""
    views = SessionViews(store.engine)
    conn = sqlite3.connect(path, isolation_level=None)
    rng = random.Random(SEED + 2)
    workload = Workload(opts)
    ids = [workload.session_id(rng.randrange(opts.sessions)) for _ in range(opts.lookups)]
    missing = [sid for sid in ids[:100] if views.head(sid) is None]
    if missing:
        raise RuntimeError(f"no head for {missing[:3]}")
    samples: list[list[float]] = [[], [], [], []]
    try:
        for sid in ids[:200]:  # warm-up: pool, statement caches, page cache
            views.head(sid)
            views.head_sequence(sid)
            conn.execute(RAW_HEAD, (sid,)).fetchone()
            conn.execute(RAW_SEQUENCE, (sid,)).fetchone()
        calls: list[Callable[[str], object]] = [
            views.head,
            views.head_sequence,
            lambda sid: conn.execute(RAW_HEAD, (sid,)).fetchone(),
            lambda sid: conn.execute(RAW_SEQUENCE, (sid,)).fetchone(),
        ]
        for index, sid in enumerate(ids):
            for offset in range(len(calls)):
                side = (index + offset) % len(calls)
                samples[side].append(timed(lambda c=calls[side], s=sid: c(s)))  # type: ignore[misc]
    finally:
        conn.close()
    report.latency += [
        Latency("head()", "sqlite3 SELECT * by key", samples[0], samples[2], LOOKUP_TARGET_US),
        Latency(
            "head_sequence()",
            "sqlite3 SELECT sequence",
            samples[1],
            samples[3],
            LOOKUP_TARGET_US,
        ),
    ]
    log(f"lookups: {opts.lookups:,} of each done; peak RSS {peak_rss_mib():.1f} MiB")


def measure_search(store: EventStore, path: Path, opts: Options, report: Report) -> None:
    """Index every message, then time queries of each kind against the bare FTS5 query."""
    log("search: catching up the search projection")
    step = max(opts.events // 10, 1)
    done = 0
    next_report = step

    def progress(n: int) -> None:
        nonlocal done, next_report
        done += n
        if done >= next_report:
            log(f"  search: {done:,} events indexed")
            next_report += step

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
    queries = Workload(opts).queries(opts.queries)
    by_kind: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in QUERY_KINDS}
    try:
        for _, text in queries[: len(QUERY_KINDS)]:  # warm-up
            views.search(text)
            conn.execute(RAW_SEARCH, (fts5_query(text),)).fetchall()
        for index, (kind, text) in enumerate(queries):
            ledger_call = lambda t=text: views.search(t)  # noqa: E731
            raw_call = lambda t=text: conn.execute(RAW_SEARCH, (fts5_query(t),)).fetchall()  # noqa: E731
            ledger_side, raw_side = by_kind[kind]
            if index % 2 == 0:
                ledger_side.append(timed(ledger_call))
                raw_side.append(timed(raw_call))
            else:
                raw_side.append(timed(raw_call))
                ledger_side.append(timed(ledger_call))
    finally:
        conn.close()
    every = (
        [x for v in by_kind.values() for x in v[0]],
        [x for v in by_kind.values() for x in v[1]],
    )
    report.latency.append(Latency("search() all", "sqlite3 FTS5 query", *every, None))
    for kind, (ledger_side, raw_side) in by_kind.items():
        if ledger_side:
            report.latency.append(
                Latency(f"search() {kind}", "sqlite3 FTS5 query", ledger_side, raw_side, None)
            )
    log(f"search: {len(queries)} queries done; peak RSS {peak_rss_mib():.1f} MiB")


def run(opts: Options, report: Report) -> None:
    """Build the log, then rebuild, lookups and search on it."""
    settings = Settings.from_env({})
    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=opts.directory) as tmp:
        path = Path(tmp) / "ledger.db"
        url = f"sqlite:///{path}"
        log(f"sqlite: file {path}")
        report.build = build_in_child(url, opts)
        report.build["file_mib"] = round(path.stat().st_size / 2**20, 1)
        with EventStore.open(url, writer=WRITER, settings=settings, inline_projections=()) as store:
            with store.engine.connect() as conn:
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                cursor = dbapi.cursor()
                journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
                synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
                cursor.close()
            report.environment = {
                "revision": source_revision(),
                "sqlite_version": sqlite3.sqlite_version,
                "journal_mode": str(journal).upper(),
                "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[synchronous],
            }
            log(f"sqlite: {report.environment}")
            report.memory["peak_rss_before_mib"] = round(peak_rss_mib(), 1)
            measure_rebuild(store, path, opts, report)
            report.memory["peak_rss_after_rebuild_mib"] = round(peak_rss_mib(), 1)
            measure_lookups(store, path, opts, report)
            report.memory["peak_rss_after_lookups_mib"] = round(peak_rss_mib(), 1)
            measure_search(store, path, opts, report)
            report.memory["peak_rss_after_search_mib"] = round(peak_rss_mib(), 1)


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as fixed-width tables."""
    opts, env, b = report.options, report.environment, report.build
    print(
        f"ledger {env.get('revision')}; "
        f"SQLite {env.get('sqlite_version')} journal_mode={env.get('journal_mode')} "
        f"synchronous={env.get('synchronous')}; {b['events']:,} events over "
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
        verdict = "" if t.target is None else f">= {t.target:.2f} "
        verdict += "" if t.target is None else ("ok" if t.ratio >= t.target else "BELOW")
        print(
            f"{t.case:<18}{t.ledger_rate:>12,.0f}  {t.baseline:<23}{t.baseline_rate:>14,.0f}"
            f"{t.ratio:>7.2f}  {verdict}",
            file=out,
        )
    s = report.search_catch_up
    print(
        f"{'search catch_up':<18}{s['events_per_s']:>12,.0f}  (indexing {s['events']:,} events "
        f"in {s['seconds']:.1f}s; no baseline)",
        file=out,
    )
    print(file=out)
    print(
        f"{'lookup':<22}{'calls':>7}{'median µs':>12}{'p99 µs':>13}  {'baseline':<24}"
        f"{'median µs':>12}{'p99 µs':>13}  target",
        file=out,
    )
    for lat in report.latency:
        d = lat.as_dict()
        verdict = "(info)"
        if lat.target_median_us is not None:
            verdict = f"median < {lat.target_median_us:.0f} " + (
                "ok" if d["meets_target"] else "ABOVE"
            )
        print(
            f"{lat.case:<22}{d['calls']:>7,}{d['median_us']:>12,.1f}{d['p99_us']:>13,.1f}  "
            f"{lat.baseline:<24}{d['baseline_median_us']:>12,.1f}{d['baseline_p99_us']:>13,.1f}"
            f"  {verdict}",
            file=out,
        )
    m = report.memory
    print(file=out)
    print(
        f"peak RSS (MiB): before {m['peak_rss_before_mib']:.1f}, after rebuild "
        f"{m['peak_rss_after_rebuild_mib']:.1f}, after lookups "
        f"{m['peak_rss_after_lookups_mib']:.1f}, after search {m['peak_rss_after_search_mib']:.1f}"
        f"; build (child process) {b['events_per_s']:,.0f} ev/s, peak {b['child_peak_rss_mib']}",
        file=out,
    )


def as_json(report: Report) -> str:
    """Every figure of the run as one JSON object."""
    return json.dumps(
        {
            "options": asdict(report.options),
            "build": report.build,
            "environment": report.environment,
            "throughput": [t.as_dict() for t in report.throughput],
            "search_catch_up": report.search_catch_up,
            "latency": [lat.as_dict() for lat in report.latency],
            "memory": report.memory,
        },
        indent=2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    report = Report(opts)
    run(opts, report)
    print_table(report, sys.stderr if opts.as_json else sys.stdout)
    if opts.as_json:
        print(as_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
