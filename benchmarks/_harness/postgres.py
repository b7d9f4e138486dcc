"""PostgreSQL for a benchmark run: a throw-away schema, the bare driver, the server settings.

Each run gets a schema of its own, made with the ledger's migrations and dropped at the end, so
runs never see each other's rows and a benchmark can be pointed at any scratch database. The
bare ``psycopg`` connection is the baseline driver; the settings recorded are those that decide
what a commit costs. Only the scripts with a PostgreSQL case import this (``psycopg`` alone
adds a few MiB of resident memory).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa

from ledger.config import Settings
from ledger.store import migration
from ledger.store.database import create_engine, normalize_url

from .output import log

__all__ = [
    "COMMIT_SETTINGS",
    "migrated_schema",
    "postgres_schema",
    "postgres_settings",
    "psycopg_connect",
]

#: The PostgreSQL settings that decide what a commit costs.
COMMIT_SETTINGS = ("server_version", "fsync", "synchronous_commit", "wal_sync_method")


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose ``search_path`` is a schema made for this run and dropped afterwards."""
    admin = sa.create_engine(normalize_url(base_url), isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    log(f"postgresql: schema {schema}")
    try:
        url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
        log(f"postgresql: schema {schema} dropped")


@contextmanager
def migrated_schema(base_url: str, settings: Settings) -> Iterator[str]:
    """:func:`postgres_schema`, with the ledger's tables made by ``migration.upgrade``."""
    with postgres_schema(base_url) as url:
        migrator = create_engine(url, settings)
        migration.upgrade(migrator)
        migrator.dispose()
        yield url


def psycopg_connect(url: str) -> psycopg.Connection[Any]:
    """A bare ``psycopg`` connection in autocommit mode to the database (and schema) of ``url``."""
    libpq_url = sa.make_url(url).set(drivername="postgresql")
    return psycopg.connect(libpq_url.render_as_string(hide_password=False), autocommit=True)


def postgres_settings(conn: psycopg.Connection[Any], *extra: str) -> dict[str, str]:
    """``SHOW`` of each of :data:`COMMIT_SETTINGS` and ``extra``."""
    names = (*COMMIT_SETTINGS, *extra)
    return {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]
