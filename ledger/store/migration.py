"""Programmatic Alembic: upgrade, downgrade and inspect the schema revision of a database.

The Alembic ``Config`` is built in code, pointing at the installed ``migrations`` package, so
``ledger db upgrade`` works from any directory without ``alembic.ini``. Migrations run on a
connection we pass in through ``config.attributes["connection"]`` (the Alembic cookbook recipe).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from ledger.errors import InvalidArgumentError, SchemaNotCurrentError
from ledger.store._errors import database_error
from ledger.store.database import WRITE, is_sqlite

__all__ = [
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "include_object",
    "known_revisions",
    "upgrade",
]


#: Objects migration 0002 creates by hand because they are dialect-specific: SQLite's FTS5 table
#: (and the shadow tables FTS5 makes) and PostgreSQL's generated ``tsvector`` column and index.
_UNMANAGED_PREFIXES = ("search_fts",)
_UNMANAGED_NAMES = frozenset({"tsv", "ix_search_documents_tsv"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic filter: leave the hand-made search index out of autogenerate comparisons."""
    if name is None:
        return True
    return name not in _UNMANAGED_NAMES and not name.startswith(_UNMANAGED_PREFIXES)


@cache
def _script_location() -> str:
    return str(resources.files("migrations"))


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _script_location())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision this code knows (there is exactly one head)."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


@cache
def known_revisions() -> frozenset[str]:
    """Every revision in this code's migrations."""
    scripts = ScriptDirectory.from_config(_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, ``None`` for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _revision_named(revision: str) -> Iterator[None]:
    """Alembic's refusal of ``revision`` (unknown, or out of reach) as InvalidArgumentError."""
    try:
        yield
    except CommandError as exc:
        known = ", ".join(["head", "base", *sorted(known_revisions())])
        raise InvalidArgumentError("revision", revision, f"one of {known}") from exc


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` in one transaction."""
    with engine.connect() as conn:
        # BEGIN IMMEDIATE on SQLite: two processes opening a new file migrate one after the other,
        # and the second finds the head already there.
        conn.execution_options(**{WRITE: True})
        with conn.begin(), _revision_named(revision):
            command.upgrade(_config(conn), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` empties it)."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin(), _revision_named(revision):
            command.downgrade(_config(conn), revision)


def ensure_schema(engine: sa.Engine, *, migrate: bool = True) -> None:
    """Migrate SQLite to the head (unless ``migrate=False``); require PostgreSQL to be there.

    A database at a revision this code does not know (written by a newer version) is refused
    on both, rather than half-understood. Driver errors (server down, file unreadable) come out
    as :class:`DatabaseError`.
    """
    head = head_revision()
    try:
        current = current_revision(engine)
        if current == head:
            return
        if current is not None and current not in known_revisions():
            raise SchemaNotCurrentError(current, head)
        if is_sqlite(engine) and migrate:
            upgrade(engine)
            return
    except sa.exc.DBAPIError as exc:  # an engine made without the ledger's hook
        raise database_error(exc) from exc
    raise SchemaNotCurrentError(current, head)
