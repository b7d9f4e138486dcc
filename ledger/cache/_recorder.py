"""What the live cache really decided: recorded off the turn's path, counted in memory.

:class:`DecisionRecorder` appends a :class:`~ledger.events.CacheDecided` for every decision that
is not a plain ``hit`` (a miss or rebuild once its build ends, with the build's duration; a
switch, own write or unverified reuse at once; an eviction or TTL expiry of an entry) to the
key's ``decisions-*`` stream, so ``ledger explain`` / ``replay`` can show them beside the
simulated guards. Hits are never recorded (they are nearly every turn), so recording costs a
hit-heavy gateway nothing but a counter.

Appends run on one background thread, in batches (one transaction for whatever queued up), so
a turn never waits for the database to record its decision and an unreachable database
never fails a turn: what could not be written stays queued (bounded: the oldest go first, and
are counted as dropped) and is retried with the next batch. :meth:`flush` waits until the
queue is written (tests, shutdown); at interpreter exit the queue gets a short last flush.

:class:`CacheStats` is the in-memory side: decisions by reason, builds and their total time,
hit rate, evictions, expirations, recording failures (``AgentCache.stats()``).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import weakref
from collections import Counter, deque

import msgspec

from ledger.errors import LedgerError
from ledger.events import CacheDecided
from ledger.records import StreamAppend
from ledger.store import EventStore
from ledger.streams import decisions_stream

__all__ = ["CacheStats", "DecisionRecorder"]

log = logging.getLogger("ledger.cache")

#: Decisions kept while the database cannot take them; beyond it the oldest are dropped.
MAX_QUEUED = 10_000
#: How long the exit hook waits for the last decisions to be written.
EXIT_FLUSH_SECONDS = 2.0


class CacheStats(msgspec.Struct, kw_only=True):
    """An agent cache's counters since it was created."""

    #: Every decision by reason (``hit`` included), and ``evicted`` / ``expired`` entries.
    decisions: dict[str, int] = msgspec.field(default_factory=dict)
    #: Agents built and stored (misses and rebuilds that ended in ``store``).
    builds: int = 0
    #: Total seconds from a miss/rebuild decision to its ``store``.
    build_seconds: float = 0.0
    #: Builds abandoned (the build failed).
    abandoned: int = 0
    #: Reuses (hit, switch, own_write, unverified) over all turn decisions; None before any.
    hit_rate: float | None = None
    #: Entries cached now.
    entries: int = 0
    #: Decisions recorded in the log, waiting to be, and given up (queue full).
    recorded: int = 0
    queued: int = 0
    dropped: int = 0
    #: Batches the database refused (retried later).
    record_failures: int = 0


_recorders: weakref.WeakSet[DecisionRecorder] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for recorder in list(_recorders):
        recorder.flush(EXIT_FLUSH_SECONDS)


class DecisionRecorder:
    """Appends recorded decisions to ``decisions-*`` streams on a background thread."""

    def __init__(self, store: EventStore, writer: str) -> None:
        self.store = store
        self.writer = writer
        self._queue: deque[CacheDecided] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        self.recorded = 0
        self.dropped = 0
        self.failures = 0
        _recorders.add(self)
        store.on_close(self._on_store_close)

    def _on_store_close(self) -> None:
        self.flush(EXIT_FLUSH_SECONDS)

    def record(self, decision: CacheDecided) -> None:
        """Queue ``decision`` for the log (never blocks on the database, never raises)."""
        with self._cond:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(decision)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ledger-decisions", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    @property
    def queued(self) -> int:
        """Decisions not written yet."""
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued decision is written; False if that took over ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            written = self._write(batch)
            with self._cond:
                self._busy = False
                if not written:
                    # Keep them for the next round, oldest first, within the bound.
                    self._queue.extendleft(reversed(batch))
                    while len(self._queue) > MAX_QUEUED:
                        self._queue.popleft()
                        self.dropped += 1
                self._cond.notify_all()
            if not written:
                # The database is down: wait before trying again (or until flushed by a new
                # decision), rather than spinning.
                with self._cond:
                    self._cond.wait(1.0)

    def _write(self, batch: list[CacheDecided]) -> bool:
        by_stream: dict[str, list[CacheDecided]] = {}
        for decision in batch:
            by_stream.setdefault(decisions_stream(decision.session_key), []).append(decision)
        parts = [
            StreamAppend(stream=stream, events=events, writer=self.writer)
            for stream, events in by_stream.items()
        ]
        try:
            self.store.append_streams(parts)
        except LedgerError as exc:
            self.failures += 1
            log.warning("could not record %d cache decisions: %s", len(batch), exc)
            return False
        except Exception:  # never let the thread die: a bug here must not stop recording
            self.failures += 1
            log.exception("recording cache decisions failed")
            return False
        self.recorded += sum(len(p.events) for p in parts)
        return True


def counted(decisions: Counter[str]) -> dict[str, int]:
    """``decisions`` as a plain dict, most frequent first."""
    return dict(decisions.most_common())


def now() -> dt.datetime:
    """The decision time recorded with a decision."""
    return dt.datetime.now(dt.UTC)
