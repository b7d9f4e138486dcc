"""A Hermes v30-shaped ``state.db``: prompts by hash, structured content, reasoning, usage.

``v30_db`` writes, with the current ``sessions``/``messages`` DDL (``fixture.NEW``) plus the
``system_prompts (hash, prompt)`` table of Hermes v25+, these sessions under ``TELEGRAM_KEY``:

* ``v_main`` (started ``T0``, open, titled "Photos", prompt by hash, ``model_config``, usage
  counters and cost): a multimodal user turn stored as ``"\\x00json:" + JSON``; an assistant
  turn with NULL content, tool calls, ``reasoning_content`` and ``reasoning_details``; a 3 MiB
  tool result in Japanese; an assistant reply; a row whose ``\\x00json:`` payload is broken.
* ``v_sub`` (a subagent's child of ``v_main``, source ``subagent``), one message.
* ``v_done`` (ended ``user_exit`` at ``T0 + 500``, its prompt inline as before v25).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.hermes.fixture import NEW, TELEGRAM_KEY, add_message, add_session

T0 = 1_764_000_000.25
PROMPT = "You are Hermes, a helpful agent."
PARTS = [
    {"type": "text", "text": "what is in this picture?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
]
CALLS = [{"id": "call_9", "type": "function", "function": {"name": "read", "arguments": "{}"}}]
DETAILS = [{"type": "reasoning.summary", "summary": "look at the file"}]
BIG = ("東京の天気は晴れです。" * 100 + "\n") * 3200  # about 3 MiB of UTF-8
USAGE = {
    "input_tokens": 1500,
    "output_tokens": 300,
    "cache_read_tokens": 1000,
    "cache_write_tokens": 200,
    "reasoning_tokens": 50,
    "estimated_cost_usd": 0.0125,
}


def v30_db(path: Path) -> Path:
    """The scenario above; returns ``path``."""
    conn = sqlite3.connect(path)
    conn.executescript(NEW + "CREATE TABLE system_prompts (hash TEXT PRIMARY KEY, prompt TEXT);")
    conn.execute("INSERT INTO system_prompts VALUES ('h1', ?)", (PROMPT,))
    tg = {"source": "telegram", "user_id": "100", "chat_id": "100", "session_key": TELEGRAM_KEY}
    add_session(
        conn, "v_main", started_at=T0, title="Photos", system_prompt_hash="h1",
        model_config=json.dumps({"temperature": 0.3}), model="hermes-4", **USAGE, **tg,
    )  # fmt: skip
    add_session(conn, "v_sub", parent_session_id="v_main", started_at=T0 + 50, **{
        **tg, "source": "subagent", "session_key": "agent:sub:v_main",
    })  # fmt: skip
    add_session(
        conn, "v_done", started_at=T0 - 1000, ended_at=T0 + 500, end_reason="user_exit",
        system_prompt="an inline prompt", **{**tg, "session_key": "agent:main:cli:dm:old"},
    )  # fmt: skip
    add_message(conn, "v_main", "user", "\x00json:" + json.dumps(PARTS), timestamp=T0 + 1)
    add_message(
        conn, "v_main", "assistant", None, timestamp=T0 + 2, tool_calls=json.dumps(CALLS),
        reasoning_content="I should read it.", reasoning_details=json.dumps(DETAILS),
    )  # fmt: skip
    add_message(
        conn, "v_main", "tool", BIG, timestamp=T0 + 3, tool_call_id="call_9", tool_name="read"
    )
    add_message(conn, "v_main", "assistant", "A harbour at dusk.", timestamp=T0 + 4)
    add_message(conn, "v_main", "user", "\x00json:{broken", timestamp=T0 + 5)
    add_message(conn, "v_sub", "user", "sub task", timestamp=T0 + 51)
    add_message(conn, "v_done", "user", "long ago", timestamp=T0 - 999)
    conn.commit()
    conn.close()
    return path
