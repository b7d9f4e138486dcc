"""Rebuild, verify and report the status of projections, always from the log.

``rebuild`` of an inline projection runs ONLINE: appends go on while it works, and readers never
see a half-built view. It folds the log into SHADOW tables (``<table>__rebuild``, made from the
live tables' own columns, keys and indexes as the database has them) in batches, each its own
short transaction, so on SQLite the single write lock is free between batches. The batches
read with the log's reading rules (``read_batch``; on PostgreSQL only below the horizon, where
no event can still commit late). Near the log's end one short SWAP transaction takes the live
tables (SQLite: the write lock; PostgreSQL: ``ACCESS EXCLUSIVE`` on the live views, never on
``events``, so no append can be caught holding a view while it waits for the log), folds the
last events, copies in what a purge did to the live views meanwhile, renames each live table
to ``<table>__retired`` and each shadow to the live name, moves the index and constraint names
with them (the schema stays exactly what the migrations made) and, on PostgreSQL, re-creates
the PL/pgSQL functions that name a swapped table so every connection recompiles them. The
retired tables are dropped afterwards (on SQLite in chunks). Appends stall only for the swap;
an append that lands on a live view meanwhile waits for it and then writes to the new table.

A rebuild killed midway leaves the live views untouched (the shadow is dropped if it can be,
else by the next run, which always starts from fresh shadow tables). ``from_snapshot`` seeds
the shadow from the projection's snapshot instead of from nothing.

``rebuild`` of an asynchronous projection empties its views and resets its checkpoint in one
transaction, then lets the runner catch up in checkpointed batches, so an interruption resumes
where it stopped.

``verify`` folds the log into TEMPORARY copies of a projection's tables inside one snapshot
(``REPEATABLE READ`` on PostgreSQL, a read transaction on SQLite) and compares them with the live
views in SQL (``EXCEPT`` both ways), so memory stays flat however large the views are.
Asynchronous projections are compared up to their checkpoint, since they lag by design.
"""

from __future__ import annotations

import contextlib
import gc
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa

from ledger.errors import DatabaseError, RebuildRunningError
from ledger.schema import events, session_tombstones
from ledger.store import EventStore, head_drift, log_end, sidecar_lock, sqlite_file
from ledger.store.database import AUTOCOMMIT_READ, WRITE
from projections.base import Projection
from projections.checkpoint import lock_checkpoint, read_checkpoints, save_checkpoint
from projections.runner import ProjectionRunner
from projections.snapshot import load_snapshot

__all__ = [
    "REBUILD_LOCK_ID",
    "SHADOW_SUFFIX",
    "Mismatch",
    "ProjectionStatus",
    "rebuild",
    "status",
    "verify",
    "verify_heads",
]

Progress = Callable[[int], None]
_BATCH = 2000
#: The shadow tables (and their indexes) a rebuild folds into: ``<live name>__rebuild``.
SHADOW_SUFFIX = "__rebuild"
#: A live table the swap replaced, until it is dropped: ``<live name>__retired``.
RETIRED_SUFFIX = "__retired"
#: PostgreSQL: how long the swap waits for the live views before it lets appends through and
#: tries again; the last attempt waits as long as it takes.
_LOCK_TIMEOUT_MS = 50
_SWAP_ATTEMPTS = 20
#: Rows of a retired SQLite table deleted per transaction, at most.
_RETIRE_CHUNK = 20_000
#: How long one batch transaction should hold the write lock (SQLite) or its rows, and the
#: fewest events it folds however slow the machine.
_HOLD_S = 0.02
#: SQLite: a pause after each rebuild transaction, so a writer of another process, which polls
#: for the lock about every millisecond (``ledger.store._sqlite_lock``), finds it free.
_GAP_S = 0.002
_MIN_CHUNK = 20
#: The most events (by position) a rebuild leaves for its swap transaction to fold, and how
#: many catch-up passes it makes at most to get there.
_SWAP_LAG = 200
_MAX_PASSES = 10
#: PostgreSQL: how long to wait for appends that queued on the swap before dropping the retired
#: tables (a PL/pgSQL call compiled before the swap may still name their row types).
_RETIRE_GRACE_S = 5.0


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    """One row where a live view differs from the log: missing, unexpected or different."""

    projection: str
    table: str
    key: dict[str, Any]
    kind: str
    live: dict[str, Any] | None
    expected: dict[str, Any] | None


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where a projection stands: inline ones are always at the log's end."""

    name: str
    kind: str
    checkpoint: int
    last_position: int
    lag: int


