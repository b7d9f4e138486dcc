"""Builders of Hermes Agent ``state.db`` files for the importer tests and its benchmark.

Two schemas: ``OLD`` is the early column set (no ``session_key``, ``active``, ``compacted``,
``session_meta`` rows); ``NEW`` is the ``sessions`` and ``messages`` DDL of a current Hermes
(``hermes_state_common.SCHEMA_SQL``) plus one column no Hermes ever had, ``future_column``.
``old_db`` and ``new_db`` write small scenarios whose expected import is spelled out below;
``large_db`` writes a big one for measuring throughput (``python -m tests.hermes.fixture``).
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

OLD = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, user_id TEXT, model TEXT, model_config TEXT,
    system_prompt TEXT, parent_session_id TEXT, started_at REAL NOT NULL, ended_at REAL,
    end_reason TEXT, message_count INTEGER DEFAULT 0, tool_call_count INTEGER DEFAULT 0,
    input_tokens INTEGER DEFAULT 0, output_tokens INTEGER DEFAULT 0,
    cache_read_tokens INTEGER DEFAULT 0, cache_write_tokens INTEGER DEFAULT 0,
    reasoning_tokens INTEGER DEFAULT 0, title TEXT, api_call_count INTEGER DEFAULT 0,
    FOREIGN KEY (parent_session_id) REFERENCES sessions(id)
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL, content TEXT, tool_call_id TEXT, tool_calls TEXT, tool_name TEXT,
    timestamp REAL NOT NULL, token_count INTEGER, finish_reason TEXT, reasoning TEXT
);
CREATE INDEX idx_messages_session ON messages(session_id, timestamp);
"""

