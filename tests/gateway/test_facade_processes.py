"""Two OS processes using ``Ledger`` on one database at once, on SQLite and PostgreSQL.

Children are started with the ``spawn`` context (no state inherited from the test process), and
every wait has a timeout, so a deadlock fails the test instead of hanging the run.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from typing import Any

import pytest

from ledger import Ledger
from ledger.config import Settings
from ledger.streams import session_stream

CTX = multiprocessing.get_context("spawn")
#: Longest any single wait (start barrier, result, join) may take before the test fails.
TIMEOUT = 60.0
WORKERS = 2
ROUNDS = 40
SHARED = "shared"

Ack = tuple[str, int, str]
"""What a worker was told about one message: (session_id, sequence, content)."""


def _own(worker: int) -> str:
    return f"own-{worker}"


def _worker(url: str, worker: int, start: Any, results: Any) -> None:
    """Append alternately to the shared session and this worker's own one; report the acks."""
    try:
        acks: list[Ack] = []
        with Ledger.open(url, writer=f"worker-{worker}", settings=Settings.from_env({})) as ledger:
            start.wait(TIMEOUT)
            for i in range(ROUNDS):
                for session_id in (SHARED, _own(worker)):
                    content = f"worker {worker} round {i} to {session_id}"
                    result = ledger.append_message(session_id, "user", content)
                    acks.append((session_id, result.sequence, content))
        results.put((worker, "ok", acks))
    except BaseException:
        results.put((worker, "error", traceback.format_exc()))


def _run_workers(url: str) -> list[Ack]:
    """Start the workers together, gather every ack, and make sure each child exited."""
    start = CTX.Barrier(WORKERS)
    results: Any = CTX.Queue()
    procs = [
        CTX.Process(target=_worker, args=(url, worker, start, results), daemon=True)
        for worker in range(WORKERS)
    ]
    try:
        for proc in procs:
            proc.start()
        acks: list[Ack] = []
        errors: list[str] = []
        deadline = time.monotonic() + TIMEOUT
        for _ in procs:
            try:
                worker, status, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"workers did not report within {TIMEOUT}s")
            if status == "ok":
                acks.extend(value)
            else:
                errors.append(f"worker {worker} failed:\n{value}")
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        assert not [p.pid for p in procs if p.is_alive()], "a worker did not exit in time"
        assert not errors, "\n".join(errors)
        assert [p.exitcode for p in procs] == [0] * WORKERS
        return acks
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)


@pytest.mark.slow
def test_two_processes_appending_lose_and_duplicate_no_message(migrated_url: str) -> None:
    """Two processes writing to a shared and their own sessions keep every message exactly once."""
    with Ledger.open(migrated_url, writer="setup", settings=Settings.from_env({})) as ledger:
        for session_id in (SHARED, *(_own(w) for w in range(WORKERS))):
            ledger.open_session(f"key-of-{session_id}", session_id=session_id)

    acks = _run_workers(migrated_url)

    expected_counts = {SHARED: WORKERS * ROUNDS} | {_own(w): ROUNDS for w in range(WORKERS)}
    assert len(acks) == sum(expected_counts.values())
    with Ledger.open(migrated_url, writer="checker", settings=Settings.from_env({})) as ledger:
        for session_id, count in expected_counts.items():
            # The stream holds SessionOpened at 1 and then every message, numbered without gaps.
            stream = list(ledger.read_stream(session_stream(session_id)))
            assert [r.sequence for r in stream] == list(range(1, count + 2)), session_id
            transcript = ledger.transcript(session_id)
            stored = sorted((m.sequence, m.content) for m in transcript)
            acked = sorted((seq, text) for sid, seq, text in acks if sid == session_id)
            assert stored == acked, f"{session_id}: stored messages differ from the acked ones"
            head = ledger.head(session_id)
            assert head is not None
            assert (head.sequence, head.message_count) == (count + 1, count), session_id
        shared_writers = {m.writer for m in ledger.transcript(SHARED)}
        assert shared_writers == {f"worker-{w}" for w in range(WORKERS)}
