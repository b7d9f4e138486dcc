"""``transcript_as_messages``: the live transcript ready to send to OpenAI or Anthropic."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import InvalidArgumentError, Ledger

KEY = "agent:main:cli:dm:1"
CALL = {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": '{"p": "."}'}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


@pytest.fixture
def session_id(ledger: Ledger) -> str:
    sid = ledger.open_session(KEY, system_prompt="You are Hermes.")
    ledger.append_message(sid, "user", [{"type": "text", "text": "what is this?"}, IMAGE])
    ledger.append_message(sid, "assistant", None, tool_calls=[CALL])
    ledger.append_message(sid, "tool", "a.txt b.txt", tool_call_id="call_1", tool_name="ls")
    ledger.append_message(sid, "assistant", "Two files.", name="hermes")
    return sid


def test_openai_format_starts_with_the_system_prompt_and_pairs_tool_calls(
    ledger: Ledger, session_id: str
) -> None:
    messages: Any = ledger.transcript_as_messages(session_id, format="openai")
    assert messages[0] == {"role": "system", "content": "You are Hermes."}
    assert messages[1]["content"][1] == IMAGE
    assert messages[2] == {"role": "assistant", "content": None, "tool_calls": [CALL]}
    assert messages[3] == {"role": "tool", "content": "a.txt b.txt", "tool_call_id": "call_1"}
    assert messages[4] == {"role": "assistant", "content": "Two files.", "name": "hermes"}


def test_anthropic_format_has_system_apart_and_tool_use_blocks(
    ledger: Ledger, session_id: str
) -> None:
    payload: Any = ledger.transcript_as_messages(session_id, format="anthropic")
    assert payload["system"] == "You are Hermes."
    user, call, result, reply = payload["messages"]
    assert user["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert call == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_1", "name": "ls", "input": {"p": "."}}],
    }
    assert result["role"] == "user"
    assert result["content"][0]["type"] == "tool_result"
    assert result["content"][0]["tool_use_id"] == "call_1"
    assert reply == {"role": "assistant", "content": [{"type": "text", "text": "Two files."}]}


def test_an_undone_tool_result_drops_its_unanswered_call(ledger: Ledger, session_id: str) -> None:
    """After undoing the reply and the tool result, the call has no result: it is left out."""
    ledger.retract_messages(session_id, count=2)
    messages: Any = ledger.transcript_as_messages(session_id)
    assert [m["role"] for m in messages] == ["system", "user"]


def test_an_unknown_format_is_refused(ledger: Ledger, session_id: str) -> None:
    with pytest.raises(InvalidArgumentError, match="format"):
        ledger.transcript_as_messages(session_id, format="gemini")