NEW = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, created_source TEXT, user_id TEXT,
    session_key TEXT, chat_id TEXT, chat_type TEXT, thread_id TEXT, display_name TEXT,
    origin_json TEXT, expiry_finalized INTEGER DEFAULT 0, model TEXT, model_config TEXT,
    system_prompt TEXT, system_prompt_hash TEXT, parent_session_id TEXT,
    started_at REAL NOT NULL, ended_at REAL, end_reason TEXT, message_count INTEGER DEFAULT 0,
    tool_call_count INTEGER DEFAULT 0, input_tokens INTEGER DEFAULT 0,
    output_tokens INTEGER DEFAULT 0, cache_read_tokens INTEGER DEFAULT 0,
    cache_write_tokens INTEGER DEFAULT 0, reasoning_tokens INTEGER DEFAULT 0, cwd TEXT,
    git_branch TEXT, billing_provider TEXT, estimated_cost_usd REAL, actual_cost_usd REAL,
    cost_status TEXT, title TEXT, title_source TEXT, last_activity_at REAL,
    api_call_count INTEGER DEFAULT 0, profile_name TEXT, rewind_count INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0, pinned INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0, last_read_at REAL, tool_names TEXT, future_column TEXT,
    FOREIGN KEY (parent_session_id) REFERENCES sessions(id)
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL, content TEXT, tool_call_id TEXT, tool_calls TEXT, tool_name TEXT,
    effect_disposition TEXT, timestamp REAL NOT NULL, token_count INTEGER, finish_reason TEXT,
    reasoning TEXT, reasoning_content TEXT, reasoning_details TEXT, codex_reasoning_items TEXT,
    codex_message_items TEXT, platform_message_id TEXT, observed INTEGER DEFAULT 0,
    _compressed_summary INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1,
    compacted INTEGER NOT NULL DEFAULT 0, api_content TEXT, display_kind TEXT,
    display_metadata TEXT, display_identity BLOB, display_order INTEGER, future_column TEXT
);
CREATE INDEX idx_sessions_parent ON sessions(parent_session_id);
CREATE INDEX idx_sessions_started ON sessions(started_at DESC);
CREATE INDEX idx_messages_session ON messages(session_id, timestamp);
CREATE INDEX idx_messages_session_active ON messages(session_id, active, timestamp);
"""

TOOL_CALLS = [{"id": "call_1", "type": "function", "function": {"name": "web_search"}}]
#: The key every ``new_db`` session of chat 100 has, and the one derived for ``old_db``'s CLI.
TELEGRAM_KEY = "agent:main:telegram:dm:100"
CLI_KEY = "agent:main:cli:dm:unknown"
DISCORD_KEY = "agent:main:discord:group:555:7"


def create(path: Path, schema: str) -> sqlite3.Connection:
    """An empty state.db at ``path`` with ``schema`` (``OLD`` or ``NEW``)."""
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    return conn


def add_session(conn: sqlite3.Connection, session_id: str, **columns: Any) -> None:
    """Insert a ``sessions`` row (``source`` defaults to cli, ``started_at`` to now)."""
    values = {"id": session_id, "source": "cli", "started_at": time.time(), **columns}
    names = ", ".join(values)
    conn.execute(
        f"INSERT INTO sessions ({names}) VALUES ({', '.join('?' * len(values))})",
        [*values.values()],
    )


def add_message(
    conn: sqlite3.Connection, session_id: str, role: str, content: str | None, **columns: Any
) -> int:
    """Insert a ``messages`` row and return its id (``timestamp`` defaults to now)."""
    values = {"session_id": session_id, "role": role, "content": content, **columns}
    values.setdefault("timestamp", time.time())
    names = ", ".join(values)
    cursor = conn.execute(
        f"INSERT INTO messages ({names}) VALUES ({', '.join('?' * len(values))})",
        [*values.values()],
    )
    return int(cursor.lastrowid or 0)


def old_db(path: Path) -> Path:
    """The old column set: keys are derived, nothing is inactive.

    ``o_root`` (CLI, ended ``user_exit``) has 4 messages, one with tool calls and a tool reply;
    ``a_child`` (parent ``o_root``, same start time, an id sorting before it, open) has 4
    messages inserted out of timestamp order, two with the same timestamp; ``o_tg`` (telegram
    user 77, ended, no reason) has 2 messages, the second with malformed ``tool_calls``.
    3 sessions, 10 messages.
    """
    conn = create(path, OLD)
    add_session(
        conn, "o_root", started_at=10.0, ended_at=15.0, end_reason="user_exit",
        model="hermes-3", title="first",
    )  # fmt: skip
    add_session(conn, "a_child", parent_session_id="o_root", started_at=10.0)
    add_session(conn, "o_tg", source="telegram", user_id="77", started_at=20.0, ended_at=25.0)
    add_message(conn, "o_root", "user", "hi", timestamp=10.0)
    calls = json.dumps(TOOL_CALLS)
    add_message(conn, "o_root", "assistant", None, timestamp=11.0, tool_calls=calls)
    add_message(
        conn, "o_root", "tool", "results", timestamp=12.0, tool_call_id="call_1",
        tool_name="web_search",
    )  # fmt: skip
    add_message(conn, "o_root", "assistant", "done", timestamp=13.0, token_count=7)
    add_message(conn, "a_child", "assistant", "third", timestamp=17.0)
    add_message(conn, "a_child", "user", "second", timestamp=16.0)
    add_message(conn, "a_child", "user", "first", timestamp=15.0)
    add_message(conn, "a_child", "assistant", "fourth", timestamp=17.0)
    add_message(conn, "o_tg", "user", "hello", timestamp=20.0)
    add_message(conn, "o_tg", "assistant", "oops", timestamp=21.0, tool_calls="{not json")
    conn.commit()
    conn.close()
    return path


def new_db(path: Path) -> Path:
    """The new column set: session keys, inactive and compacted rows, ``session_meta`` rows.

    Under ``TELEGRAM_KEY``: ``n_z`` (started 50, ended ``session_reset``), ``n_a`` (started 100,
    ended ``compression``, 5 rows: a ``session_meta`` row, 2 compacted, 2 active) and ``n_b``
    (its compression child, started 150, open, 5 rows: 2 inactive, 3 active). Under
    ``DISCORD_KEY`` (derived from chat and thread): ``n_d`` with 1 message; ``n_z`` has 1.
    4 sessions, 11 transcript messages, 4 of them retracted, 7 live.
    """
    conn = create(path, NEW)
    tg = {"source": "telegram", "user_id": "100", "chat_id": "100", "session_key": TELEGRAM_KEY}
    add_session(conn, "n_z", started_at=50.0, ended_at=60.0, end_reason="session_reset", **tg)
    add_session(
        conn, "n_a", started_at=100.0, ended_at=150.0, end_reason="compression",
        model_config=json.dumps({"temperature": 0.2}), system_prompt="be brief",
        future_column="kept", **tg,
    )  # fmt: skip
    add_session(conn, "n_b", parent_session_id="n_a", started_at=150.0, **tg)
    add_session(
        conn, "n_d", source="discord", user_id="9", chat_id="555", chat_type="group",
        thread_id="7", started_at=120.0,
    )  # fmt: skip
    add_message(conn, "n_z", "user", "old chat", timestamp=50.0)
    add_message(conn, "n_a", "session_meta", '{"tools": []}', timestamp=100.0)
    add_message(conn, "n_a", "user", "long question", timestamp=101.0, active=0, compacted=1)
    add_message(conn, "n_a", "assistant", "long answer", timestamp=102.0, active=0, compacted=1)
    add_message(
        conn, "n_a", "user", "summary", timestamp=103.0, display_kind="hidden",
        future_column="also kept",
    )  # fmt: skip
    add_message(conn, "n_a", "assistant", "ok", timestamp=104.0, reasoning="thinking")
    add_message(conn, "n_b", "user", "next", timestamp=151.0)
    add_message(conn, "n_b", "assistant", "reply", timestamp=152.0, finish_reason="stop")
    add_message(conn, "n_b", "user", "typo", timestamp=153.0, active=0)
    add_message(conn, "n_b", "assistant", "to typo", timestamp=154.0, active=0)
    add_message(conn, "n_b", "user", "fixed", timestamp=155.0)
    add_message(conn, "n_d", "user", "in a thread", timestamp=121.0)
    conn.commit()
    conn.close()
    return path


def large_db(path: Path, messages: int = 100_000, per_session: int = 50, seed: int = 7) -> Path:
    """``messages`` rows in sessions of ``per_session`` over 200 keys (new schema).

    About a third of the sessions are compression children of the previous one on the key,
    one row in 20 is inactive, one in 10 is an assistant turn with tool calls followed by its
    tool reply; content is 50 to 400 characters.
    """
    rng = random.Random(seed)
    conn = create(path, NEW)
    words = ["quick", "brown", "fox", "jumps", "over", "lazy", "dog", "agents", "cache"]
    last: dict[int, str] = {}
    t = 1_700_000_000.0
    for number in range(messages // per_session):
        chat = rng.randrange(200)
        sid = f"2026{number:08d}_{rng.getrandbits(32):08x}"
        parent = last.get(chat) if rng.random() < 0.33 else None
        add_session(
            conn, sid, source="telegram", user_id=str(chat), chat_id=str(chat),
            session_key=f"agent:main:telegram:dm:{chat}", parent_session_id=parent,
            started_at=t, ended_at=t + per_session, end_reason="compression",
            model="hermes-4", model_config='{"temperature": 0.7}', system_prompt="x" * 2000,
        )  # fmt: skip
        last[chat] = sid
        for index in range(per_session):
            t += 1.0
            text = " ".join(rng.choices(words, k=rng.randrange(10, 80)))
            role = "user" if index % 2 == 0 else "assistant"
            extra: dict[str, Any] = {"active": 0 if rng.random() < 0.05 else 1}
            if role == "assistant" and rng.random() < 0.1:
                extra["tool_calls"] = json.dumps(TOOL_CALLS)
            add_message(conn, sid, role, text, timestamp=t, token_count=len(text) // 4, **extra)
    conn.commit()
    conn.close()
    return path


if __name__ == "__main__":  # pragma: no cover - benchmark helper
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    large_db(target, count)
    print(target)
