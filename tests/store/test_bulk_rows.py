"""Batches of view rows handed to the driver in bulk: SQLite's executemany, PostgreSQL's COPY.

A batch of ``COPY_MIN_ROWS`` or more rows takes the bulk route; what it stores must read back
exactly as a Core insert's would, whatever the text holds, and a broken constraint must leave
as the ledger's ``DatabaseError`` with nothing written.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ledger import DatabaseError, Ledger
from ledger.schema import transcript_messages
from projections.base import COPY_MIN_ROWS, insert_rows
from projections.rebuild import verify
from projections.sessions import SessionsProjection

#: Text a COPY stream must escape: tabs, newlines, backslashes, a literal \N, and other scripts.
AWKWARD = [
    "tab\there",
    "line one\nline two\r\n",
    "back\\slash and \\N and \\.",
    "日本語のテキスト",
    "مرحبا بالعالم",
    "emoji 🧵❌ :thread:",
    "",
]


def test_a_large_batch_of_messages_reads_back_exactly(ledger: Ledger) -> None:
    sid = ledger.open_session("cli:bulk")
    contents = [AWKWARD[n % len(AWKWARD)] + f" #{n}" for n in range(COPY_MIN_ROWS * 3)]
    ledger.append_messages(sid, [{"role": "user", "content": c} for c in contents])
    assert [m.content for m in ledger.transcript(sid)] == contents
    assert verify(ledger.store, SessionsProjection()) == []


def test_a_large_batch_keeps_multimodal_parts_and_tool_calls(ledger: Ledger) -> None:
    sid = ledger.open_session("cli:bulk")
    parts = [{"type": "text", "text": "look\t"}, {"type": "image_url", "url": "data:,x\\y"}]
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    messages = [
        {"role": "assistant", "content": parts, "tool_calls": calls, "token_count": n}
        for n in range(COPY_MIN_ROWS)
    ]
    ledger.append_messages(sid, messages)
    stored = ledger.transcript(sid)
    assert len(stored) == COPY_MIN_ROWS
    assert stored[-1].content == parts
    assert stored[-1].tool_calls == calls
    assert [m.token_count for m in stored] == list(range(COPY_MIN_ROWS))


def test_a_bulk_insert_that_breaks_the_key_raises_database_error_and_writes_nothing(
    ledger: Ledger,
) -> None:
    at = dt.datetime.now(dt.UTC)
    row = {
        "session_id": "s",
        "message_id": "same",
        "sequence": 1,
        "position": 1,
        "role": "user",
        "writer": "w",
        "recorded_at": at,
    }
    rows = [row] * COPY_MIN_ROWS
    engine = ledger.store.engine
    with pytest.raises(DatabaseError), engine.begin() as conn:
        insert_rows(conn, transcript_messages, rows)
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(transcript_messages))
        assert count.scalar_one() == 0
