"""Helpers shared by the compaction tests: table dumps, verify-everything, a history, the CLI."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from ledger import EventStore, Ledger
from ledger.cli import cli
from ledger.maintenance import archive
from ledger.schema import (
    archive_segments,
    events,
    projection_snapshots,
    search_documents,
    session_heads,
    session_keys,
    streams,
    transcript_messages,
    usage_daily,
)
from projections.rebuild import Mismatch, verify, verify_heads
from projections.registry import all_projections
from projections.runner import ProjectionRunner

#: An age every session reaches after :func:`let_age`: "older than a millisecond".
AGE = dt.timedelta(seconds=0.001)

KEY_A = "telegram:100:thread-1"
KEY_B = "discord:200:general"

#: The keys of the job tests (retention, keys, snapshot, runs).
KEY = "telegram:1:main"
OTHER_KEY = "telegram:2:main"

#: Tables a compaction job may touch, and the views derived from them.
TABLES = {
    "events": events,
    "archive_segments": archive_segments,
    "streams": streams,
    "session_heads": session_heads,
    "session_keys": session_keys,
    "transcript_messages": transcript_messages,
    "search_documents": search_documents,
    "usage_daily": usage_daily,
    "projection_snapshots": projection_snapshots,
}


def let_age() -> None:
    """Sleep long enough that every session written so far is older than :data:`AGE`."""
    time.sleep(0.01)


def archive_all(ledger: Ledger) -> int:
    """Archive every session (all are older than ``AGE``); returns how many were archived."""
    let_age()
    return archive(ledger.store, older_than=AGE).sessions


def invoke(*args: str) -> tuple[int, bytes, str]:
    """Run the ``ledger`` CLI; returns exit code, stdout bytes and stderr text."""
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def dump(store: EventStore, table: sa.Table) -> list[tuple[Any, ...]]:
    """Every row of ``table`` with every column, in primary-key order."""
    order = list(table.primary_key.columns) or list(table.columns)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*order)).all()
    return [tuple(_plain(value) for value in row) for row in rows]


def event_rows(store: EventStore) -> list[tuple[Any, ...]]:
    """Every column of every ``events`` row, in position order."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events).order_by(events.c.position)).all()
    return [tuple(_plain(value) for value in row) for row in rows]


def dump_all(store: EventStore, *names: str) -> dict[str, list[tuple[Any, ...]]]:
    """Dumps of the named tables (all of :data:`TABLES` when none are named)."""
    return {name: dump(store, TABLES[name]) for name in names or TABLES}


def catch_up(store: EventStore) -> int:
    """Bring the asynchronous projections to the end of the log."""
    runner = ProjectionRunner(store, [p for p in all_projections() if not p.inline])
    return runner.catch_up()


def verify_all(store: EventStore) -> dict[str, list[Mismatch]]:
    """Mismatches of every installed projection after catching the async ones up, and of the
    log's own head table (``log``)."""
    catch_up(store)
    found = {p.name: verify(store, p) for p in all_projections()}
    found["log"] = verify_heads(store)
    return {name: mismatches for name, mismatches in found.items() if mismatches}


def segment_count(store: EventStore) -> int:
    """How many archive segments the store holds."""
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(archive_segments)
        return int(conn.execute(query).scalar_one())


def archived_streams(store: EventStore) -> set[str]:
    """Streams flagged archived in ``streams``."""
    with store.engine.connect() as conn:
        query = sa.select(streams.c.stream).where(streams.c.archived.is_(sa.true()))
        return set(conn.execute(query).scalars())


def live_streams(store: EventStore) -> set[str]:
    """Streams with at least one row in ``events``."""
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(events.c.stream).distinct()).scalars())


def build_history(ledger: Ledger, other: Ledger) -> dict[str, str]:
    """A small gateway history on two keys, written by ``ledger`` and a foreign ``other``.

    Holds switches back and forth, an undo, a retry, a title, tool calls, token counts, a closed
    session and a foreign write; returns the session ids by name (a, b, c).
    """
    a = ledger.open_session(KEY_A, session_id="sess-a", source="telegram", model="m1")
    ledger.append_message(a, "user", "hello archive world", token_count=3)
    ledger.append_message(a, "assistant", "hi there", token_count=2, finish_reason="stop")
    b = ledger.open_session(KEY_A, session_id="sess-b", source="telegram", model="m1")
    ledger.append_message(b, "user", "second session question")
    ledger.append_message(
        b,
        "assistant",
        "",
        tool_calls=[{"id": "call-1", "name": "search", "arguments": {"q": "x"}}],
    )
    ledger.append_message(b, "tool", "tool output", tool_name="search", tool_call_id="call-1")
    ledger.retract_messages(b, 1, reason="undo")
    ledger.switch_session(KEY_A, a)
    ledger.append_message(a, "user", "back on the first session")
    other.append_message(a, "assistant", "a foreign reminder")
    ledger.set_title(a, "First session")
    c = ledger.open_session(KEY_B, session_id="sess-c", source="discord")
    ledger.append_messages(
        c,
        [
            {"role": "user", "content": "batch one"},
            {"role": "assistant", "content": "batch two", "reasoning": "thinking"},
        ],
    )
    ledger.retract_messages(c, 1, reason="retry")
    ledger.append_message(c, "assistant", "batch two again")
    ledger.close_session(c)
    ledger.append_message(b, "user", "b after the switch")
    return {"a": a, "b": b, "c": c}
