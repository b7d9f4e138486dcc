"""Replay throughput: the three cache guards over a large log, against reading the log alone.

A log of ``--events`` events (1,000,000 by default) of gateway-like traffic is built first, by
a child process, as a bare log (``EventStore.open(..., inline_projections=())``) in big
``append_streams`` transactions. ``--keys`` conversation slots (50) each start with a session
(``SessionOpened`` on the session stream and ``SessionSwitched`` on the key stream, as
``Ledger.open_session`` writes them); then turns on random keys: a ``user`` message and one to
three ``assistant``/``tool`` replies by the gateway's writer. Now and then a key gets a new
session (new, reset or compress, sometimes with another model) or resumes an older one, a turn
is undone or retried (``MessagesRetracted``), and a second writer (another process, set through
``StreamAppend(writer=...)``) posts a reminder into some session.

Measured in this process, on the same store, in ``--rounds`` interleaved rounds (2) that rotate
their order:

``replay``
    ``ledger.replay.replay(store.read_all(batch_size=5000))`` with all three guards (legacy,
    hermes, ledger), in events per second. Target: >= 100,000 events/s on SQLite.
``read``
    ``store.read_all(batch_size=5000)`` iterated without doing anything, the baseline: every
    replay must read and decode each event once, in log order, so this is its physical limit.
    The ratio is the share of the read rate the replay keeps.

Then the log goes through JSON Lines: ``ledger.jsonl.write_jsonl`` of the whole log (export
rate), ``read_jsonl`` alone (its decode rate, the baseline) and ``replay(read_jsonl(...))``.
Peak RSS (``getrusage``) before and after shows that memory stays flat: the log is streamed,
the replay keeps state per session, key and writer only, and a child process did the building,
so this process's peak covers only what is measured here.

The database and the export live in a fresh temporary folder (``--dir`` picks its parent),
deleted at the end. The table goes to stdout, progress to stderr; with ``--json`` the table goes
to stderr too and stdout holds one JSON object with every figure.

    .venv/bin/python benchmarks/replay.py            # 1,000,000 events
    .venv/bin/python benchmarks/replay.py --quick    # 50,000 events
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from common import log, peak_rss_mib, source_revision

from ledger import (
    EventStore,
    MessageAppended,
    MessagesRetracted,
    RecordedEvent,
    SessionOpened,
    SessionSwitched,
    StreamAppend,
)
from ledger.config import Settings
from ledger.events import Event
from ledger.jsonl import read_jsonl, write_jsonl
from ledger.replay import GUARDS, ReplayReport, replay

GATEWAY = "gateway-host:1001"
SECOND_WRITER = "cron-host:2002"
SEED = 20_240_602
READ_BATCH = 5000
#: Turns per build transaction.
TURNS_PER_APPEND = 500
#: Per turn: chance of a new session on the key, of resuming an older one, of an undo or
#: retry after the turn, of a reminder from the second writer.
P_NEW_SESSION = 0.02
P_RESUME = 0.02
P_RETRACT = 0.04
P_FOREIGN = 0.03
REPLAY_TARGET = 100_000.0
PLATFORMS = ("telegram", "discord", "slack", "whatsapp")
MODELS = ("claude", "claude", "claude", "claude-haiku")
WORDS = (
    *(
        "deploy",
        "build",
        "check",
        "passed",
        "failed",
        "retry",
        "cache",
        "session",
        "agent",
        "prompt",
    ),
    *(
        "reply",
        "tool",
        "call",
        "result",
        "error",
        "timeout",
        "queue",
        "worker",
        "schedule",
        "reminder",
    ),
    *(
        "meeting",
        "tomorrow",
        "today",
        "report",
        "summary",
        "draft",
        "review",
        "merge",
        "branch",
        "release",
    ),
    *("notes", "ticket", "customer", "invoice", "budget", "travel", "flight", "hotel"),
)


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """What to run, from the command line."""

    events: int
    keys: int
    rounds: int
    jsonl: bool
    directory: str | None
    as_json: bool


@dataclass(frozen=True, slots=True)
class Result:
    """One rate, with the baseline it is compared with (if any)."""

    source: str
    case: str
    events: int
    seconds: float
    baseline: str | None = None
    baseline_seconds: float | None = None
    target_events_per_s: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def baseline_rate(self) -> float | None:
        return None if self.baseline_seconds is None else self.events / self.baseline_seconds

    @property
    def ratio(self) -> float | None:
        base = self.baseline_rate
        return None if base is None else self.rate / base

    def as_dict(self) -> dict[str, Any]:
        base, ratio = self.baseline_rate, self.ratio
        return asdict(self) | {
            "events_per_s": round(self.rate, 1),
            "baseline_events_per_s": None if base is None else round(base, 1),
            "ratio": None if ratio is None else round(ratio, 3),
            "meets_target": None
            if self.target_events_per_s is None
            else self.rate >= self.target_events_per_s,
        }


@dataclass(slots=True)
class Report:
    """Everything measured in one run."""

    options: Options
    build: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    guards: dict[str, dict[str, int]] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(description="Replay throughput against reading the log.")
    parser.add_argument("--events", type=int, default=1_000_000, help="log size (1,000,000)")
    parser.add_argument("--keys", type=int, default=50, help="conversation slots (50)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (2)")
    parser.add_argument("--no-jsonl", dest="jsonl", action="store_false", help="skip JSONL")
    parser.add_argument("--quick", action="store_true", help="50,000 events, a smoke run")
    parser.add_argument("--dir", dest="directory", help="parent folder of the SQLite file")
    parser.add_argument("--json", dest="as_json", action="store_true", help="JSON on stdout")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 50_000
    if min(args.keys, args.rounds) < 1 or args.events < 10 * args.keys:
        parser.error("--keys and --rounds must be >= 1, --events at least 10 x --keys")
    return Options(
        events=args.events,
        keys=args.keys,
        rounds=args.rounds,
        jsonl=args.jsonl,
        directory=args.directory,
        as_json=args.as_json,
    )


# -- workload ----------------------------------------------------------------------------------


class Traffic:
    """Deterministic gateway traffic, as ``append_streams`` transactions."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.rng = random.Random(SEED)
        self.keys = [f"agent:main:{PLATFORMS[i % 4]}:dm:{100_000 + i}" for i in range(opts.keys)]
        self.active: dict[str, str] = {}
        self.sessions_of: dict[str, list[str]] = {key: [] for key in self.keys}
        self.all_sessions: list[str] = []
        self.live: dict[str, list[str]] = {}
        self.numbers: dict[str, int] = {}
        self.emitted = 0
        self.counts = {"turns": 0, "new_sessions": 0, "resumes": 0, "retractions": 0}
        self.counts["foreign"] = 0

    def text(self, low: int, high: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=self.rng.randint(low, high)))

    def message(self, session_id: str, role: str) -> MessageAppended:
        number = self.numbers[session_id] = self.numbers[session_id] + 1
        message_id = f"m{number:07d}"
        self.live[session_id].append(message_id)
        return MessageAppended(
            session_id=session_id,
            message_id=message_id,
            role=role,  # type: ignore[arg-type]
            content=self.text(4, 30),
            token_count=self.rng.randint(5, 600),
        )

    def part(self, stream: str, events: list[Event], writer: str = GATEWAY) -> StreamAppend:
        self.emitted += len(events)
        return StreamAppend(stream=stream, events=events, writer=writer)

    def open_session(self, key: str, reason: str) -> list[StreamAppend]:
        session_id = f"s{len(self.all_sessions):07d}"
        previous = self.active.get(key)
        self.active[key] = session_id
        self.sessions_of[key].append(session_id)
        self.all_sessions.append(session_id)
        self.live[session_id] = []
        self.numbers[session_id] = 0
        opened = SessionOpened(
            session_id=session_id,
            session_key=key,
            source=key.split(":")[2],
            reason=reason,  # type: ignore[arg-type]
            parent_session_id=previous if reason == "compress" else None,
            model=self.rng.choice(MODELS),
        )
        switched = SessionSwitched(
            session_key=key,
            session_id=session_id,
            previous_session_id=previous,
            reason=reason,  # type: ignore[arg-type]
        )
        return [
            self.part(f"session-{session_id}", [opened]),
            self.part(f"key-{key}", [switched]),
        ]

    def turn(self) -> list[StreamAppend]:
        rng = self.rng
        key = rng.choice(self.keys)
        parts: list[StreamAppend] = []
        roll = rng.random()
        if roll < P_NEW_SESSION:
            self.counts["new_sessions"] += 1
            parts += self.open_session(key, rng.choice(("new", "reset", "compress")))
        elif roll < P_NEW_SESSION + P_RESUME and len(self.sessions_of[key]) > 1:
            self.counts["resumes"] += 1
            target = rng.choice([s for s in self.sessions_of[key][-5:] if s != self.active[key]])
            switched = SessionSwitched(
                session_key=key,
                session_id=target,
                previous_session_id=self.active[key],
                reason="resume",
            )
            self.active[key] = target
            parts.append(self.part(f"key-{key}", [switched]))
        session_id = self.active[key]
        self.counts["turns"] += 1
        events: list[Event] = [self.message(session_id, "user")]
        replies = rng.choice((1, 1, 1, 2, 3))
        for index in range(replies):
            role = "tool" if replies == 3 and index == 1 else "assistant"
            events.append(self.message(session_id, role))
        parts.append(self.part(f"session-{session_id}", events))
        live = self.live[session_id]
        if rng.random() < P_RETRACT and len(live) >= 2:
            self.counts["retractions"] += 1
            count = rng.choice((1, 2))
            taken, self.live[session_id] = live[-count:], live[:-count]
            retracted = MessagesRetracted(
                session_id=session_id, message_ids=taken, reason="undo" if count == 1 else "retry"
            )
            parts.append(self.part(f"session-{session_id}", [retracted]))
        if rng.random() < P_FOREIGN:
            self.counts["foreign"] += 1
            other = rng.choice(self.all_sessions)
            reminder = self.message(other, "assistant")
            parts.append(self.part(f"session-{other}", [reminder], SECOND_WRITER))
        return parts

    def transactions(self) -> Iterator[list[StreamAppend]]:
        """The build's transactions until at least ``--events`` events."""
        opening: list[StreamAppend] = []
        for key in self.keys:
            opening += self.open_session(key, "new")
        yield opening
        while self.emitted < self.opts.events:
            parts: list[StreamAppend] = []
            for _ in range(TURNS_PER_APPEND):
                parts += self.turn()
                if self.emitted >= self.opts.events:
                    break
            yield parts


