"""Reading a Hermes Agent ``state.db``: read-only, whatever columns its version has.

:class:`HermesSource` opens the file without writing anything beside it (see
:func:`_read_only_uri`), reads it in one transaction (one snapshot of a file Hermes is
writing), and checks it is SQLite with the two tables the importer needs (``sessions`` with
``id``; ``messages`` with ``id``, ``session_id``, ``role``), raising
:class:`~ledger.errors.InvalidArgumentError` (argument ``state.db``) otherwise. Columns are
discovered with ``PRAGMA table_info``: absent ones are tolerated and rows come back as dicts of
every column present, so nothing unknown is lost on the way. Only a small index of the sessions
is read at once; messages are streamed one session at a time.
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
#: The usage counters (small integers), so a re-import notices when only they changed.
_INDEX += ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
_INDEX += ["reasoning_tokens", "estimated_cost_usd", "actual_cost_usd", "model"]
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


def _read_only_uri(path: Path) -> str:
    """How to open ``path`` without writing anything beside it.

    With no ``-wal`` file beside it nobody is writing (Hermes checkpoints and removes it on
    close), so ``immutable=1``: SQLite creates no ``-wal``/``-shm`` and takes no locks. With a
    ``-wal`` file Hermes is running: ``mode=ro`` reads through its WAL (the ``-shm`` it needs
    is Hermes' own), and the import reads in one transaction, so from one snapshot.
    """
    resolved = path.resolve()
    if resolved.with_name(resolved.name + "-wal").exists():
        return resolved.as_uri() + "?mode=ro"
    return resolved.as_uri() + "?mode=ro&immutable=1"


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
            self.conn = sqlite3.connect(_read_only_uri(self.path), uri=True, isolation_level=None)
            # One read transaction for the whole import: one snapshot of a file being written.
            self.conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise foreign_file(path, str(exc)) from exc
        try:
            self.sessions = self._columns("sessions")
            self.messages = self._columns("messages")
            self.prompts = self._columns("system_prompts")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise foreign_file(path, str(exc)) from exc
        missing = [f"sessions.{c}" for c in ("id",) if c not in self.sessions]
        missing += [f"messages.{c}" for c in ("id", "session_id", "role") if c not in self.messages]
        if missing:
            self.conn.close()
            raise foreign_file(path, "no " + ", ".join(missing))

    def system_prompt(self, prompt_hash: Any) -> str | None:
        """The prompt stored under ``prompt_hash`` in ``system_prompts`` (Hermes v25+)."""
        column = next((c for c in ("prompt", "content") if c in self.prompts), None)
        if prompt_hash is None or column is None or "hash" not in self.prompts:
            return None
        sql = f"SELECT {column} FROM system_prompts WHERE hash = ?"
        row = self.conn.execute(sql, (prompt_hash,)).fetchone()
        return None if row is None or row[0] is None else as_text(row[0])

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
        gone = self._retracted_sql()
        sql = (
            f"SELECT session_id, COUNT(*), SUM({roles}), SUM({roles} AND ({gone})), "
            "SUM(role = 'session_meta') FROM messages GROUP BY session_id"
        )
        return {r[0]: (r[1], r[2] or 0, r[3] or 0, r[4] or 0) for r in self.conn.execute(sql)}

    def message_ids(self, session_ids: Sequence[Any]) -> dict[str, dict[str, bool]]:
        """Per session: each transcript row's id and whether it is live (not undone/compacted).

        What a re-import compares with the ledger's transcript to decide whether a session
        changed: content identity, not counts.
        """
        if not session_ids:
            return {}
        roles = ", ".join(repr(r) for r in ROLES)
        dead = self._retracted_sql()
        marks = ", ".join("?" for _ in session_ids)
        sql = (
            f"SELECT session_id, id, NOT ({dead}) FROM messages "
            f"WHERE role IN ({roles}) AND session_id IN ({marks})"
        )
        found: dict[str, dict[str, bool]] = {}
        for sid, mid, live in self.conn.execute(sql, tuple(session_ids)):
            found.setdefault(str(sid), {})[str(mid)] = bool(live)
        return found

    def _retracted_sql(self) -> str:
        """The condition of a row Hermes undid (``active = 0``) or compacted away."""
        conditions = (("active", "active = 0"), ("compacted", "compacted = 1"))
        return " OR ".join(sql for col, sql in conditions if col in self.messages) or "0"

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