def _fold_log(
    store: EventStore,
    conn: sa.Connection,
    projection: Projection,
    until: int | None,
    progress: Progress | None,
    *,
    after: int = 0,
) -> int:
    """Apply the log after ``after`` (up to ``until``) to ``projection``; returns the count."""
    total = 0
    while True:
        # Everything this transaction's snapshot shows: the views are compared in the same
        # snapshot (verify), so nothing in flight is missed.
        batch = store.read_batch(conn, after, _BATCH, final_only=False)
        if until is not None:
            batch = [r for r in batch if r.position <= until]
        if not batch:
            return total
        projection.apply(conn, batch)
        total += len(batch)
        after = batch[-1].position
        if progress is not None:
            progress(len(batch))


def rebuild(
    store: EventStore,
    projection: Projection,
    progress: Progress | None = None,
    *,
    from_snapshot: bool = False,
    batch_size: int = _BATCH,
) -> int:
    """Recreate ``projection``'s views from the log; returns how many events were folded.

    An inline projection is rebuilt online (see the module docstring): appends go on, and the
    new views replace the old ones in one short transaction at the end. ``progress`` is called
    with each batch's size between batches, while no transaction is open; an exception it
    raises stops the rebuild and leaves the live views as they were.

    With ``from_snapshot`` an inline projection starts from its latest snapshot and folds only
    the later events: fast, but it keeps whatever the snapshot holds, so repairing a damaged
    view is a rebuild from the log (the default).
    """
    with _rebuild_lock(store, projection.name):
        if projection.inline:
            return _OnlineRebuild(store, projection, progress, batch_size).run(from_snapshot)
        with store.transaction() as conn:
            lock_checkpoint(conn, projection.name)
            projection.reset(conn)
            save_checkpoint(conn, projection.name, 0)
        return ProjectionRunner(store, [projection], batch_size=batch_size).catch_up(progress)


#: PostgreSQL: the advisory lock one rebuild at a time holds, per schema. It is a two-key lock,
#: whose key space is apart from that of the one-key stream locks, so no stream name can share
#: it; the second key (``objid`` in ``pg_locks``) spells "lreb".
REBUILD_LOCK_ID = 1819436386
_REBUILD_KEY = f"hashtext(current_schema()), {REBUILD_LOCK_ID}"
#: Engines of databases without a file (SQLite in memory) rebuilding in this process, by id.
_LOCAL_REBUILDS: set[int] = set()
_LOCAL_GUARD = threading.Lock()


@contextmanager
def _rebuild_lock(store: EventStore, name: str) -> Iterator[None]:
    """One rebuild at a time on a database, or :class:`RebuildRunningError` at once.

    Two at once would drop each other's shadow tables midway. The lock ends with the process
    that holds it, however it ends: a session-level advisory lock on PostgreSQL (held on its
    own connection), an ``flock`` of the sidecar ``<file>.rebuild-lock`` on SQLite (beside the
    file a ``file:`` URI names, too).
    """
    if store.engine.dialect.name == "postgresql":
        with _advisory_lock(store, name):
            yield
        return
    path = sqlite_file(store.engine.url)
    if path is None:
        with _local_lock(store, name):
            yield
        return
    with sidecar_lock(path, ".rebuild-lock", wait=False) as held:
        if not held:
            raise RebuildRunningError(name)
        yield


@contextmanager
def _advisory_lock(store: EventStore, name: str) -> Iterator[None]:
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_REBUILD_KEY})").scalar():
            raise RebuildRunningError(name)
        unlock = f"SELECT pg_advisory_unlock({_REBUILD_KEY})"
        try:
            yield
        except BaseException:
            # If the connection died, the lock went with its session: the rebuild's own
            # error is the one to report.
            with contextlib.suppress(DatabaseError):
                conn.exec_driver_sql(unlock)
            raise
        conn.exec_driver_sql(unlock)