def build(url: str, opts: Options) -> dict[str, Any]:
    """Write the log (runs in a child process; returns counts and timing)."""
    traffic = Traffic(opts)
    started = time.perf_counter()
    step = max(opts.events // 10, 1)
    next_report = step
    with EventStore.open(url, writer=GATEWAY, inline_projections=()) as store:
        for parts in traffic.transactions():
            store.append_streams(parts)
            if traffic.emitted >= next_report:
                log(f"build: {traffic.emitted:,}/{opts.events:,} events")
                next_report += step
    seconds = time.perf_counter() - started
    log(f"build: {traffic.emitted:,} events in {seconds:.1f}s")
    return traffic.counts | {
        "events": traffic.emitted,
        "sessions": len(traffic.all_sessions),
        "seconds": round(seconds, 2),
        "events_per_s": round(traffic.emitted / seconds, 1),
        "child_peak_rss_mib": round(peak_rss_mib(), 1),
    }


def build_in_child(url: str, opts: Options) -> dict[str, Any]:
    """Run :func:`build` in a spawned process, so its memory never counts as ours."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(build, (url, opts))
    return result


# -- measuring ---------------------------------------------------------------------------------


def progress_logger(label: str, total: int) -> Callable[[int], None]:
    """A ``progress(n)`` callback that logs about every 10%."""
    step = max(total // 10, 1)
    state = {"done": 0, "next": step}

    def progress(n: int) -> None:
        state["done"] += n
        if state["done"] >= state["next"]:
            log(f"  {label}: {state['done']:,} events")
            state["next"] += step

    return progress


def drain(records: Iterable[RecordedEvent], progress: Callable[[int], None]) -> int:
    """Iterate ``records`` doing nothing with them; returns how many there were."""
    count = 0
    for _ in records:
        count += 1
        if count % 10_000 == 0:
            progress(10_000)
    return count


def run_replay(records: Iterable[RecordedEvent], label: str, total: int) -> ReplayReport:
    return replay(records, guards=GUARDS, progress=progress_logger(label, total))


def measure_store(store: EventStore, opts: Options, report: Report) -> None:
    """``read_all`` alone and ``replay(read_all)`` in rounds that rotate their order."""
    total = report.build["events"]

    def read() -> int:
        return drain(store.read_all(batch_size=READ_BATCH), progress_logger("read", total))

    def replayed() -> int:
        result = run_replay(store.read_all(batch_size=READ_BATCH), "replay", total)
        report.guards = {
            name: {k: getattr(g, k) for k in g.__struct_fields__}
            for name, g in result.guards.items()
        }
        return result.events

    seconds = interleave("sqlite", {"read": read, "replay": replayed}, opts.rounds, total)
    events = total * opts.rounds
    report.results += [
        Result(
            "sqlite",
            "replay, 3 guards",
            events,
            seconds["replay"],
            "read_all (decode only)",
            seconds["read"],
            REPLAY_TARGET,
        ),
        Result("sqlite", "read_all (decode only)", events, seconds["read"]),
    ]


def interleave(
    source: str, sides: dict[str, Callable[[], int]], rounds: int, total: int
) -> dict[str, float]:
    """Run each side ``rounds`` times, rotating their order per round; seconds per side.

    Every run must see all ``total`` events, or the figures would compare different work.
    """
    order = list(sides.items())
    seconds = dict.fromkeys(sides, 0.0)
    for index in range(rounds):
        for offset in range(len(order)):
            name, runner = order[(index + offset) % len(order)]
            start = time.perf_counter()
            count = runner()
            took = time.perf_counter() - start
            if count != total:
                raise RuntimeError(f"{source} {name} saw {count:,} events, the log holds {total:,}")
            seconds[name] += took
            log(
                f"{source}: round {index + 1}/{rounds} {name}: {count:,} events in {took:.2f}s "
                f"({count / took:,.0f} ev/s); peak RSS {peak_rss_mib():.1f} MiB"
            )
    return seconds


def measure_jsonl(store: EventStore, folder: Path, opts: Options, report: Report) -> None:
    """Export the log, then ``read_jsonl`` alone and ``replay(read_jsonl)``, interleaved."""
    total = report.build["events"]
    path = folder / "export.jsonl"
    start = time.perf_counter()
    with path.open("wb") as out:
        written = write_jsonl(store.read_all(batch_size=READ_BATCH), out)
    took = time.perf_counter() - start
    if written != total:
        raise RuntimeError(f"exported {written:,} events, the log holds {total:,}")
    log(
        f"jsonl: exported {written:,} events in {took:.2f}s ({path.stat().st_size / 2**20:.0f} MiB)"
    )
    report.results.append(Result("jsonl", "export (write_jsonl)", written, took))
    report.build["jsonl_mib"] = round(path.stat().st_size / 2**20, 1)

    def read() -> int:
        with path.open("rb") as lines:
            return drain(read_jsonl(lines, store.codec), progress_logger("read_jsonl", total))

    def replayed() -> int:
        with path.open("rb") as lines:
            return run_replay(read_jsonl(lines, store.codec), "replay jsonl", total).events

    seconds = interleave("jsonl", {"read": read, "replay": replayed}, opts.rounds, total)
    events = total * opts.rounds
    report.results += [
        Result(
            "jsonl",
            "replay, 3 guards",
            events,
            seconds["replay"],
            "read_jsonl (decode only)",
            seconds["read"],
        ),
        Result("jsonl", "read_jsonl (decode only)", events, seconds["read"]),
    ]


def run(opts: Options, report: Report) -> None:
    """Build the log, then measure replay from the store and from its JSONL export."""
    settings = Settings.from_env({})
    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=opts.directory) as tmp:
        folder = Path(tmp)
        path = folder / "ledger.db"
        url = f"sqlite:///{path}"
        log(f"sqlite: file {path}")
        report.build = build_in_child(url, opts)
        report.build["file_mib"] = round(path.stat().st_size / 2**20, 1)
        report.environment = {
            "revision": source_revision(),
            "sqlite_version": sqlite3.sqlite_version,
        }
        with EventStore.open(url, settings=settings, inline_projections=()) as store:
            report.memory["peak_rss_before_mib"] = round(peak_rss_mib(), 1)
            measure_store(store, opts, report)
            report.memory["peak_rss_after_store_mib"] = round(peak_rss_mib(), 1)
            if opts.jsonl:
                measure_jsonl(store, folder, opts, report)
                report.memory["peak_rss_after_jsonl_mib"] = round(peak_rss_mib(), 1)


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as a fixed-width table."""
    opts, b = report.options, report.build
    print(
        f"ledger {report.environment['revision']}; SQLite {report.environment['sqlite_version']}; "
        f"{b['events']:,} events, {opts.keys} keys, "
        f"{b['sessions']:,} sessions, {b['turns']:,} turns, {b['retractions']:,} retractions, "
        f"{b['foreign']:,} second-writer events; {b['file_mib']} MiB; {opts.rounds} rounds",
        file=out,
    )
    print(
        f"{'source':<7}{'case':<26}{'events/s':>10}  {'baseline':<25}{'baseline ev/s':>14}"
        f"{'ratio':>7}  target",
        file=out,
    )
    for r in report.results:
        if r.baseline is None:
            continue
        base, ratio = r.baseline_rate, r.ratio
        assert base is not None
        assert ratio is not None
        verdict = "(info)"
        if r.target_events_per_s is not None:
            verdict = f">= {r.target_events_per_s:,.0f} ev/s " + (
                "ok" if r.rate >= r.target_events_per_s else "BELOW"
            )
        print(
            f"{r.source:<7}{r.case:<26}{r.rate:>10,.0f}  {r.baseline:<25}{base:>14,.0f}"
            f"{ratio:>7.2f}  {verdict}",
            file=out,
        )
    for r in report.results:
        if r.case.startswith("export"):
            print(f"{r.source:<7}{r.case:<26}{r.rate:>10,.0f}  (info)", file=out)
    guards = ", ".join(
        f"{name} {g['rebuilds']:,} rebuilds/{g['false_busts']:,} false busts/"
        f"{g['missed_changes']:,} missed"
        for name, g in report.guards.items()
    )
    print(f"guards over {report.guards['ledger']['turns']:,} turns: {guards}", file=out)
    m = report.memory
    after = [f"after store replay {m['peak_rss_after_store_mib']:.1f}"]
    if "peak_rss_after_jsonl_mib" in m:
        after.append(f"after JSONL {m['peak_rss_after_jsonl_mib']:.1f}")
    print(
        f"peak RSS (MiB): before {m['peak_rss_before_mib']:.1f}, {', '.join(after)}; "
        f"build (child process) {b['events_per_s']:,.0f} ev/s, peak {b['child_peak_rss_mib']}",
        file=out,
    )


def as_json(report: Report) -> str:
    """Every figure of the run as one JSON object."""
    return json.dumps(
        {
            "options": asdict(report.options),
            "build": report.build,
            "environment": report.environment,
            "results": [r.as_dict() for r in report.results],
            "guards": report.guards,
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
