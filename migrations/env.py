"""Alembic environment for the ledger.

A connection handed in through ``config.attributes["connection"]`` is used as it is (the cookbook
recipe: the ledger and the test suite migrate on their own connection); otherwise one is made from
``-x url=...`` or ``LEDGER_DATABASE_URL``. ``render_as_batch`` lets SQLite alter tables.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from ledger.schema import metadata
from ledger.store.migration import include_object

config = context.config


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on the injected connection, or on one made from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "LEDGER_DATABASE_URL"
    )
    if not url:
        raise SystemExit("set LEDGER_DATABASE_URL or pass -x url=... to alembic")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported; run against a database")
run_migrations_online()
