"""Reading a Hermes Agent ``state.db``: read-only, whatever columns its version has.

:class:`HermesSource` opens the file with ``mode=ro`` and checks it is SQLite with the two
tables the importer needs (``sessions`` with ``id``; ``messages`` with ``id``, ``session_id``,
``role``), raising :class:`~ledger.errors.InvalidArgumentError` (argument ``state.db``)
otherwise. Columns are discovered with ``PRAGMA table_info``: absent ones are tolerated and
rows come back as dicts of every column present, so nothing unknown is lost on the way. Only a
small index of the sessions is read at once; messages are streamed one session at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ledger.errors import InvalidArgumentError

__all__ = [
    "INVALID",
    "ROLES",
    "HermesSource",
    "as_text",
    "foreign_file",
    "json_value",
    "number",
    "session_key_of",
    "stripped",
    "tool_calls_of",
]

#: Hermes roles that become transcript messages (``session_meta`` and others do not).
ROLES = ("user", "assistant", "tool", "system")
#: Session columns the index holds: ordering, lineage, end, title and the key's parts.
_INDEX = ["id", "parent_session_id", "started_at", "ended_at", "end_reason", "title"]
_INDEX += ["session_key", "source", "user_id", "chat_id", "chat_type", "thread_id"]
#: What :func:`json_value` returns for text that is not JSON.
INVALID = object()


def as_text(value: Any) -> str:
    """A column value as text (BLOBs decoded as UTF-8)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def stripped(value: Any) -> str | None:
    """A column value as stripped text, ``None`` when NULL or blank."""
    return None if value is None else as_text(value).strip() or None


def number(value: Any) -> float:
    """A column value as a float, 0.0 when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def session_key_of(row: Mapping[str, Any]) -> str:
    """The row's ``session_key``, else one derived from source, chat and user."""
    key = stripped(row.get("session_key"))
    if key:
        return key
    source = stripped(row.get("source")) or "unknown"
    chat_type = stripped(row.get("chat_type")) or "dm"
    anchor = stripped(row.get("chat_id")) or stripped(row.get("user_id")) or "unknown"
    thread = stripped(row.get("thread_id"))
    key = f"agent:main:{source}:{chat_type}:{anchor}"
    return f"{key}:{thread}" if thread else key


def json_value(raw: Any) -> Any:
    """JSON text decoded, or :data:`INVALID`."""
    try:
        return msgspec.json.decode(raw) if isinstance(raw, str | bytes) else INVALID
    except msgspec.DecodeError:
        return INVALID


def tool_calls_of(raw: Any) -> list[dict[str, Any]] | None:
    """Hermes' ``tool_calls`` JSON text as a list of dicts; anything else kept as ``raw``."""
    if raw is None or raw == "":
        return None
    value = json_value(raw)
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item if isinstance(item, dict) else {"raw": item} for item in value] or None
    return [{"raw": as_text(raw)}]


def foreign_file(path: str | Path, detail: str) -> InvalidArgumentError:
    """The error for a file that is not a Hermes state.db."""
    expected = f"a Hermes state.db (SQLite with sessions and messages tables): {detail}"
    return InvalidArgumentError("state.db", str(path), expected)


class HermesSource:
    """A Hermes ``state.db`` opened read-only and checked to have the two tables."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InvalidArgumentError("state.db", str(path), "an existing Hermes state.db file")
        try:
            self.conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise foreign_file(path, str(exc)) from exc
        try:
            self.sessions = self._columns("sessions")
            self.messages = self._columns("messages")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise foreign_file(path, str(exc)) from exc
        missing = [f"sessions.{c}" for c in ("id",) if c not in self.sessions]
        missing += [f"messages.{c}" for c in ("id", "session_id", "role") if c not in self.messages]
        if missing:
            self.conn.close()
            raise foreign_file(path, "no " + ", ".join(missing))

    def _columns(self, table: str) -> list[str]:
        return [str(row[1]) for row in self.conn.execute(f"PRAGMA table_info({table})")]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """The rows of ``sql`` as dicts of column name to value, read lazily."""
        cursor = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        for values in cursor:
            yield dict(zip(names, values, strict=True))

    def index(self) -> list[dict[str, Any]]:
        """Every session's index and key columns: parents first, then by start time and id."""
        wanted = [c for c in _INDEX if c in self.sessions]
        rows = list(self.rows(f"SELECT {', '.join(wanted)} FROM sessions"))
        rows.sort(key=lambda r: (number(r.get("started_at")), str(r["id"])))
        by_id = {r["id"]: r for r in rows}
        done: set[Any] = set()
        ordered: list[dict[str, Any]] = []
        for row in rows:
            chain: dict[Any, dict[str, Any]] = {}
            node: dict[str, Any] | None = row
            while node is not None and node["id"] not in done and node["id"] not in chain:
                chain[node["id"]] = node
                node = by_id.get(node.get("parent_session_id"))
            done.update(chain)
            ordered.extend(reversed(chain.values()))
        return ordered

    def counts(self) -> dict[Any, tuple[int, int, int, int]]:
        """Per session id: rows, transcript rows, rows to retract, ``session_meta`` rows."""
        roles = f"role IN ({', '.join(repr(r) for r in ROLES)})"
        conditions = (("active", "active = 0"), ("compacted", "compacted = 1"))
        gone = " OR ".join(sql for col, sql in conditions if col in self.messages) or "0"
        sql = (
            f"SELECT session_id, COUNT(*), SUM({roles}), SUM({roles} AND ({gone})), "
            "SUM(role = 'session_meta') FROM messages GROUP BY session_id"
        )
        return {r[0]: (r[1], r[2] or 0, r[3] or 0, r[4] or 0) for r in self.conn.execute(sql)}

    def session(self, session_id: Any) -> dict[str, Any]:
        """Every column of one ``sessions`` row."""
        return next(self.rows("SELECT * FROM sessions WHERE id = ?", [session_id]))

    def transcript(self, session_id: Any) -> Iterator[dict[str, Any]]:
        """Every column of the session's ``messages`` rows by timestamp then id, lazily."""
        order = "timestamp, id" if "timestamp" in self.messages else "id"
        return self.rows(
            f"SELECT * FROM messages WHERE session_id = ? ORDER BY {order}", [session_id]
        )

    def count_rows(self) -> int:
        """Message rows of sessions that exist (what an import reports progress for)."""
        sql = "SELECT COUNT(*) FROM messages WHERE session_id IN (SELECT id FROM sessions)"
        return int(self.conn.execute(sql).fetchone()[0])

    def close(self) -> None:
        """Close the read-only connection."""
        self.conn.close()
