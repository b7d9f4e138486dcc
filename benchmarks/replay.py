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
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from _harness.build import built_log
from _harness.machine import note_rss, run_environment
from _harness.output import (
    add_run_arguments,
    emit,
    log,
    log_document,
    rss_line,
    run_header,
    verdict,
)
from _harness.timing import counter, log_pass, rotation
from _workloads.replay import build_log

from ledger import EventStore, RecordedEvent
from ledger.config import Settings
from ledger.jsonl import read_jsonl, write_jsonl
from ledger.replay import GUARDS, ReplayReport, replay

READ_BATCH = 5000
REPLAY_TARGET = 100_000.0


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
    add_run_arguments(parser, files="file", postgres=False)
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


# -- measuring ---------------------------------------------------------------------------------


def drain(records: Iterable[RecordedEvent], progress: Callable[[int], None]) -> int:
    """Iterate ``records`` doing nothing with them; returns how many there were."""
    count = 0
    for _ in records:
        count += 1
        if count % 10_000 == 0:
            progress(10_000)
    return count


def run_replay(records: Iterable[RecordedEvent], label: str, total: int) -> ReplayReport:
    return replay(records, guards=GUARDS, progress=counter(label, total))


def interleave(
    source: str, sides: dict[str, Callable[[], int]], rounds: int, total: int
) -> dict[str, float]:
    """Run each side ``rounds`` times, rotating their order per round; seconds per side.

    Every run must see all ``total`` events, or the figures would compare different work.
    """
    order = list(sides.items())
    seconds = dict.fromkeys(sides, 0.0)
    for index in range(rounds):
        for side in rotation(index, len(order)):
            name, runner = order[side]
            start = time.perf_counter()
            count = runner()
            took = time.perf_counter() - start
            if count != total:
                raise RuntimeError(f"{source} {name} saw {count:,} events, the log holds {total:,}")
            seconds[name] += took
            log_pass(f"{source}: round {index + 1}/{rounds} {name}", count, took)
    return seconds


def compare(
    source: str,
    read: tuple[str, Callable[[], int]],
    replayed: Callable[[], int],
    report: Report,
    target: float | None = None,
) -> None:
    """``read`` alone and ``replayed`` (a replay of the same records), interleaved."""
    total, rounds = report.build["events"], report.options.rounds
    seconds = interleave(source, {"read": read[1], "replay": replayed}, rounds, total)
    events = total * rounds
    report.results += [
        Result(
            source, "replay, 3 guards", events, seconds["replay"], read[0], seconds["read"], target
        ),
        Result(source, read[0], events, seconds["read"]),
    ]


def measure_store(store: EventStore, report: Report) -> None:
    """``read_all`` alone and ``replay(read_all)`` in rounds that rotate their order."""
    total = report.build["events"]

    def read() -> int:
        return drain(store.read_all(batch_size=READ_BATCH), counter("read", total))

    def replayed() -> int:
        result = run_replay(store.read_all(batch_size=READ_BATCH), "replay", total)
        report.guards = {
            name: {k: getattr(g, k) for k in g.__struct_fields__}
            for name, g in result.guards.items()
        }
        return result.events

    compare("sqlite", ("read_all (decode only)", read), replayed, report, REPLAY_TARGET)


def measure_jsonl(store: EventStore, path: Path, report: Report) -> None:
    """Export the log, then ``read_jsonl`` alone and ``replay(read_jsonl)``, interleaved."""
    total = report.build["events"]
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
            return drain(read_jsonl(lines, store.codec), counter("read_jsonl", total))

    def replayed() -> int:
        with path.open("rb") as lines:
            return run_replay(read_jsonl(lines, store.codec), "replay jsonl", total).events

    compare("jsonl", ("read_jsonl (decode only)", read), replayed, report)


def run(opts: Options) -> Report:
    """Build the log, then measure replay from the store and from its JSONL export."""
    settings = Settings.from_env({})
    report = Report(opts)
    with built_log(opts.directory, build_log, opts.keys, opts.events) as (path, build):
        report.build = build
        report.environment = run_environment()
        memory = report.memory
        with EventStore.open(
            f"sqlite:///{path}", settings=settings, inline_projections=()
        ) as store:
            note_rss(memory, "before")
            measure_store(store, report)
            note_rss(memory, "after_store")
            if opts.jsonl:
                measure_jsonl(store, path.parent / "export.jsonl", report)
                note_rss(memory, "after_jsonl")
    return report


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as a fixed-width table."""
    opts, b = report.options, report.build
    print(
        f"{run_header(report.environment['revision'], report.environment)}; "
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
        target = r.target_events_per_s
        goal = verdict(target, target is not None and r.rate >= target, ">= {:,.0f} ev/s")
        print(
            f"{r.source:<7}{r.case:<26}{r.rate:>10,.0f}  {r.baseline:<25}{base:>14,.0f}"
            f"{ratio:>7.2f}  {goal}",
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
    stages = {"after_store": "after store replay", "after_jsonl": "after JSONL"}
    print(rss_line(report.memory, b, stages), file=out)


def document(report: Report) -> dict[str, Any]:
    """The JSON document: options, the built log, every rate, guard counts, memory."""
    results = [r.as_dict() for r in report.results]
    return log_document(report, {"results": results, "guards": report.guards})


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return emit(run(opts), print_table, document, opts.as_json)


if __name__ == "__main__":
    sys.exit(main())
