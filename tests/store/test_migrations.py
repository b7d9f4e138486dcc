"""Alembic migrations: round trips, the head revision, no drift from ``ledger.schema``, one head.

Every test but the two ``EventStore.open`` ones runs on both backends through ``database_url``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ledger import EventStore, SchemaNotCurrentError
from ledger.config import Settings
from ledger.schema import metadata
from ledger.store import migration
from ledger.store.database import create_engine

LEDGER_TABLES = set(metadata.tables)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on the empty database of each backend."""
    created = create_engine(database_url, Settings.from_env({}))
    yield created
    created.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_upgrade_downgrade_base_upgrade_creates_drops_and_recreates_the_tables(
    engine: sa.Engine,
) -> None:
    """Upgrading creates every table, downgrading to base drops them, upgrading again restores."""
    migration.upgrade(engine)
    assert table_names(engine) >= LEDGER_TABLES
    migration.downgrade(engine, "base")
    assert table_names(engine) & LEDGER_TABLES == set()
    assert migration.current_revision(engine) is None
    migration.upgrade(engine)
    assert table_names(engine) >= LEDGER_TABLES


def test_upgrade_leaves_the_database_at_the_head_revision(engine: sa.Engine) -> None:
    """After ``upgrade`` the database's Alembic revision is ``head_revision()``."""
    assert migration.current_revision(engine) is None
    migration.upgrade(engine)
    assert migration.current_revision(engine) == migration.head_revision()


def test_migrated_database_has_no_drift_from_the_schema_metadata(engine: sa.Engine) -> None:
    """Autogenerate finds nothing to change between the migrated database and ``metadata``."""
    migration.upgrade(engine)
    with engine.connect() as conn:
        # The same options as migrations/env.py, so this is what `alembic check` compares.
        opts = {"compare_type": True, "include_object": migration.include_object}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_script_directory_has_exactly_one_head() -> None:
    """The migration scripts form a single line of history with one head."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [migration.head_revision()]


def test_sqlite_open_creates_and_migrates_a_private_file(tmp_path: Path) -> None:
    """Opening a new SQLite path creates the folder 0700 and the file 0600 at the head revision."""
    path = tmp_path / "missing" / "ledger.db"
    with EventStore.open(f"sqlite:///{path}", settings=Settings.from_env({})) as store:
        assert migration.current_revision(store.engine) == migration.head_revision()
        assert table_names(store.engine) >= LEDGER_TABLES
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_postgresql_open_of_an_empty_schema_raises_schema_not_current(
    database_url: str, engine: sa.Engine
) -> None:
    """PostgreSQL is never migrated on open: an empty schema asks for ``ledger db upgrade``."""
    head = migration.head_revision()
    with pytest.raises(
        SchemaNotCurrentError,
        match=rf"^Database schema is at revision <empty>, this ledger needs {head}: "
        r"run `ledger db upgrade`$",
    ) as info:
        EventStore.open(database_url, settings=Settings.from_env({}))
    assert (info.value.current, info.value.head) == (None, head)
    assert table_names(engine) == set()


def test_opening_an_existing_sqlite_file_never_opens_it_outside_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing any descriptor drops the process's POSIX locks on a file, corrupting SQLite.

    So once the database exists, opening another store must not open (and close) the file itself.
    """
    path = tmp_path / "ledger.db"
    with EventStore.open(f"sqlite:///{path}"):
        opened: list[str] = []
        real_open = os.open

        def recording_open(name: Any, *args: Any, **kwargs: Any) -> int:
            opened.append(str(name))
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", recording_open)
        with EventStore.open(f"sqlite:///{path}"):
            pass
        monkeypatch.undo()
    assert str(path) not in opened


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    """An unknown revision (written by newer code) raises SchemaNotCurrentError, not alembic's."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    EventStore.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(SchemaNotCurrentError, match="9999"):
        EventStore.open(url)


def test_an_unreachable_postgresql_server_is_a_database_error() -> None:
    """A refused connection comes out as the ledger's DatabaseError."""
    from ledger import DatabaseError

    with pytest.raises(DatabaseError):
        EventStore.open("postgresql://postgres@127.0.0.1:1/none")


def test_a_database_with_sessions_upgrades_through_0007_and_verifies_clean(
    migrated_url: str, settings: Settings
) -> None:
    """Views written before 0007 are filled from what they knew and equal a rebuild after."""
    from ledger import Ledger
    from projections.rebuild import verify
    from projections.registry import all_projections

    with Ledger.open(migrated_url, settings=settings) as ledger:
        closed = ledger.open_session("k:1", title="old")
        ledger.append_message(closed, "user", "hello")
        ledger.close_session(closed, reason="user_exit")
        live = ledger.open_session("k:2")
        ledger.append_message(live, "assistant", "hi")
        engine = ledger.store.engine
        migration.downgrade(engine, "0006")
        assert migration.current_revision(engine) == "0006"
        migration.upgrade(engine)
        head = ledger.head(closed)
        assert head is not None
        assert (head.end_reason, head.ended_at) == ("user_exit", head.updated_at)
        assert head.started_at == head.created_at
        assert head.last_activity_at == head.updated_at
        assert ledger.transcript(live)[0].created_at is not None
        for projection in all_projections():
            if projection.inline:
                assert verify(ledger.store, projection) == [], projection.name
        ledger.append_message(live, "user", "after the upgrade")
        assert [m.content for m in ledger.transcript(live)] == ["hi", "after the upgrade"]
