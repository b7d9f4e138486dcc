"""Helpers the benchmark scripts share: progress lines, the measured revision, peak memory,
a throw-away PostgreSQL schema per run, and the baseline table shaped like ``events``."""

from __future__ import annotations

import resource
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from ledger.store.database import normalize_url
from ledger.schema import UTCDateTime

__all__ = ["log", "peak_rss_mib", "postgres_schema", "raw_table", "shown_url", "source_revision"]


def log(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def source_revision() -> str:
    """The commit this run measured (``+dirty`` with uncommitted changes), or ``unknown``."""
    folder = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if changed else "")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def shown_url(url: str | None) -> str | None:
    """``url`` with any password masked."""
    return None if url is None else sa.make_url(url).render_as_string(hide_password=True)


def raw_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """A table shaped like ``ledger.schema.events``: same columns, types and indexes."""
    return sa.Table(
        name,
        metadata,
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("stream", sa.String(300), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("writer", sa.String(255), nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("schema_version", sa.SmallInteger, nullable=False),
        sa.UniqueConstraint("stream", "sequence", name=f"uq_{name}_stream_sequence"),
        sa.UniqueConstraint("event_id", name=f"uq_{name}_event_id"),
        sqlite_autoincrement=True,
    )
