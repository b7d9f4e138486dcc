"""What the contenders of ``benchmarks/gateway.py`` do: messages through the gateway API, and
the raw commits they are measured against.

``sync_runner`` calls :meth:`Ledger.append_message` once per message, rotating over
``SYNC_SESSIONS`` open sessions; ``async_runner`` runs N asyncio tasks on one
``AsyncLedger``, each on its own session; ``core_runner`` commits one event-shaped row per
``engine.begin()`` from as many threads. Each returns the seconds of ``n`` messages and each
message's latency. ``verify_counts`` checks afterwards that all their work landed.
``check_samples`` times the per-turn ``AgentCache.check`` against the bare head read.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import msgspec
import sqlalchemy as sa
from _harness.databases import CONTENT, core_committer, event_row
from _harness.timing import Runner, Timing, rotation, split, timed

from ledger import AsyncLedger, Ledger, MessageAppended

__all__ = [
    "MODEL",
    "SYNC_SESSIONS",
    "WRITER",
    "async_runner",
    "check_samples",
    "core_runner",
    "sync_runner",
    "verify_counts",
]

SYNC_SESSIONS = 10
WRITER = "benchmark:gateway"
MODEL = "claude"
ROLES = ("user", "assistant")
#: What the baseline stores as ``data``: the encoding of a typical message, made once.
PAYLOAD = msgspec.json.encode(
    MessageAppended(session_id="s", message_id="m" * 32, role="assistant", content=CONTENT)
)


def sync_runner(ledger: Ledger, sessions: Sequence[str]) -> Runner:
    """``Ledger.append_message``, one message per call, rotating over ``SYNC_SESSIONS``."""
    turn = itertools.count()

    def run(n: int) -> Timing:
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

    def run(n: int) -> Timing:
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
    commit = core_committer(engine, table)
    sequences = itertools.count(1)
    lock = threading.Lock()

    def commit_one() -> float:
        with lock:
            sequence = next(sequences)
        row = event_row(f"core{threads}-{sequence % SYNC_SESSIONS}", sequence, PAYLOAD, WRITER)
        began = time.perf_counter()
        commit(row)
        return time.perf_counter() - began

    def loop(share: int, latencies: list[float]) -> None:
        for _ in range(share):
            latencies.append(commit_one())

    def run(n: int) -> Timing:
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


def verify_counts(
    backend: str,
    ledger: Ledger,
    sessions: Sequence[str],
    messages: int,
    raw: sa.Engine,
    table: sa.Table,
    rows: int,
) -> None:
    """All ``messages`` sent are in the views of ``sessions``, all ``rows`` baseline commits in
    ``table``: every runner did all the work it was timed for."""
    stored = sum(head.message_count for sid in sessions if (head := ledger.head(sid)))
    if stored != messages:
        raise RuntimeError(f"{backend}: {stored} messages stored, {messages} sent")
    with raw.connect() as conn:
        found = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    if found != rows:
        raise RuntimeError(f"{backend}: {found} baseline rows, {rows} expected")


def check_samples(
    ledger: Ledger, session_id: str, head_read: Callable[[str], object], calls: int
) -> tuple[list[float], list[float], int]:
    """``calls`` times ``AgentCache.check`` on a hit and the bare-driver ``head_read``, in
    alternating order, after a warm-up: the µs of each side's calls and the hits among them."""
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
    for index in range(calls):
        for side in rotation(index, 2):
            if side == 0:
                took, decision = timed(lambda: cache.check(key, session_id, MODEL))
                checks.append(took)
                hits += decision.reason == "hit"
            else:
                baseline.append(timed(lambda: head_read(session_id))[0])
    return checks, baseline, hits
