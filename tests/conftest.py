"""Shared fixtures: one parametrized ``database_url`` runs every contract test on both backends.

``sqlite`` is a file under ``tmp_path`` (``:memory:`` is private to one connection, and the
store uses a pool). ``postgresql`` is a fresh schema per test, selected through ``search_path``
in the URL and dropped afterwards, in the database named by ``LEDGER_TEST_POSTGRES_URL`` or,
without it, on a throwaway server the session starts itself (``tests/_postgres_server.py``).
Without that variable and without PostgreSQL's server binaries the PostgreSQL cases skip with a
reason naming what to install; with ``CI=true`` they fail instead, so a CI run can never pass by
silently skipping half the suite.

Shared fixtures: ``store`` (with the installed inline views), ``log_store`` (the log alone),
``ledger`` (the gateway API); helpers that count what the log holds are in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger import EventStore, Ledger
from ledger.config import Settings
from tests.helpers import assert_no_connection_leaked

POSTGRES_ENV = "LEDGER_TEST_POSTGRES_URL"


def _postgres_base_url(stack: ExitStack) -> str:
    """``LEDGER_TEST_POSTGRES_URL``, else a throwaway server's URL, closed with ``stack``.

    The throwaway server (``tests/_postgres_server.py``) needs PostgreSQL's server binaries;
    without them the PostgreSQL cases skip, or fail under ``CI=true``.
    """
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    from tests._postgres_server import ServerUnavailable, throwaway_server

    try:
        return stack.enter_context(throwaway_server())
    except ServerUnavailable as exc:
        reason = (
            f"{exc}: install them (apt-get install postgresql) or set {POSTGRES_ENV} "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL is not available: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An engine on the PostgreSQL test database, for creating and dropping test schemas.

    The database is ``LEDGER_TEST_POSTGRES_URL``'s or, without it, a throwaway server's that
    this session started and stops when it ends.
    """
    from ledger.store.database import normalize_url

    with ExitStack() as stack:
        engine = sa.create_engine(
            normalize_url(_postgres_base_url(stack)), isolation_level="AUTOCOMMIT"
        )
        stack.callback(engine.dispose)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sa.exc.OperationalError as exc:
            what = "the throwaway PostgreSQL server"
            if os.environ.get(POSTGRES_ENV):
                what = f"{POSTGRES_ENV} is set but PostgreSQL"
            pytest.fail(f"{what} is unreachable: {exc}")
        yield engine


def _postgres_schema_url(admin: sa.Engine, schema: str) -> str:
    url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield _postgres_schema_url(admin, schema)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """``database_url`` after ``ledger db upgrade`` (both backends at the Alembic head)."""
    from ledger.store import migration
    from ledger.store.database import create_engine

    engine = create_engine(database_url)
    try:
        migration.upgrade(engine)
    finally:
        engine.dispose()
    return database_url


@pytest.fixture
def settings() -> Settings:
    """Default settings, isolated from the developer's own ``LEDGER_`` variables."""
    return Settings.from_env({})


@pytest.fixture
def store(migrated_url: str, settings: Settings) -> Iterator[EventStore]:
    """An open :class:`EventStore` on a migrated database of each backend."""
    with EventStore.open(migrated_url, writer="test-writer", settings=settings) as opened:
        yield opened
        assert_no_connection_leaked(opened)


@pytest.fixture
def log_store(migrated_url: str, settings: Settings) -> Iterator[EventStore]:
    """The log alone: an :class:`EventStore` with NO inline projections, on each backend.

    The store contract suite runs on it, as eventsourcing's recorder test case does: what the
    log promises must hold whatever views are (or are not) installed.
    """
    with EventStore.open(
        migrated_url, writer="test-writer", settings=settings, inline_projections=()
    ) as opened:
        yield opened
        assert_no_connection_leaked(opened)


@pytest.fixture
def ledger(migrated_url: str, settings: Settings) -> Iterator[Ledger]:
    """A :class:`Ledger` with writer ``gateway-1`` on a migrated database of each backend."""
    with Ledger.open(migrated_url, writer="gateway-1", settings=settings) as opened:
        yield opened
        assert_no_connection_leaked(opened)