@contextmanager
def _local_lock(store: EventStore, name: str) -> Iterator[None]:
    key = id(store.engine)  # not reused while the engine lives, and the rebuild holds it
    with _LOCAL_GUARD:
        if key in _LOCAL_REBUILDS:
            raise RebuildRunningError(name)
        _LOCAL_REBUILDS.add(key)
    try:
        yield
    finally:
        with _LOCAL_GUARD:
            _LOCAL_REBUILDS.discard(key)


# -- the online rebuild of an inline projection ------------------------------------------------


class _Shape(NamedTuple):
    """A live table as the database has it: column order, key, index and constraint names."""

    columns: tuple[str, ...]
    primary_key: tuple[str | None, tuple[str, ...]]
    indexes: tuple[tuple[str, tuple[str, ...], bool], ...]
    uniques: tuple[tuple[str, tuple[str, ...]], ...]


def _shape(conn: sa.Connection, name: str) -> _Shape:
    inspector = sa.inspect(conn)
    pk = inspector.get_pk_constraint(name)
    return _Shape(
        columns=tuple(c["name"] for c in inspector.get_columns(name)),
        primary_key=(pk.get("name"), tuple(pk["constrained_columns"])),
        indexes=tuple(
            (str(ix["name"]), tuple(str(c) for c in ix["column_names"]), bool(ix["unique"]))
            for ix in inspector.get_indexes(name)
            if not ix.get("duplicates_constraint")
        ),
        uniques=tuple(
            (str(uq["name"]), tuple(uq["column_names"]))
            for uq in inspector.get_unique_constraints(name)
        ),
    )


def _renamed(live: sa.Table, shape: _Shape, name: str, suffix: str, postgres: bool) -> sa.Table:
    """``live``'s columns (its Python types, the database's order) under ``name``.

    Index names get ``suffix``; constraint names too on PostgreSQL, where they name indexes
    (SQLite keeps them per table, so the shadow carries the live names already).
    """

    def constraint(value: str | None) -> str | None:
        return value + suffix if value is not None and postgres else value

    columns = []
    for column_name in shape.columns:
        column = live.c[column_name]
        default = column.server_default
        columns.append(
            sa.Column(
                column_name,
                column.type,
                nullable=column.nullable,
                autoincrement=False,
                server_default=(
                    sa.DefaultClause(default.arg) if isinstance(default, sa.DefaultClause) else None
                ),
            )
        )
    table = sa.Table(name, sa.MetaData(), *columns, **live.dialect_kwargs)
    pk_name, pk_columns = shape.primary_key
    if pk_columns:
        table.append_constraint(sa.PrimaryKeyConstraint(*pk_columns, name=constraint(pk_name)))
    for uq_name, uq_columns in shape.uniques:
        table.append_constraint(sa.UniqueConstraint(*uq_columns, name=constraint(uq_name)))
    for ix_name, ix_columns, unique in shape.indexes:
        sa.Index(ix_name + suffix, *(table.c[c] for c in ix_columns), unique=unique)
    return table


