"""Write throughput as writer processes are added: ``Ledger.append_message`` from 1, 2, 4, 8 OS
processes, against the bare driver's one-row commits from as many processes, in the same run.

Why: a gateway runs several worker processes against one database, each recording messages as
they arrive, so what matters is whether the total rate grows with the writers. On PostgreSQL
the store no longer takes a global append lock (a per-stream advisory lock, positions from
transaction ids), so N writers on N sessions should commit side by side, the way N bare
connections do; this script measures how close the ledger gets to that. On SQLite one writer at
a time is the physical rule (the database lock): more writers cannot add throughput, only
queue, so what it shows there is that the total holds up and what the wait costs in p99.

Each point is N processes spawned for it (``multiprocessing`` spawn), each with its own
connection, warmed up, started together by a barrier, writing for ``--seconds`` (3):

ledger
    its own :class:`Ledger` (``Ledger.open``, the installed inline views on, as users run it)
    and its own session (``open_session``), one ``append_message`` per write.
baseline (PostgreSQL)
    a bare ``psycopg`` connection, one ``INSERT`` of an event-shaped row and ``COMMIT`` per
    write (``synchronous_commit`` as the server has it: on), into a table of the same columns,
    types and indexes as ``events``, in the same throw-away schema.
baseline (SQLite)
    SQLAlchemy Core, one ``INSERT`` per ``engine.begin()`` (``BEGIN IMMEDIATE``) on an engine
    made by :func:`ledger.store.database.create_engine` (``journal_mode=WAL``,
    ``synchronous=FULL``, the ledger's busy timeout) on one file for all its processes; the
    ledger has a file of its own in the same folder.

The two sides run interleaved, a ledger point and a baseline point, the order rotating from one
point to the next, in ``--rounds`` rounds (2), so drift hits both alike. Reported per writer
count: the total writes per second of all processes (the sum of each one's rate; mean over
rounds), the rate relative to one writer, p50 and p99 latency of single writes, the writer
processes' own CPU time per write (``cpu ms``; the database server's is not in it), the share
of all cores that was busy meanwhile (``busy``, from ``/proc/stat``: any program's work), and
the ledger/baseline ratio. The ledger does more per write by design (validation, the session check,
the stream head, the inline views in the same transaction), so the ratio is the share of the
commit budget it leaves; the scaling columns say whether it grows like the baseline.

The machine has 2 cores (CI's and every developer's too): past 2 writers, processes share the
cores with each other and with the database server, so the gain beyond 2 comes from overlapping
the wait for the WAL flush, not from parallel CPU; and a side whose writes cost about a core
each (client and server CPU together) is bound by the cores already at one or two writers,
whatever its locking: ``busy`` near 100% says so. The load average before and after is printed:
another program on the machine skews every figure.

    .venv/bin/python benchmarks/scale.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/scale.py --quick     # 1 s per point, writers 1,2,4, one round
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

import sqlalchemy as sa
from _harness.databases import raw_table, scratch_folder
from _harness.machine import engine_pragmas, sqlite_environment
from _harness.output import (
    RunOptions,
    add_run_arguments,
    add_synchronous_argument,
    document_head,
    header_lines,
    log,
    run_options,
    run_script,
)
from _harness.postgres import migrated_schema, postgres_settings, psycopg_connect
from _harness.timing import rotation
from _workloads.gateway import verify_counts
from _workloads.scale import CONTENDERS, RAW_TABLE, Side, run_point

from ledger import Ledger
from ledger.config import Settings
from ledger.store.database import create_engine

WRITERS = (1, 2, 4, 8)
QUICK_WRITERS = (1, 2, 4)


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options(RunOptions):
    """What to run, from the command line."""

    seconds: float
    writers: tuple[int, ...]
    rounds: int
    synchronous: str


@dataclass(frozen=True, slots=True)
class Result:
    """The ledger and its baseline at one writer count on one backend."""

    backend: str
    writers: int
    baseline: str
    ledger: Side
    raw: Side

    @property
    def ratio(self) -> float:
        return self.ledger.rate / self.raw.rate

    def as_dict(self, single: Result | None) -> dict[str, Any]:
        scaling = {}
        if single is not None:
            scaling = {
                "ledger_vs_1_writer": round(self.ledger.rate / single.ledger.rate, 3),
                "baseline_vs_1_writer": round(self.raw.rate / single.raw.rate, 3),
            }
        return {
            "backend": self.backend,
            "writers": self.writers,
            "baseline": self.baseline,
            "ledger": self.ledger.figures(),
            "baseline_figures": self.raw.figures(),
            "ratio": round(self.ratio, 3),
            **scaling,
        }


@dataclass(slots=True)
class Report:
    """Everything measured in one run, with the database settings and the machine's load."""

    options: Options
    environment: dict[str, dict[str, str]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    load: dict[str, list[float]] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Ledger.append_message from N writer processes against bare one-row commits."
    )
    parser.add_argument("--seconds", type=float, help="seconds per point (3; --quick: 1)")
    parser.add_argument(
        "--writers", help="writer process counts, comma-separated (1,2,4,8; --quick: 1,2,4)"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (2; --quick: 1)")
    add_synchronous_argument(parser, "the baseline")
    parser.add_argument("--quick", action="store_true", help="a short run: the --quick defaults")
    add_run_arguments(parser, files="files", postgres=True)
    args = parser.parse_args(argv)
    seconds, rounds, counts = (1.0, 1, QUICK_WRITERS) if args.quick else (3.0, 2, WRITERS)
    args.seconds = seconds if args.seconds is None else args.seconds
    args.rounds = rounds if args.rounds is None else args.rounds
    try:
        writers = tuple(sorted({int(part) for part in (args.writers or "").split(",") if part}))
        writers = writers or counts
    except ValueError:
        parser.error("--writers takes integers, e.g. 1,2,4,8")
    if min(writers) < 1 or args.rounds < 1 or args.seconds <= 0:
        parser.error("--writers and --rounds must be at least 1, --seconds above 0")
    return Options(
        seconds=args.seconds,
        writers=writers,
        rounds=args.rounds,
        synchronous=args.synchronous,
        **run_options(args),
    )


# -- measuring ---------------------------------------------------------------------------------


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def run_cases(
    backend: str, urls: tuple[str, str], baseline: str, opts: Options, report: Report
) -> None:
    """Every writer count, the ledger (at ``urls[0]``) and ``baseline`` (at ``urls[1]``)
    interleaved; then checks that every write each side counted is stored."""
    contenders = ("ledger", baseline)
    sides = {n: (Side(), Side()) for n in opts.writers}
    turn = 0
    report.load[f"{backend}_before"] = load_average()
    for index in range(opts.rounds):
        for writers in opts.writers:
            for side in rotation(turn, 2):
                tag = f"{contenders[side][0]}{writers}r{index}"
                outcomes, busy = run_point(
                    contenders[side], urls[side], opts.synchronous, opts.seconds, writers, tag
                )
                sides[writers][side].add(outcomes, busy)
                log(
                    f"{backend} round {index + 1}/{opts.rounds}: {contenders[side]} x{writers} "
                    f"{sides[writers][side].rates[-1]:,.0f} writes/s, machine CPU {busy:.0%} busy"
                )
            turn += 1
    report.load[f"{backend}_after"] = load_average()
    label = CONTENDERS[baseline]
    for writers, (ledger_side, raw_side) in sides.items():
        report.results.append(Result(backend, writers, label, ledger_side, raw_side))
    verify(backend, urls, sides)


def verify(backend: str, urls: tuple[str, str], sides: dict[int, tuple[Side, Side]]) -> None:
    """Every message the ledger processes sent is in their sessions' views, every baseline
    commit in the baseline table."""
    sessions = [sid for ledger_side, _ in sides.values() for sid in ledger_side.sessions]
    messages = sum(ledger_side.sent for ledger_side, _ in sides.values())
    rows = sum(raw_side.sent for _, raw_side in sides.values())
    raw = create_engine(urls[1])
    try:
        with Ledger.open(urls[0], writer="bench:scale:verify") as ledger:
            table = raw_table(sa.MetaData(), RAW_TABLE)
            verify_counts(backend, ledger, sessions, messages, raw, table, rows)
    finally:
        raw.dispose()
    log(f"{backend}: {messages:,} messages and {rows:,} baseline rows stored, as counted")


# -- backends ----------------------------------------------------------------------------------


def run_sqlite(settings: Settings, report: Report) -> None:
    """SQLite: the ledger in one file, the baseline table in another, same folder and PRAGMAs."""
    opts = report.options
    with scratch_folder(opts.directory) as folder, ExitStack() as stack:
        log(f"sqlite: files in {folder}")
        urls = (f"sqlite:///{folder / 'ledger.db'}", f"sqlite:///{folder / 'raw.db'}")
        ledger = Ledger.open(urls[0], writer="bench:scale:setup", settings=settings)
        stack.callback(ledger.close)  # the schema exists before the writers open the file
        raw = create_engine(urls[1], settings)
        stack.callback(raw.dispose)
        raw_table(sa.MetaData(), RAW_TABLE).create(raw)
        seen = engine_pragmas(ledger.store.engine)
        if engine_pragmas(raw) != seen:
            raise RuntimeError("the baseline engine runs with other PRAGMAs")
        report.environment["sqlite"] = sqlite_environment(seen)
        log(f"sqlite: {report.environment['sqlite']}")
        run_cases("sqlite", urls, "core", opts, report)


def run_postgres(url: str, settings: Settings, report: Report) -> None:
    """PostgreSQL: the ledger's tables and the baseline table in one fresh schema."""
    with migrated_schema(url, settings) as schema_url:
        raw = create_engine(schema_url, settings)
        raw_table(sa.MetaData(), RAW_TABLE).create(raw)
        raw.dispose()
        with psycopg_connect(schema_url) as conn:
            report.environment["postgresql"] = postgres_settings(conn, "max_connections")
        log(f"postgresql: {report.environment['postgresql']}")
        run_cases("postgresql", (schema_url, schema_url), "psycopg", report.options, report)


# -- output ------------------------------------------------------------------------------------


def print_table(report: Report, out: TextIO) -> None:
    """The results as a fixed-width table, a block per backend."""
    opts = report.options
    detail = f"{opts.seconds:g} s per point, {opts.rounds} interleaved round(s)"
    for line in header_lines(report.environment, f"{detail}; {os.cpu_count()} cores"):
        print(line, file=out)
    shown = "; ".join(f"{k} {' '.join(map(str, v))}" for k, v in report.load.items())
    print(f"load average (1/5/15 min): {shown}", file=out)
    head = f"{'writers':>7}{'ops/s':>10}{'x1':>6}{'p50 ms':>8}{'p99 ms':>8}{'cpu ms':>8}{'busy':>6}"
    for backend in dict.fromkeys(r.backend for r in report.results):
        rows = [r for r in report.results if r.backend == backend]
        print(
            f"\n{backend}: ledger = Ledger.append_message; baseline = {rows[0].baseline}", file=out
        )
        print(f"{'':7}{'ledger':<46}baseline", file=out)
        print(f"{head}{head[7:]}{'ratio':>7}", file=out)
        single = next((r for r in rows if r.writers == 1), None)
        for r in rows:
            cells = [f"{r.writers:>7}"]
            for side, first in (
                (r.ledger, single and single.ledger),
                (r.raw, single and single.raw),
            ):
                scale = f"{side.rate / first.rate:>6.2f}" if first else f"{'-':>6}"
                cpu = side.figures()["writer_cpu_ms_per_write"]
                cells.append(
                    f"{side.rate:>10,.0f}{scale}{side.latency_ms(0.5):>8.2f}"
                    f"{side.latency_ms(0.99):>8.2f}{cpu:>8.2f}{side.machine_busy:>6.0%}"
                )
            print(f"{''.join(cells)}{r.ratio:>7.2f}", file=out)
    print(
        "\ncpu ms: the writer processes' own CPU time per write (the database server's not "
        "counted); busy: the share of all cores busy meanwhile, any program's work",
        file=out,
    )


def document(report: Report) -> dict[str, Any]:
    """The JSON document: options, revision, machine, database settings, every point."""
    singles = {r.backend: r for r in report.results if r.writers == 1}
    return {
        **document_head(report.options),
        "machine": {"cpu_count": os.cpu_count(), "load_average": report.load},
        "environment": report.environment,
        "results": [r.as_dict(singles.get(r.backend)) for r in report.results],
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_script(opts, Report(opts), (run_sqlite, run_postgres), (print_table, document))


if __name__ == "__main__":
    sys.exit(main())
