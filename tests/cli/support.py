"""Helpers shared by the CLI output tests."""

from __future__ import annotations

import time

from ledger import EventStore
from ledger.store import log_end


def settle(url: str, timeout: float = 10.0) -> None:
    """Wait until every committed event of ``url`` is final, so the commands that read the log
    (``tail``, ``replay``, ``explain``) print it: on PostgreSQL they read below the server's
    oldest open transaction, which another process's (another test run's) may hold back."""
    with EventStore.open(url) as store:
        with store.engine.connect() as conn:
            end = log_end(conn, final_only=False)
        deadline = time.monotonic() + timeout
        while store.last_position() < end and time.monotonic() < deadline:
            time.sleep(0.05)