class _OnlineRebuild:
    """One online rebuild of an inline projection (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        projection: Projection,
        progress: Progress | None,
        batch_size: int,
    ) -> None:
        self.store = store
        self.projection = projection
        self.progress = progress
        self.batch_size = batch_size
        self.postgres = store.engine.dialect.name == "postgresql"
        self.live: dict[str, sa.Table] = dict(projection.tables)
        with store.engine.connect() as conn:
            self.shapes = {role: _shape(conn, t.name) for role, t in self.live.items()}
        self.shadows = {
            role: _renamed(
                table, self.shapes[role], table.name + SHADOW_SUFFIX, SHADOW_SUFFIX, self.postgres
            )
            for role, table in self.live.items()
        }
        self.shadow = type(projection)(self.shadows)
        self.after = 0
        self.folded = 0
        # SQLite: every append waits while a batch holds the write lock, so batches are paced.
        # PostgreSQL: the shadow tables are the rebuild's alone and appends never wait for them.
        self.pacer = _Pacer(batch_size) if not self.postgres else _Pacer(batch_size, fixed=True)
        self.unsynced = 0  # events folded since the last WAL checkpoint
        self.swapped = 0  # events the swap transaction folded
        self.purged: set[str] = set()
        #: PostgreSQL: backends that queued on the swap's locks (see ``_retire``).
        self.waiting: list[int] = []

    # -- phases --------------------------------------------------------------------------

    def run(self, from_snapshot: bool) -> int:
        """Build the shadow, swap it in, retire the old tables; returns the events folded."""
        self._create(from_snapshot)
        try:
            self._catch_up()
            self._swap()
        except BaseException:
            self._drop_shadows()
            raise
        self._retire()
        return self.folded

    def _create(self, from_snapshot: bool) -> None:
        """Drop what an earlier run left, create the shadow tables and seed them.

        On PostgreSQL the log is analyzed first: a log loaded in bulk and not analyzed yet
        (autovacuum gets to it later) looks a few hundred rows long to the planner, which then
        read every batch by scanning and sorting the rest of the log instead of walking its
        index (43,000 instead of 77,000 events a second on 100,000 events, and worse the
        longer the log).
        """
        if self.postgres:
            with self.store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                # SKIP_LOCKED: never queue behind a VACUUM or an index build for the log.
                conn.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {_quote(conn, events.name)}")
        with self.store.transaction() as conn:
            for table in self.live.values():
                for suffix in (SHADOW_SUFFIX, RETIRED_SUFFIX):
                    conn.execute(
                        sa.text(f"DROP TABLE IF EXISTS {_quote(conn, table.name + suffix)}")
                    )
            for shadow in self.shadows.values():
                shadow.create(conn)
            start = load_snapshot(conn, self.shadow) if from_snapshot else None
            if start is None:
                self.shadow.seed(conn)
            self.after = start or 0
            # Sessions purged from now on are copied from the live views at the swap.
            self.purged = _tombstones(conn)

    def _catch_up(self) -> None:
        """Fold the log in passes until what is left for the swap is a few batches at most.

        Each pass folds up to the end seen as it began, one short transaction per batch; the
        next pass folds what writers appended meanwhile. Whatever the last pass leaves is folded
        inside the swap, where every append waits for it: a rebuild of 1M events runs for a
        minute or more, and a gateway appends thousands of events in that time. The passes stop
        when the rest is small, or when a second pass fails to shorten it (writers as fast as
        the fold), so the swap is always reached.
        """
        lag: int | None = None
        stalled = 0
        for _ in range(_MAX_PASSES):
            with self.store.engine.connect() as conn:
                target = log_end(conn)
            behind = target - self.after
            if lag is not None:
                stalled += behind >= lag
                if behind <= _SWAP_LAG or stalled == 2:
                    return
            lag = behind
            self._pass(target)

    def _pass(self, target: int) -> None:
        """Fold the log up to ``target``, one short transaction per batch."""
        while self.after < target:
            # One read per write transaction: reading and decoding hold no lock, so a writer
            # waiting for SQLite's lock finds it free between every two of ours. (Reading the
            # next batch on another thread meanwhile gained nothing: both halves need the GIL.)
            with self.store.engine.connect() as conn:
                batch = self.store.read_batch(conn, self.after, self.pacer.size)
            if not batch:
                return
            self.pacer.start()
            with self._shadow_transaction() as conn:
                self.shadow.apply(conn, batch)
            self.pacer.took()
            if not self.postgres:
                time.sleep(_GAP_S)  # the lock stays free for a writer's next poll
            self.after = batch[-1].position
            self.folded += len(batch)
            self.unsynced += len(batch)
            if self.unsynced >= self.batch_size:
                self._checkpoint()
                self.unsynced = 0
            if self.progress is not None:
                self.progress(len(batch))

    @contextmanager
    def _shadow_transaction(self) -> Iterator[sa.Connection]:
        """A write transaction for shadow rows only.

        It commits without waiting for a sync (SQLite: ``synchronous = NORMAL``; PostgreSQL:
        ``synchronous_commit = off``): the shadow needs no durability, since a crash drops it
        and the next run starts over, and a sync per batch was most of the rebuild's time. The
        swap commits as every append does, which makes every batch before it durable too. On
        SQLite the connection gets the ledger's setting back before it returns to the pool.
        No garbage-collection pass runs while it is open (see :func:`_collection_deferred`).
        """
        if self.postgres:
            with _collection_deferred(), self.store.transaction() as conn:
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
            return
        with _collection_deferred(), self.store.engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA synchronous = NORMAL")
            try:
                conn.execution_options(**{WRITE: True})
                with conn.begin():
                    yield conn
            finally:
                driver.execute(f"PRAGMA synchronous = {self.store.settings.sqlite_synchronous}")

    def _checkpoint(self) -> None:
        """SQLite: copy the WAL into the database now, outside any transaction.

        Otherwise the commit that finds the WAL over its limit runs the checkpoint, and an
        append's commit would pay for copying (and syncing) the pages the rebuild wrote.
        """
        if not self.postgres:
            with self.store.engine.connect() as conn:
                conn.execution_options(**{AUTOCOMMIT_READ: True})
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _swap(self) -> None:
        """Take the live views, fold the rest of the log, and rename the shadow into place."""
        for attempt in range(_SWAP_ATTEMPTS):
            last = attempt == _SWAP_ATTEMPTS - 1
            try:
                remainder = self._swap_once(wait=last)
            except DatabaseError as exc:
                if last or not _lock_timed_out(exc):
                    raise
                time.sleep(0.01 * (attempt + 1))  # let the queued appends through
                self._catch_up()
                continue
            if remainder and self.progress is not None:
                self.progress(remainder)
            return

    def _swap_once(self, *, wait: bool) -> int:
        # SQLite: BEGIN IMMEDIATE is the one write lock, every append waits for it. PostgreSQL:
        # the live views are taken, not the log (an append that holds events and waits for a
        # view would deadlock with a lock on events); every append that writes these views
        # waits, and one that has written them committed before the lock was granted.
        with _collection_deferred(), self.store.transaction(exclusive=not self.postgres) as conn:
            waiting: list[int] = []
            if self.postgres:
                timeout = "0" if wait else f"{_LOCK_TIMEOUT_MS}ms"
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{timeout}'")
                names = ", ".join(_quote(conn, t.name) for t in self.live.values())
                conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            remainder = 0
            while batch := self.store.read_batch(
                conn, self.after, self.batch_size, final_only=False
            ):
                self.shadow.apply(conn, batch)
                self.after = batch[-1].position
                remainder += len(batch)
            self._copy_purged(conn)
            if self.postgres:
                waiting = _waiting_pids(conn, [t.name for t in self.live.values()])
                self._rename_postgres(conn)
                _recompile_functions(conn, [t.name for t in self.live.values()])
            else:
                self._rename_sqlite(conn)
        self.folded += remainder
        self.swapped = remainder
        self.waiting = waiting
        return remainder

    def _copy_purged(self, conn: sa.Connection) -> None:
        """Sessions purged while the shadow was built: their rows as the purge left them live."""
        gone = sorted(_tombstones(conn) - self.purged)
        if not gone:
            return
        for role, live in self.live.items():
            if self.projection.keys[role][:1] != ("session_id",):
                continue
            shadow = self.shadows[role]
            conn.execute(shadow.delete().where(shadow.c.session_id.in_(gone)))
            columns = [c.name for c in shadow.columns]
            rows = sa.select(*(live.c[c] for c in columns)).where(live.c.session_id.in_(gone))
            conn.execute(shadow.insert().from_select(columns, rows))

    def _rename_postgres(self, conn: sa.Connection) -> None:
        q = conn.dialect.identifier_preparer.quote
        for role, live in self.live.items():
            name, shape = live.name, self.shapes[role]
            constraints = [n for n in (shape.primary_key[0], *(u[0] for u in shape.uniques)) if n]
            for old, new in ((name, name + RETIRED_SUFFIX), (name + SHADOW_SUFFIX, name)):
                suffix_from = "" if new.endswith(RETIRED_SUFFIX) else SHADOW_SUFFIX
                suffix_to = RETIRED_SUFFIX if new.endswith(RETIRED_SUFFIX) else ""
                conn.exec_driver_sql(f"ALTER TABLE {q(old)} RENAME TO {q(new)}")
                for constraint in constraints:
                    conn.exec_driver_sql(
                        f"ALTER TABLE {q(new)} RENAME CONSTRAINT {q(constraint + suffix_from)} "
                        f"TO {q(constraint + suffix_to)}"
                    )
                for index, _, _ in shape.indexes:
                    conn.exec_driver_sql(
                        f"ALTER INDEX {q(index + suffix_from)} RENAME TO {q(index + suffix_to)}"
                    )

    def _rename_sqlite(self, conn: sa.Connection) -> None:
        q = conn.dialect.identifier_preparer.quote
        moves: list[tuple[str, str]] = []
        for role, live in self.live.items():
            name = live.name
            conn.exec_driver_sql(f"ALTER TABLE {q(name)} RENAME TO {q(name + RETIRED_SUFFIX)}")
            conn.exec_driver_sql(f"ALTER TABLE {q(name + SHADOW_SUFFIX)} RENAME TO {q(name)}")
            for index, _, _ in self.shapes[role].indexes:
                moves += [(index, index + RETIRED_SUFFIX), (index + SHADOW_SUFFIX, index)]
        if moves:
            _rename_sqlite_indexes(conn, moves)

    def _retire(self) -> None:
        """Drop the replaced tables: at once on PostgreSQL (after the appends that queued on
        the swap are done), in chunks on SQLite (each a short write transaction)."""
        names = [t.name + RETIRED_SUFFIX for t in self.live.values()]
        if self.postgres:
            _await_backends(self.store, self.waiting)
            with self.store.transaction() as conn:
                for name in names:
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_quote(conn, name)}")
            return
        pacer = _Pacer(_RETIRE_CHUNK)
        for name in names:
            while True:
                size = pacer.size
                pacer.start()
                with self._shadow_transaction() as conn:
                    quoted = _quote(conn, name)
                    deleted = conn.exec_driver_sql(
                        f"DELETE FROM {quoted} WHERE rowid IN "
                        f"(SELECT rowid FROM {quoted} LIMIT {size})"
                    ).rowcount
                    if deleted < size:
                        conn.exec_driver_sql(f"DROP TABLE {quoted}")
                pacer.took()
                self._checkpoint()
                if deleted < size:
                    break

    def _drop_shadows(self) -> None:
        """After a failure: drop the shadow tables if the database lets us (else: next run)."""
        try:
            with self.store.transaction() as conn:
                for shadow in self.shadows.values():
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_quote(conn, shadow.name)}")
        except Exception:  # the original error is the one to report
            pass


class _Pacer:
    """Sizes the write transactions of a rebuild so each holds its locks about ``_HOLD_S``.

    On SQLite every append waits while one runs: the size follows the time the last one took
    (halving at once when it ran long, growing gently), between ``_MIN_CHUNK`` and ``most``.
    """

    def __init__(self, most: int, *, fixed: bool = False) -> None:
        self.most = most
        self.fixed = fixed  # always ``most``
        self.size = most if fixed else min(most, 200)
        self._started = 0.0

    def start(self) -> None:
        """Mark the start of a transaction."""
        self._started = time.perf_counter()

    def took(self) -> None:
        """The transaction just ended: size the next one by how long this one took."""
        if self.fixed:
            return
        elapsed = max(time.perf_counter() - self._started, 1e-4)
        wanted = int(self.size * _HOLD_S / elapsed)
        grown = min(wanted, self.size * 2)
        self.size = max(_MIN_CHUNK, min(self.most, grown if wanted > self.size else wanted))

    def chunks(self, records: Sequence[Any]) -> Iterator[Sequence[Any]]:
        """``records`` in consecutive slices of the current size (each timed by the caller)."""
        index = 0
        while index < len(records):
            size = self.size
            self.start()
            yield records[index : index + size]
            index += size


@contextmanager
def _collection_deferred() -> Iterator[None]:
    """Python's cyclic garbage collector stays off for the block, and runs on its own schedule
    after it.

    A rebuild allocates fast, so a full collection comes every few seconds, and one took 50-90
    ms here: inside a batch that holds SQLite's write lock, every append waited for it (it was
    the longest hold of a 400k-event rebuild). Between batches it costs the appends nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _quote(conn: sa.Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _tombstones(conn: sa.Connection) -> set[str]:
    return set(conn.execute(sa.select(session_tombstones.c.session_id)).scalars())


def _lock_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is PostgreSQL's ``lock_not_available`` (55P03)."""
    seen: BaseException | None = exc
    while seen is not None:
        orig = getattr(seen, "orig", None)
        if getattr(seen, "sqlstate", None) == "55P03" or getattr(orig, "sqlstate", None) == "55P03":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _rename_sqlite_indexes(conn: sa.Connection, moves: Sequence[tuple[str, str]]) -> None:
    """Rename indexes, which SQLite's ALTER has no statement for.

    The documented way for a change that leaves the file's content alone: edit the index's
    row in ``sqlite_schema`` (its name, and the name in its ``CREATE INDEX``) with
    ``writable_schema`` on, then bump ``schema_version`` so every connection reloads the schema.
    """
    version = int(conn.exec_driver_sql("PRAGMA schema_version").scalar_one())
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for old, new in moves:
            sql = conn.execute(
                sa.text("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = :name"),
                {"name": old},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "UPDATE sqlite_schema SET name = :new, sql = :sql "
                    "WHERE type = 'index' AND name = :old"
                ),
                {"old": old, "new": new, "sql": _rename_in_ddl(str(sql), old, new)},
            )
        conn.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _rename_in_ddl(sql: str, old: str, new: str) -> str:
    """``CREATE [UNIQUE] INDEX [IF NOT EXISTS] <old> ON …`` with ``new`` for the index name."""
    pattern = re.compile(
        r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?)"
        + r'(?:"'
        + re.escape(old)
        + r'"|`'
        + re.escape(old)
        + r"`|\["
        + re.escape(old)
        + r"\]|"
        + re.escape(old)
        + r")(?=[\s(])",
        re.IGNORECASE,
    )
    renamed, count = pattern.subn(lambda m: m.group(1) + '"' + new + '"', sql, count=1)
    if count != 1:
        raise DatabaseError(f"cannot rename index {old}: unexpected DDL {sql!r}", backend="SQLite")
    return renamed


