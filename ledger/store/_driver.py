"""Rows handed to the SQLite driver directly, bound once through the columns' own types.

SQLAlchemy's executemany builds its parameters row by row, which costs more than SQLite's
insert itself on a 1,000-message append; the single-message shortcut skips SQLAlchemy's
statement machinery altogether. Both bind their values here, with the same type processors
SQLAlchemy would use, so the stored bytes are the same as a Core insert's. On PostgreSQL,
:func:`driver_copy` sends bound rows with ``COPY`` (psycopg's executemany sends one INSERT a
row).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ledger.store._errors import driver_error

__all__ = ["DriverInsert", "driver_copy", "driver_insert", "row_picker"]


def row_picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function from a row mapping to its values in ``names`` order, as a tuple."""
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*names)


class DriverInsert:
    """``INSERT INTO table (names) VALUES (?, ...)`` and how to bind a row for it."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect, names: tuple[str, ...]) -> None:
        preparer = dialect.identifier_preparer
        columns = ", ".join(preparer.quote(n) for n in names)
        marks = ", ".join("?" for _ in names)
        self.sql = f"INSERT INTO {preparer.format_table(table)} ({columns}) VALUES ({marks})"
        self._pick = row_picker(names)
        processors = [table.c[n].type._cached_bind_processor(dialect) for n in names]
        self._binders = tuple((i, bind) for i, bind in enumerate(processors) if bind is not None)

    def bind(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The row's values in column order, through each column's bind processor."""
        values = self._pick(row)
        if not self._binders:
            return values
        bound = list(values)
        for index, bind in self._binders:
            bound[index] = bind(bound[index])
        return tuple(bound)

    def bind_all(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """:meth:`bind` of every row."""
        return [self.bind(row) for row in rows]


@functools.cache
def driver_insert(table: sa.Table, dialect: sa.Dialect, names: tuple[str, ...]) -> DriverInsert:
    """The :class:`DriverInsert` of ``names`` into ``table``, built once."""
    return DriverInsert(table, dialect, names)


def driver_copy(
    conn: sa.Connection, table: sa.Table, names: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """PostgreSQL: ``COPY table (names) FROM STDIN`` with ``rows`` (values bound as for
    :class:`DriverInsert`), inside ``conn``'s transaction.

    A driver error leaves as the ledger's ``DatabaseError``, as from any other statement.
    """
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(n) for n in names)
    sql = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN"
    driver: Any = conn.connection.driver_connection
    dbapi = conn.dialect.loaded_dbapi
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except dbapi.Error as exc:  # a raw driver call: outside SQLAlchemy's handle_error hook
        raise driver_error(exc, dbapi.Error, sql) from exc
