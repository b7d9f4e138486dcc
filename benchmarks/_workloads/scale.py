"""What the writer processes of ``benchmarks/scale.py`` do, and how one point of it is run.

A point is N spawned OS processes doing one kind of write for a fixed time. Each process opens
its own connection first (the ledger side: its own :class:`Ledger` and its own session), makes a
few warm-up writes, then waits at a barrier with the others and the parent; once all are there,
each writes for ``seconds`` and reports how many writes it made, in how long, and each one's
latency. The kinds of write:

``ledger``
    :meth:`Ledger.append_message` to the process's own session (inline views on).
``psycopg``
    one ``INSERT`` of an event-shaped row and ``COMMIT`` on a bare ``psycopg`` connection.
``core``
    one Core ``INSERT`` per ``engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite) on an engine from
    :func:`ledger.store.database.create_engine`, so with the ledger's PRAGMAs and busy timeout.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from _harness.databases import CONTENT, core_committer, event_row, raw_table
from _harness.machine import cpu_jiffies
from _harness.postgres import psycopg_connect
from _harness.timing import percentile

from _workloads.append import INSERT_COLUMNS
from _workloads.gateway import PAYLOAD, ROLES
from ledger import Ledger
from ledger.config import Settings
from ledger.store.database import create_engine

__all__ = ["CONTENDERS", "RAW_TABLE", "Job", "Side", "run_point"]

#: Contender -> what its writes are, as the table names them.
CONTENDERS = {
    "ledger": "Ledger.append_message",
    "psycopg": "psycopg INSERT + COMMIT",
    "core": "Core one-row commits",
}
RAW_TABLE = "raw_commits"
WARMUP = 5
#: How long the parent waits for every process to be ready, in seconds.
SETUP_TIMEOUT = 180.0
PSYCOPG_INSERT = (
    f"INSERT INTO {RAW_TABLE} ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({name})s' for name in INSERT_COLUMNS)})"
)


@dataclass(frozen=True, slots=True)
class Job:
    """What one writer process does: ``contender`` writes to ``url`` for ``seconds``."""

    contender: str
    url: str
    synchronous: str
    seconds: float
    name: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one writer process reports (``error`` set if it failed)."""

    name: str
    ops: int = 0
    elapsed: float = 0.0
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    session: str | None = None
    cpu: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class Side:
    """One contender at one writer count, over every round: each round's total rate (the sum
    of its processes' rates) and the machine's busy share, every write's latency and the
    writers' own CPU time, and what was written."""

    rates: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    sent: int = 0
    sessions: list[str] = field(default_factory=list)

    def add(self, outcomes: Sequence[Outcome], busy: float) -> None:
        self.rates.append(sum(o.ops / o.elapsed for o in outcomes))
        self.busy.append(busy)
        self.cpu += sum(o.cpu for o in outcomes)
        for o in outcomes:
            self.latencies += o.latencies
            self.sent += o.sent
            if o.session is not None:
                self.sessions.append(o.session)

    @property
    def rate(self) -> float:
        """Writes per second of all processes together, the mean over rounds."""
        return sum(self.rates) / len(self.rates)

    def latency_ms(self, share: float) -> float:
        return percentile(self.latencies, share) * 1000.0

    @property
    def machine_busy(self) -> float:
        """The share of all cores busy while the writers wrote (any program), mean of rounds."""
        return sum(self.busy) / len(self.busy)

    def figures(self) -> dict[str, Any]:
        return {
            "ops_per_s": round(self.rate, 1),
            "rounds_ops_per_s": [round(rate, 1) for rate in self.rates],
            "writes": len(self.latencies),
            "p50_ms": round(self.latency_ms(0.5), 3),
            "p99_ms": round(self.latency_ms(0.99), 3),
            "writer_cpu_ms_per_write": round(self.cpu / len(self.latencies) * 1000.0, 3),
            "machine_cpu_busy": round(self.machine_busy, 3),
        }