def _waiting_pids(conn: sa.Connection, tables: Sequence[str]) -> list[int]:
    """PostgreSQL: the backends queued on this transaction's locks on ``tables``."""
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT l.pid FROM pg_locks AS l WHERE NOT l.granted AND l.relation = ANY("
            "SELECT c.oid FROM pg_class AS c WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relname = ANY(CAST(:tables AS text[])))"
        ),
        {"tables": list(tables)},
    )
    return [int(pid) for pid in rows.scalars()]


def _await_backends(store: EventStore, pids: Sequence[int]) -> None:
    """PostgreSQL: wait (at most ``_RETIRE_GRACE_S``) until ``pids`` finished the transaction
    they were in at the swap, so none still needs a retired table's row type."""
    if not pids:
        return
    deadline = time.monotonic() + _RETIRE_GRACE_S
    with store.engine.connect() as conn:
        started = conn.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:pids AS int[])) "
            "AND xact_start < :started"
        )
        while time.monotonic() < deadline:
            if not conn.execute(query, {"pids": list(pids), "started": started}).scalar_one():
                return
            conn.rollback()
            time.sleep(0.01)


def _recompile_functions(conn: sa.Connection, tables: Sequence[str]) -> None:
    """Re-create the PL/pgSQL functions of this schema that name one of ``tables``.

    A PL/pgSQL function is compiled once per connection and keeps the row types of the tables
    it names by id; re-creating it (the same definition) makes every connection compile it
    again against the swapped-in tables (``ledger_append_message`` of migration 0007).
    """
    pattern = r"\m(" + "|".join(re.escape(t) for t in tables) + r")\M"
    definitions = conn.execute(
        sa.text(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc AS p JOIN pg_language AS l "
            "ON l.oid = p.prolang WHERE p.pronamespace = current_schema()::regnamespace "
            "AND l.lanname = 'plpgsql' AND p.prosrc ~ :pattern"
        ),
        {"pattern": pattern},
    ).scalars()
    for definition in list(definitions):
        conn.exec_driver_sql(str(definition))


