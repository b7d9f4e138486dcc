"""The runner of asynchronous projections: catch up from the checkpoint, then tail the log.

Each batch is one transaction: lock the checkpoint, read the next events after it, apply them to
the view, move the checkpoint, commit. A crash anywhere before the commit rolls back the view
update together with the checkpoint, so a restart re-applies exactly the events that were lost;
a second runner on the same database waits on the checkpoint lock and then starts after the
first one's batch, so no event is applied twice. On SQLite the batch holds the database write
lock, so batches are kept short (``batch_size`` events) to let appends through between them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from ledger.errors import InvalidArgumentError, LedgerError, ProjectionError
from ledger.records import RecordedEvent
from ledger.store import EventStore, log_end
from projections.base import Projection
from projections.checkpoint import lock_checkpoint, read_checkpoints, save_checkpoint

__all__ = ["ProjectionRunner", "catch_up"]

#: Called after a batch is applied and before its checkpoint moves (failure injection in tests).
BatchHook = Callable[[Projection, Sequence[RecordedEvent]], None]


class ProjectionRunner:
    """Keeps asynchronous projections up to date with the log."""

    def __init__(
        self,
        store: EventStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
        before_checkpoint: BatchHook | None = None,
    ) -> None:
        if any(p.inline for p in projections):
            names = [p.name for p in projections if p.inline]
            raise InvalidArgumentError(
                "projections", names, "asynchronous projections (inline ones run in the store)"
            )
        self.store = store
        self.projections = list(projections)
        self.batch_size = batch_size
        self.before_checkpoint = before_checkpoint

    def step(self, projection: Projection) -> int:
        """Apply one batch to ``projection``; returns how many events it applied."""
        with self.store.transaction() as conn:
            after = lock_checkpoint(conn, projection.name)
            batch = self.store.read_batch(conn, after, self.batch_size)
            if not batch:
                return 0
            try:
                projection.apply(conn, batch)
            except LedgerError:
                raise
            except Exception as exc:
                raise ProjectionError(projection.name, batch[0].position, repr(exc)) from exc
            if self.before_checkpoint is not None:
                self.before_checkpoint(projection, batch)
            save_checkpoint(conn, projection.name, batch[-1].position)
            return len(batch)

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Apply every event up to the current end of the log; returns how many were applied."""
        total = 0
        for projection in self.projections:
            while applied := self.step(projection):
                total += applied
                if progress is not None:
                    progress(applied)
        return total

    def reached(self, position: int) -> bool:
        """Whether every projection's checkpoint is at ``position`` or beyond."""
        with self.store.engine.connect() as conn:
            checkpoints = read_checkpoints(conn)
        return all(checkpoints.get(p.name, 0) >= position for p in self.projections)

    def run(self, stop: threading.Event, *, poll_interval: float = 0.5) -> None:
        """Catch up, then tail the log until ``stop`` is set (polling when idle)."""
        while not stop.is_set():
            if self.catch_up() == 0:
                stop.wait(poll_interval)


def catch_up(store: EventStore, *, wait: float = 2.0) -> int:
    """Bring every installed asynchronous projection up to the end of the log.

    Registered as the ``session_ledger.runners`` entry point, so ``Ledger.search`` can read its
    own writes without ``ledger`` importing this package. Read-your-writes: everything committed
    when the call starts is applied before it returns. On PostgreSQL a reader stops below the
    oldest transaction still writing anywhere in the cluster (see docs/log.md), so while some
    other transaction is open this waits for it, for up to ``wait`` seconds, polling; after
    that it returns what it could apply (the rest follows on the next call).
    """
    from projections.registry import all_projections

    runner = ProjectionRunner(store, [p for p in all_projections() if not p.inline])
    with store.engine.connect() as conn:
        target = log_end(conn, final_only=False)
    deadline = time.monotonic() + wait
    applied = runner.catch_up()
    while not runner.reached(target) and time.monotonic() < deadline:
        time.sleep(0.01)
        applied += runner.catch_up()
    return applied
