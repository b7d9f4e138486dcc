"""The log: :class:`EventStore` and the only SQL on the log tables (``events``, ``streams``,
``archive_segments``).

Private modules, one concern each: ``_store`` (the append transaction), ``_prepare``
(validation and encoding before any lock), ``_sqlite`` and ``_postgres`` (each backend's write
path), ``_errors`` (driver errors to the ledger's, keyed by constraint name), ``_reader`` (reads
of streams and the whole log), ``_archive`` (compressed segments, read transparently) and
``_log`` (the queries other layers need on the log tables), ``_driver`` (rows bound for the
driver directly: SQLite's executemany, PostgreSQL's COPY), ``_sqlite_lock`` (polling for
SQLite's write lock), ``_sidecar`` (``flock`` files beside a SQLite database) and
``_oneshot`` (the single-message shortcut). ``database`` opens engines and ``migration`` runs
Alembic. Nothing here imports the cache, the gateway API, maintenance, replay, the CLI or
``projections``.
"""

from ledger.store._archive import SegmentInfo, StoredRow, archive_stream, restore_stream
from ledger.store._driver import DriverInsert, driver_copy, driver_insert, row_picker
from ledger.store._errors import translate_error
from ledger.store._log import (
    HeadDrift,
    drop_old_key_switches,
    event_ids,
    has_event,
    head_drift,
    kinds_between,
    log_end,
    old_key_switches,
    purge_stream,
    segment_size,
    session_stream_is_live,
)
from ledger.store._oneshot import OneShot
from ledger.store._reader import READ_BATCH, LogReader
from ledger.store._sidecar import sidecar_lock, sqlite_file
from ledger.store._store import EventStore, InlineProjection, default_writer
from ledger.store.migration import ensure_schema

__all__ = [
    "READ_BATCH",
    "DriverInsert",
    "EventStore",
    "HeadDrift",
    "InlineProjection",
    "LogReader",
    "OneShot",
    "SegmentInfo",
    "StoredRow",
    "archive_stream",
    "default_writer",
    "driver_copy",
    "driver_insert",
    "drop_old_key_switches",
    "ensure_schema",
    "event_ids",
    "has_event",
    "head_drift",
    "kinds_between",
    "log_end",
    "old_key_switches",
    "purge_stream",
    "restore_stream",
    "row_picker",
    "segment_size",
    "session_stream_is_live",
    "sidecar_lock",
    "sqlite_file",
    "translate_error",
]
