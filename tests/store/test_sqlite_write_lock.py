"""SQLite writers wait for the write lock by polling it, not on the busy handler's back-off.

Another process's transaction holds the lock here (a plain ``sqlite3`` connection, as a second
gateway or an online rebuild would); the ledger's write waits for it, takes it once it is free,
and gives up as a ``DatabaseError`` after the configured busy timeout with nothing written. The
short latency this buys is measured by ``benchmarks/rebuild_online.py``, not asserted here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.config import Settings
from ledger.errors import DatabaseError
from ledger.store import migration
from ledger.store._sqlite_lock import begin_immediate
from ledger.store.database import create_engine

#: How long a test waits for another thread before it calls it stuck (failure detection only).
PATIENCE_S = 60.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A migrated SQLite ledger file."""
    file = tmp_path / "ledger.db"
    engine = create_engine(f"sqlite:///{file}")
    try:
        migration.upgrade(engine)
    finally:
        engine.dispose()
    return file


@contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock until the block ends."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
        if other.in_transaction:
            other.rollback()
    finally:
        other.close()


def _ledger(path: Path, busy_timeout_ms: int) -> Ledger:
    settings = dataclasses.replace(Settings.from_env({}), busy_timeout_ms=busy_timeout_ms)
    return Ledger.open(f"sqlite:///{path}", writer="gateway-1", settings=settings)


def test_a_write_takes_the_lock_once_another_connection_releases_it(path: Path) -> None:
    with _ledger(path, busy_timeout_ms=60_000) as ledger:
        sid = ledger.open_session("cli:a")
        done = threading.Event()
        with write_lock_held(path) as other:
            worker = threading.Thread(
                target=lambda: (ledger.append_message(sid, "user", "after"), done.set()),
                daemon=True,
            )
            worker.start()
            assert not done.wait(0.2), "the append went through while the lock was held"
            other.rollback()
            worker.join(PATIENCE_S)
        assert done.is_set()
        assert [m.content for m in ledger.transcript(sid)] == ["after"]


def test_a_write_gives_up_after_the_busy_timeout_and_writes_nothing(path: Path) -> None:
    with _ledger(path, busy_timeout_ms=100) as ledger:
        sid = ledger.open_session("cli:a")
        before = ledger.store.last_position()
        with write_lock_held(path), pytest.raises(DatabaseError, match="locked"):
            ledger.append_message(sid, "user", "never")
        assert ledger.store.last_position() == before
        assert ledger.transcript(sid) == []


def test_a_general_path_write_gives_up_after_the_busy_timeout(path: Path) -> None:
    with _ledger(path, busy_timeout_ms=100) as ledger:
        with write_lock_held(path), pytest.raises(DatabaseError, match="locked"):
            ledger.open_session("cli:a")
        assert ledger.store.last_position() == 0


def test_a_contended_begin_leaves_the_connection_busy_timeout_as_configured(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    try:
        with write_lock_held(path), pytest.raises(sqlite3.OperationalError, match="locked"):
            begin_immediate(db, 50)
        assert db.execute("PRAGMA busy_timeout").fetchone() == (50,)
        begin_immediate(db, 50)
        assert db.in_transaction
        db.rollback()
    finally:
        db.close()
