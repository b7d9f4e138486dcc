"""The projection protocol shared by inline and asynchronous projections.

A projection owns some view tables and folds batches of recorded events into them through
:meth:`Projection.apply`, on a connection whose transaction the caller controls: the append
transaction for inline projections (read-your-writes), the runner's transaction for asynchronous
ones (view update and checkpoint commit together). Projections are built over a mapping of their
tables so ``verify`` can fold the log into temporary copies and compare them with the live views.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from ledger.records import RecordedEvent
from ledger.store import driver_copy, driver_insert, row_picker

__all__ = [
    "Projection",
    "insert_rows",
    "insert_statement",
    "select_by_keys",
    "update_statement",
    "write_rows",
]


class Projection:
    """Base class: a named fold from events into the tables in ``table_names``."""

    #: Stable name used by the CLI, checkpoints and reports.
    name: ClassVar[str]
    #: True when the store applies it inside every append transaction.
    inline: ClassVar[bool]
    #: The default tables (from :mod:`ledger.schema`) this projection writes.
    default_tables: ClassVar[tuple[sa.Table, ...]]
    #: For each table, the columns that identify a row when views are compared.
    keys: ClassVar[Mapping[str, tuple[str, ...]]]

    def __init__(self, tables: Mapping[str, sa.Table] | None = None) -> None:
        self.tables: dict[str, sa.Table] = {t.name: t for t in self.default_tables}
        if tables is not None:
            self.tables.update(tables)

    def table(self, name: str) -> sa.Table:
        """The table playing the role of ``name`` (a live table or its verify copy)."""
        return self.tables[name]

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        """Fold ``records`` (in position order) into the views on ``conn``."""
        raise NotImplementedError

    def reset(self, conn: sa.Connection) -> None:
        """Delete every row of the views, then :meth:`seed` (the first step of a rebuild)."""
        for table in reversed(list(self.tables.values())):
            conn.execute(table.delete())
        self.seed(conn)

    def seed(self, conn: sa.Connection) -> None:
        """Rows a fold of the log starts from (tombstones of purged sessions); none by default."""


def write_rows(
    conn: sa.Connection,
    table: sa.Table,
    key: str,
    rows: Mapping[Any, Mapping[str, Any]],
    known: Collection[Any],
) -> None:
    """Write ``rows`` (by key value): INSERT those not in ``known``, UPDATE the others.

    Portable upsert for rows the caller has already folded in memory: the caller loaded the
    ``known`` keys in the same transaction, so no other writer can slip in between.
    """
    inserts = [dict(row) for value, row in rows.items() if value not in known]
    updates = [
        {**{k: v for k, v in row.items() if k != key}, "_key": value}
        for value, row in rows.items()
        if value in known
    ]
    if inserts:
        insert_rows(conn, table, inserts)
    if updates:
        conn.execute(update_statement(table, key), updates[0] if len(updates) == 1 else updates)


@functools.cache
def insert_statement(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table`` built once per table (statement construction is not free)."""
    return table.insert()


#: PostgreSQL: inserts of this many rows or more go in with ``COPY``.
COPY_MIN_ROWS = 50


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (mappings with the same keys, column names of ``table``) into ``table``.

    On SQLite a batch goes to the driver's ``executemany`` as tuples bound once through the
    columns' own type processors: SQLAlchemy's executemany builds parameters per row, which cost
    more than the insert itself on a 1,000-message append. On PostgreSQL a batch of
    ``COPY_MIN_ROWS`` or more goes in with ``COPY``: psycopg's executemany sends one INSERT per
    row, which made a rebuild insert 4,600 rows a second. Smaller ones are a plain Core insert.
    """
    sqlite = conn.dialect.name == "sqlite"
    if len(rows) == 1 or (not sqlite and len(rows) < COPY_MIN_ROWS):
        conn.execute(insert_statement(table), rows[0] if len(rows) == 1 else list(rows))
        return
    names = tuple(rows[0])
    bound = _bind_all(table, conn.dialect, names, rows)
    if sqlite:
        conn.exec_driver_sql(driver_insert(table, conn.dialect, names).sql, bound)
    else:
        driver_copy(conn, table, names, bound)


@functools.cache
def _processors(
    table: sa.Table, dialect: sa.Dialect, names: tuple[str, ...]
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(index, bind processor) of each of ``names`` that has one, as ``driver_insert`` binds."""
    found = [table.c[n].type._cached_bind_processor(dialect) for n in names]
    return tuple((i, bind) for i, bind in enumerate(found) if bind is not None)


def _bind_all(
    table: sa.Table, dialect: sa.Dialect, names: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """The rows' values in ``names`` order, each processed value bound once per batch.

    The rows of one append (or one rebuild batch) share their times: binding a timestamp (to
    UTC, to text) cost more than inserting the row, so equal values reuse the first binding.
    """
    processors = _processors(table, dialect, names)
    pick = row_picker(names)
    if not processors:
        return [pick(row) for row in rows]
    memo: list[dict[Any, Any]] = [{} for _ in processors]
    bound_rows: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(pick(row))
        for (index, bind), seen in zip(processors, memo, strict=True):
            value = values[index]
            try:
                values[index] = seen[value]
            except KeyError:
                values[index] = seen[value] = bind(value)
            except TypeError:  # unhashable: bound each time
                values[index] = bind(value)
        bound_rows.append(tuple(values))
    return bound_rows


@functools.cache
def update_statement(table: sa.Table, key: str) -> sa.Update:
    """``UPDATE table SET <every other column> WHERE key = :_key``, built once."""
    columns: dict[str, Any] = {c.name: sa.bindparam(c.name) for c in table.columns if c.name != key}
    return table.update().where(table.c[key] == sa.bindparam("_key")).values(columns)


@functools.cache
def select_by_keys(table: sa.Table, key: str) -> sa.Select[Any]:
    """``SELECT * FROM table WHERE key IN :keys`` with an expanding parameter, built once."""
    return sa.select(table).where(table.c[key].in_(sa.bindparam("keys", expanding=True)))
