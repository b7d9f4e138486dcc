"""A connection the server ends never lets a raw SQLAlchemy error out of the ledger.

Each public read, after PostgreSQL terminated every connection of the ledger's pool, either
raises :class:`DatabaseError` (naming PostgreSQL) or succeeds on a fresh connection once
SQLAlchemy invalidated the pool; never ``PendingRollbackError``, ``ResourceClosedError`` or
another SQLAlchemy exception.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from ledger import DatabaseError, Ledger
from ledger.config import Settings

KEY = "agent:main:dropped"
SIG = "sig"


@pytest.fixture
def named(migrated_url: str, settings: Settings) -> Iterator[tuple[Ledger, str]]:
    """A ledger whose connections carry a unique ``application_name`` (so only they die)."""
    name = f"ledger-drop-{uuid.uuid4().hex[:12]}"
    url = sa.engine.make_url(migrated_url).update_query_dict({"application_name": name})
    with Ledger.open(url.render_as_string(hide_password=False), settings=settings) as ledger:
        yield ledger, name


def _terminate(admin: sa.Engine, name: str) -> int:
    """End every server connection named ``name``; how many there were."""
    with admin.connect() as conn:
        return len(
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            ).all()
        )


def _warm(ledger: Ledger, session_id: str) -> None:
    """Fill the pool: several pooled connections, every one to be cut."""
    ledger.head(session_id)
    ledger.transcript(session_id)
    list(ledger.read_all(limit=5))
    ledger.cache().check(KEY, session_id, SIG)


READS: dict[str, Callable[[Ledger, str], object]] = {
    "head": lambda ledger, sid: ledger.head(sid),
    "transcript": lambda ledger, sid: ledger.transcript(sid),
    "read_all": lambda ledger, sid: list(ledger.read_all()),
    "read_stream": lambda ledger, sid: list(ledger.read_stream(f"session-{sid}")),
    "sessions": lambda ledger, sid: ledger.sessions(),
    "active_session": lambda ledger, sid: ledger.active_session(KEY),
    "cache_check": lambda ledger, sid: ledger.cache().check(KEY, sid, SIG),
}


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("read", sorted(READS))
def test_a_read_after_the_server_ended_the_connections_raises_database_error_or_succeeds(
    named: tuple[Ledger, str], postgres_admin: sa.Engine, read: str
) -> None:
    """Every read, repeated until the pool is fresh: a DatabaseError or a result, nothing raw."""
    ledger, name = named
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hello")
    _warm(ledger, session_id)
    assert _terminate(postgres_admin, name) > 0
    backends: set[str | None] = set()
    for _ in range(4):  # one failure per dead pooled connection at most
        try:
            READS[read](ledger, session_id)
        except DatabaseError as exc:
            backends.add(exc.backend)
        except sa.exc.SQLAlchemyError as exc:  # pragma: no cover - the defect
            pytest.fail(f"raw {type(exc).__name__} left the ledger: {exc}")
    assert backends <= {"PostgreSQL"}
    assert ledger.head(session_id) is not None


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_ended_inside_an_open_read_leaves_as_database_error(
    named: tuple[Ledger, str], postgres_admin: sa.Engine
) -> None:
    """Iterating ``read_all`` while the server ends the connection: DatabaseError only."""
    ledger, name = named
    session_id = ledger.open_session(KEY)
    for n in range(5):
        ledger.append_message(session_id, "user", f"m{n}")
    events = ledger.read_all()
    next(events)
    _terminate(postgres_admin, name)
    try:
        list(events)
    except DatabaseError:
        pass
    except sa.exc.SQLAlchemyError as exc:  # pragma: no cover - the defect
        pytest.fail(f"raw {type(exc).__name__} left the ledger: {exc}")


RAW_ERRORS = {
    "pending_rollback": sa.exc.PendingRollbackError(
        "Can't reconnect until invalid transaction is rolled back"
    ),
    "resource_closed": sa.exc.ResourceClosedError("This result object is closed."),
}


@pytest.mark.parametrize("read", sorted(set(READS) - {"cache_check"}))
@pytest.mark.parametrize("raw", sorted(RAW_ERRORS))
def test_a_sqlalchemy_error_that_is_no_driver_error_leaves_as_database_error(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, read: str, raw: str
) -> None:
    """SQLAlchemy's own errors (never seen by the ``handle_error`` hook) leave as
    DatabaseError naming the backend and the SQLAlchemy class, on both backends."""
    session_id = ledger.open_session(KEY)

    def broken(*_: object, **__: object) -> None:
        raise RAW_ERRORS[raw]

    monkeypatch.setattr(sa.engine.Connection, "execute", broken)
    with pytest.raises(DatabaseError) as raised:
        READS[read](ledger, session_id)
    assert raised.value.backend in ("SQLite", "PostgreSQL")
    assert type(RAW_ERRORS[raw]).__name__ in str(raised.value)


def test_a_sqlalchemy_error_during_a_cache_check_reuses_unverified(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent cache's per-turn read fails safe on a raw SQLAlchemy error too."""
    session_id = ledger.open_session(KEY)
    cache = ledger.cache()
    first = cache.check(KEY, session_id, SIG)
    cache.store(KEY, session_id, SIG, "A1", ticket=first.ticket)

    def broken(*_: object, **__: object) -> None:
        raise RAW_ERRORS["pending_rollback"]

    monkeypatch.setattr(sa.engine.Connection, "execute", broken)
    decision = cache.check(KEY, session_id, SIG)
    assert (decision.action, decision.reason) == ("reuse", "unverified")
