"""The ledger against a peer event store: eventsourcing 9.5 (PyPI ``eventsourcing``, the
``bench`` extra), at the same durability, on the same messages, in the same run.

Three cases, on SQLite and (with ``--postgres``) PostgreSQL:

``single``
    one ``MessageAppended`` per append, rotating over 10 streams, ``--count`` (1,000) appends.
``batch``
    1,000 events per append, ``--batches`` (10) appends.
``read``
    the whole log (what both cases wrote, warm-ups included), read in log order with every event
    decoded, ``--reads`` (3) passes: the ledger's ``EventStore.read_all(batch_size=5000)``
    against eventsourcing's ``select_notifications`` in pages of 5,000, each notification
    turned back into its domain event by the ``Mapper``.

The ledger side is ``EventStore`` twice, each in a database of its own: with the installed
inline projections (``log+views``, the path users run; listed first) and as a bare log
(``log``, ``inline_projections=()``), which is what eventsourcing's ``ApplicationRecorder`` is:
events in per-aggregate order plus one global order, no views. The ratio of the bare log is the
like-for-like one; the read case runs on it. eventsourcing runs through its recorder API below
``Application`` (``insert_events``, ``select_notifications``) with the ``JSONTranscoder`` mapper
an application uses by default, so both sides encode on the way in and decode on the way out;
its events carry the fields and content of the ledger's (see ``_workloads/peers.py``).

Durability, matched as far as eventsourcing's options allow, and checked on its connections:
SQLite ``journal_mode=WAL`` (eventsourcing sets it itself) and ``synchronous=FULL``
(eventsourcing has no option for it: its connections run at the library's compiled default,
which the run reads and prints; the ledger sets FULL), the ledger's busy timeout as its lock
timeout. PostgreSQL: both on the same server with ``synchronous_commit`` as the server has it
(on); eventsourcing's tables in a throw-away schema, the ledger's in two migrated ones, all
dropped at the end. What cannot be matched is listed under the table: each side's own locking
and statement shape, and the size of the stored payload (eventsourcing keeps the timestamp in
the payload, the ledger in a column).

Each case runs its contenders interleaved, in ``--rounds`` rounds (3) that rotate their order,
after a short warm-up of each. The table goes to stdout, progress to stderr; with ``--json`` the
table goes to stderr too and stdout holds one JSON object with every figure.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/peers.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/peers.py --quick
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, TextIO

from _harness.databases import scratch_folder
from _harness.machine import engine_pragmas, sqlite_environment
from _harness.output import (
    RunOptions,
    add_run_arguments,
    document_head,
    header_lines,
    log,
    run_options,
    run_script,
)
from _harness.postgres import migrated_schema, postgres_schema, postgres_settings, psycopg_connect
from _harness.timing import Comparison, Runner, measure_rounds
from _workloads.append import BATCH_SIZE, PAYLOAD, VARIANTS, ledger_runner, open_stores, ordered
from _workloads.peers import Peer, ledger_reader, peer_postgres, peer_sqlite

from ledger import EventStore
from ledger.config import Settings

WRITER = "benchmark:peers"
#: The counts on the command line: name -> (default, with --quick, what it counts).
COUNTS = {
    "count": (1000, 100, "single appends"),
    "batches": (10, 2, "appends of 1,000 events"),
    "reads": (3, 2, "whole-log read passes"),
    "rounds": (3, 2, "interleaved rounds per case"),
}
#: What could not be made the same on each backend, printed under the table.
UNMATCHED = {
    "sqlite": (
        "eventsourcing has no synchronous option: it runs at SQLite's compiled default, "
        "synchronous={peer_synchronous} on its connection here (the ledger sets "
        "{ledger_synchronous}): matched only while the two agree",
        "eventsourcing writes in a deferred BEGIN, one INSERT per event (to return rowids); "
        "the ledger in BEGIN IMMEDIATE, one executemany",
    ),
    "postgresql": (
        "eventsourcing takes LOCK TABLE ... EXCLUSIVE and sends NOTIFY in every insert; "
        "the ledger a per-stream advisory lock",
    ),
    "both": (
        "payload: the same message fields and content, but eventsourcing keeps its timestamp "
        "in the payload (the ledger in a column): {peer} bytes against {ledger}",
    ),
}


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options(RunOptions):
    """What to run, from the command line."""

    count: int
    batches: int
    reads: int
    rounds: int
    warmup_singles: int


@dataclass(frozen=True, slots=True)
class Result(Comparison):
    """One ledger-versus-eventsourcing comparison over the same number of events."""

    backend: str
    case: str
    store: str
    events: int
    ledger_seconds: float
    baseline_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "case": self.case,
            "store": self.store,
            "events": self.events,
            "ledger_seconds": round(self.ledger_seconds, 4),
            "eventsourcing_seconds": round(self.baseline_seconds, 4),
        } | self.rates("ledger_events_per_s", "eventsourcing_events_per_s")


@dataclass(slots=True)
class Report:
    """Everything measured in one run, with the settings each side ran under."""

    options: Options
    environment: dict[str, dict[str, str]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    payload_bytes: dict[str, int] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(description="The ledger against eventsourcing 9.5.")
    for name, (default, quick, what) in COUNTS.items():
        parser.add_argument(f"--{name}", type=int, help=f"{what} ({default}; --quick: {quick})")
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    add_run_arguments(parser, files="files", postgres=True)
    args = parser.parse_args(argv)
    counts = {
        name: given
        if (given := getattr(args, name)) is not None
        else (quick if args.quick else default)
        for name, (default, quick, _) in COUNTS.items()
    }
    if min(counts.values()) < 1:
        parser.error("--" + ", --".join(COUNTS) + " must be at least 1")
    counts["rounds"] = min(counts.values())
    return Options(**counts, warmup_singles=10 if args.quick else 50, **run_options(args))


# -- measuring ---------------------------------------------------------------------------------


def compare(
    backend: str,
    case: str,
    ledgers: dict[str, Runner],
    peer: Runner,
    ops: int,
    size: int,
    warmup: int,
    opts: Options,
) -> list[Result]:
    """Each ledger runner and the ``peer`` runner on ``case``, interleaved."""
    timings = measure_rounds(
        f"{backend} {case}", [*ledgers.values(), peer], ops, opts.rounds, warmup
    )
    *ledger_seconds, (peer_seconds, _) = timings
    return [
        Result(backend, case, variant, ops * size, seconds, peer_seconds)
        for variant, (seconds, _) in zip(ledgers, ledger_seconds, strict=True)
    ]


def run_cases(
    backend: str, stores: dict[str, EventStore], peer: Peer, opts: Options
) -> list[Result]:
    """The three cases on one backend; checks that both logs hold the same events."""
    results: list[Result] = []
    for case, ops, size, warmup in (
        ("single", opts.count, 1, opts.warmup_singles),
        ("batch", opts.batches, BATCH_SIZE, 1),
    ):
        ledgers = {
            variant: ledger_runner(store, VARIANTS[variant][0], case, size)
            for variant, store in stores.items()
        }
        results += compare(backend, case, ledgers, peer.writer(case, size), ops, size, warmup, opts)
    expected = (opts.warmup_singles + opts.count) + (1 + opts.batches) * BATCH_SIZE
    if peer.count() != expected:
        raise RuntimeError(f"{backend}: eventsourcing holds {peer.count()} events, {expected} sent")
    readers = {"log": ledger_reader(stores["log"], expected)}
    results += compare(
        backend, "read", readers, peer.reader(expected), opts.reads, expected, 1, opts
    )
    return results


# -- backends ----------------------------------------------------------------------------------


def run_sqlite(settings: Settings, report: Report) -> None:
    """SQLite: a file per ledger variant and one for eventsourcing, in one folder."""
    opts = report.options
    with scratch_folder(opts.directory) as folder, ExitStack() as stack:
        log(f"sqlite: files in {folder}")
        urls = {variant: f"sqlite:///{folder / f'{variant}.db'}" for variant in VARIANTS}
        stores = open_stores(urls, WRITER, settings, stack)
        peer, seen = peer_sqlite(str(folder / "eventsourcing.db"), settings.busy_timeout_ms)
        stack.callback(peer.close)
        report.payload_bytes["eventsourcing"] = peer.payload_bytes()
        ledger = engine_pragmas(stores["log"].engine)
        report.environment["sqlite"] = sqlite_environment(ledger)
        report.environment["sqlite_eventsourcing"] = seen
        log(f"sqlite: ledger {ledger}, eventsourcing {seen}")
        report.results += run_cases("sqlite", stores, peer, opts)


def run_postgres(url: str, settings: Settings, report: Report) -> None:
    """PostgreSQL: a migrated schema per ledger variant, a bare one for eventsourcing."""
    with ExitStack() as stack:
        urls = {v: stack.enter_context(migrated_schema(url, settings)) for v in VARIANTS}
        peer_url = stack.enter_context(postgres_schema(url))
        stores = open_stores(urls, WRITER, settings, stack)
        peer, seen = peer_postgres(peer_url)
        stack.callback(peer.close)
        with psycopg_connect(urls["log"]) as conn:
            report.environment["postgresql"] = postgres_settings(conn)
        report.environment["postgresql_eventsourcing"] = seen
        log(f"postgresql: ledger {report.environment['postgresql']}, eventsourcing {seen}")
        report.results += run_cases("postgresql", stores, peer, report.options)


# -- output ------------------------------------------------------------------------------------


def unmatched(report: Report) -> list[str]:
    """What could not be made the same, for the backends that ran."""
    backends = [b for b in ("sqlite", "postgresql") if b in report.environment]
    env = report.environment
    values = {
        "peer": report.payload_bytes["eventsourcing"],
        "ledger": report.payload_bytes["ledger"],
        "peer_synchronous": env.get("sqlite_eventsourcing", {}).get("synchronous"),
        "ledger_synchronous": env.get("sqlite", {}).get("synchronous"),
    }
    return [f"{b}: {note.format(**values)}" for b in [*backends, "both"] for note in UNMATCHED[b]]


def print_table(report: Report, out: TextIO) -> None:
    """The results as a fixed-width table, then what could not be matched."""
    opts = report.options
    detail = (
        f"eventsourcing {version('eventsourcing')}; {opts.count} single appends, "
        f"{opts.batches} x {BATCH_SIZE}-event appends, {opts.reads} whole-log reads, "
        f"{opts.rounds} interleaved rounds"
    )
    for line in header_lines(report.environment, detail):
        print(line, file=out)
    for backend, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        if seen := report.environment.get(f"{backend}_eventsourcing"):
            shown = " ".join(f"{k}={v}" for k, v in seen.items())
            print(f"eventsourcing on {label}: {shown}", file=out)
    print(
        f"{'backend':<11}{'case':<7}{'ledger':<10}{'ledger ev/s':>12}{'eventsourcing ev/s':>20}"
        f"{'ledger/es':>11}",
        file=out,
    )
    for r in ordered(report.results):
        print(
            f"{r.backend:<11}{r.case:<7}{r.store:<10}{r.ledger_rate:>12,.0f}"
            f"{r.baseline_rate:>20,.0f}{r.ratio:>11.2f}",
            file=out,
        )
    print("not matched:", file=out)
    for note in unmatched(report):
        print(f"  {note}", file=out)


def document(report: Report) -> dict[str, Any]:
    """The JSON document: options, versions, the settings of each side, every result."""
    return {
        **document_head(report.options),
        "eventsourcing_version": version("eventsourcing"),
        "batch_size": BATCH_SIZE,
        "payload_bytes": report.payload_bytes,
        "environment": report.environment,
        "not_matched": unmatched(report),
        "results": [r.as_dict() for r in ordered(report.results)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    report = Report(opts, payload_bytes={"ledger": len(PAYLOAD)})
    return run_script(opts, report, (run_sqlite, run_postgres), (print_table, document))


if __name__ == "__main__":
    sys.exit(main())