def ledger_writer(job: Job, settings: Settings) -> tuple[Callable[[], object], Any, str]:
    """``append_message`` to a session of this process's own, on its own ``Ledger``."""
    ledger = Ledger.open(job.url, writer=f"bench:scale:{job.name}", settings=settings)
    session = ledger.open_session(f"agent:main:bench:dm:{job.name}", source="bench")
    turn = iter(range(1 << 62))

    def write() -> object:
        return ledger.append_message(session, ROLES[next(turn) % 2], CONTENT)

    return write, ledger.close, session


def psycopg_writer(job: Job) -> tuple[Callable[[], object], Any, None]:
    """One ``INSERT`` and ``COMMIT`` per write on a bare connection."""
    conn = psycopg_connect(job.url)
    conn.autocommit = False
    sequence = iter(range(1, 1 << 62))
    stream = f"scale-{job.name}"

    def write() -> object:
        conn.execute(
            PSYCOPG_INSERT, event_row(stream, next(sequence), PAYLOAD, job.name), prepare=True
        )
        conn.commit()
        return None

    return write, conn.close, None


def core_writer(job: Job, settings: Settings) -> tuple[Callable[[], object], Any, None]:
    """One Core ``INSERT`` per ``engine.begin()`` on an engine with the ledger's settings."""
    engine = create_engine(job.url, settings)
    commit = core_committer(engine, raw_table(sa.MetaData(), RAW_TABLE))
    sequence = iter(range(1, 1 << 62))
    stream = f"scale-{job.name}"

    def write() -> object:
        commit(event_row(stream, next(sequence), PAYLOAD, job.name))
        return None

    return write, engine.dispose, None


def writer_process(job: Job, barrier: Any, results: Any) -> None:
    """The body of one writer process: set up, warm up, wait for all, write for ``seconds``."""
    settings = Settings.from_env({"LEDGER_SQLITE_SYNCHRONOUS": job.synchronous})
    try:
        if job.contender == "ledger":
            write, close, session = ledger_writer(job, settings)
        elif job.contender == "psycopg":
            write, close, session = psycopg_writer(job)
        else:
            write, close, session = core_writer(job, settings)
    except BaseException as exc:
        barrier.abort()
        results.put(Outcome(job.name, error=f"setup: {exc!r}"))
        raise
    try:
        for _ in range(WARMUP):
            write()
        barrier.wait(SETUP_TIMEOUT)
        latencies: list[float] = []
        cpu = time.process_time()
        start = now = time.perf_counter()
        deadline = start + job.seconds
        while now < deadline:
            began = time.perf_counter()
            write()
            now = time.perf_counter()
            latencies.append(now - began)
        cpu = time.process_time() - cpu
        ops = len(latencies)
        results.put(Outcome(job.name, ops, now - start, WARMUP + ops, latencies, session, cpu))
    except BaseException as exc:
        barrier.abort()
        results.put(Outcome(job.name, error=repr(exc)))
        raise
    finally:
        close()


def run_point(
    contender: str, url: str, synchronous: str, seconds: float, writers: int, tag: str
) -> tuple[list[Outcome], float]:
    """``writers`` processes of ``contender`` started together: what each of them reports, and
    the share of the machine's CPU time that was busy from their start until the first ended."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers + 1)
    results = context.Queue()
    jobs = [Job(contender, url, synchronous, seconds, f"{tag}-{i}") for i in range(writers)]
    processes = [
        context.Process(target=writer_process, args=(job, barrier, results)) for job in jobs
    ]
    for process in processes:
        process.start()
    try:
        with contextlib.suppress(threading.BrokenBarrierError):  # a process failed: see why
            barrier.wait(SETUP_TIMEOUT)
        before = cpu_jiffies()
        outcomes = [results.get(timeout=SETUP_TIMEOUT + seconds)]
        after = cpu_jiffies()
        outcomes += [results.get(timeout=SETUP_TIMEOUT + seconds) for _ in processes[1:]]
    finally:
        for process in processes:
            process.join(timeout=SETUP_TIMEOUT)
    errors = [f"{o.name}: {o.error}" for o in outcomes if o.error]
    if errors:
        raise RuntimeError(f"{contender} x{writers}: " + "; ".join(errors))
    return outcomes, (after[0] - before[0]) / max(1, after[1] - before[1])