def _temporary_copy(table: sa.Table, keys: Sequence[str]) -> sa.Table:
    columns = [
        sa.Column(c.name, c.type, primary_key=c.name in keys, nullable=c.name not in keys)
        for c in table.columns
    ]
    return sa.Table(
        f"verify_{table.name}_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
    )


def _differences(
    conn: sa.Connection,
    projection: Projection,
    live: sa.Table,
    expected: sa.Table,
    limit: int,
) -> Iterator[Mismatch]:
    ignored = set(getattr(projection, "ignored", {}).get(live.name, ()))
    names = [c.name for c in live.columns if c.name not in ignored]
    keys = projection.keys[live.name]

    def rows(a: sa.Table, b: sa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
        query = sa.except_(
            sa.select(*[a.c[n] for n in names]), sa.select(*[b.c[n] for n in names])
        ).limit(limit)
        found = conn.execute(query).mappings().all()
        return {tuple(row[k] for k in keys): dict(row) for row in found}

    live_only = rows(live, expected)
    expected_only = rows(expected, live)
    for key in sorted(live_only.keys() | expected_only.keys(), key=repr):
        have, want = live_only.get(key), expected_only.get(key)
        kind = "different" if have and want else ("unexpected" if have else "missing")
        yield Mismatch(
            projection=projection.name,
            table=str(live.name),
            key=dict(zip(keys, key, strict=True)),
            kind=kind,
            live=have,
            expected=want,
        )


def verify(
    store: EventStore,
    projection: Projection,
    progress: Progress | None = None,
    *,
    limit: int = 1000,
) -> list[Mismatch]:
    """Every row where ``projection``'s views differ from a fold of the log (empty: in step)."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin() as transaction:
            until = None
            if not projection.inline:
                until = read_checkpoints(conn).get(projection.name, 0)
            copies = {
                name: _temporary_copy(table, projection.keys[name])
                for name, table in projection.tables.items()
            }
            for copy in copies.values():
                copy.create(conn)
            shadow = type(projection)(copies)
            shadow.seed(conn)
            _fold_log(store, conn, shadow, until, progress)
            found = [
                mismatch
                for name, table in projection.tables.items()
                for mismatch in _differences(conn, projection, table, copies[name], limit)
            ]
            transaction.rollback()
    return found


def status(store: EventStore, projections: Sequence[Projection]) -> list[ProjectionStatus]:
    """Checkpoint and lag of every projection."""
    last = store.last_position()
    with store.engine.connect() as conn:
        checkpoints = read_checkpoints(conn)
    result = []
    for projection in projections:
        at = last if projection.inline else checkpoints.get(projection.name, 0)
        result.append(
            ProjectionStatus(
                name=projection.name,
                kind="inline" if projection.inline else "async",
                checkpoint=at,
                last_position=last,
                lag=max(0, last - at),
            )
        )
    return result


def verify_heads(store: EventStore, *, limit: int = 1000) -> list[Mismatch]:
    """The log's own head table against its events, as mismatches of the ``log`` check: a
    ``streams`` row behind, ahead of or missing for its events, or a wrong ``archived`` flag."""
    with store.engine.connect() as conn:
        drifts = head_drift(conn, limit)
    return [
        Mismatch(
            projection="log",
            table="streams",
            key={"stream": d.stream},
            kind=d.kind,
            live=None if d.head is None else {"sequence": d.head},
            expected=None if d.events is None else {"sequence": d.events, "why": d.detail},
        )
        for d in drifts
    ]
