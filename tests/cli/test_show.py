"""``ledger show``: content parts, tool calls and results, retractions, caps and gateway times.

Each test builds the one message it looks at (on both backends) and reads the plain text the
command prints, so what it checks is what a person piping ``ledger show`` sees.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from ledger import Ledger
from ledger.cli import cli
from ledger.views import SessionHead, TranscriptMessage

KEY = "agent:main:discord:dm:7"
UTC = dt.UTC
STARTED = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SENT = dt.datetime(2024, 5, 1, 12, 1, 30, tzinfo=UTC)
ENDED = dt.datetime(2024, 5, 1, 13, 15, tzinfo=UTC)
TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "ls", "arguments": '{"path": "."}'},
}

Append = Callable[..., str]


@pytest.fixture
def session(migrated_url: str) -> Append:
    """``append(role, content, **fields)``: one message appended to session ``s1`` (opened on
    first use, with a start time, system prompt and model settings); returns the database URL."""
    opened: list[str] = []

    def append(role: str, content: Any, **fields: Any) -> str:
        with Ledger.open(migrated_url, writer="gw") as ledger:
            if not opened:
                opened.append(
                    ledger.open_session(
                        KEY,
                        session_id="s1",
                        started_at=STARTED,
                        system_prompt="You are terse.",
                        model_config={"temperature": 0.2},
                    )
                )
            ledger.append_message("s1", role, content, **fields)
        return migrated_url

    return append


def show(url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["show", "--url", url, "s1", *args])
    assert result.exit_code == 0, result.output
    return result.output


def transcript_lines(output: str) -> list[str]:
    """The message lines of ``show``'s output (the head summary left out)."""
    return [line for line in output.splitlines() if line[:5].strip().isdigit()]


def test_show_renders_text_parts_as_their_text(session: Append) -> None:
    url = session("user", [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}])
    out = show(url)
    assert "first" in out
    assert "second" in out
    assert "'type'" not in out
    assert '"type"' not in out


def test_show_renders_an_image_part_as_its_url(session: Append) -> None:
    url = session("user", [{"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}])
    assert "[image: https://x.test/cat.png]" in show(url)


def test_show_shortens_a_data_url_to_its_media_type_and_size(session: Append) -> None:
    data = base64.b64encode(b"\x89PNG" + bytes(296)).decode()
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    out = show(session("user", [image]))
    assert "[image: image/png, 300 bytes]" in out
    assert data[:40] not in out


def test_show_renders_other_parts_as_their_type(session: Append) -> None:
    url = session("user", [{"type": "input_audio", "input_audio": {"data": "AAAA"}}])
    out = show(url)
    assert "[input_audio]" in out
    assert "AAAA" not in out


def test_show_lists_tool_calls_with_name_call_id_and_arguments(session: Append) -> None:
    url = session("assistant", None, tool_calls=[TOOL_CALL])
    assert '→ ls(call_1) {"path": "."}' in show(url)


def test_show_labels_a_tool_result_with_its_tool_name_and_call_id(session: Append) -> None:
    url = session("tool", "a.txt\nb.txt", tool_call_id="call_1", tool_name="ls")
    assert "← ls(call_1) a.txt" in show(url)


def test_show_prints_nothing_for_none_content(session: Append) -> None:
    url = session("assistant", None, tool_calls=[TOOL_CALL])
    assert "None" not in show(url)


def test_show_marks_retracted_messages_in_plain_text(session: Append) -> None:
    session("user", "kept")
    url = session("assistant", "undone")
    with Ledger.open(url, writer="gw") as ledger:
        ledger.retract_messages("s1", 1, reason="retry")
    kept, undone = transcript_lines(show(url, "--all"))
    assert "[retracted]" in undone
    assert "undone" in undone
    assert "[retracted]" not in kept


def test_show_caps_each_message_with_a_note_of_what_was_cut(session: Append) -> None:
    url = session("user", "x" * 150)
    (line,) = transcript_lines(show(url, "--max-chars", "100"))
    assert "x" * 100 in line
    assert "x" * 101 not in line
    assert "50 characters cut" in line


def test_show_max_chars_zero_shows_messages_whole(session: Append) -> None:
    url = session("user", "y" * 5000)
    out = show(url, "--max-chars", "0")
    assert "y" * 5000 in out
    assert "characters cut" not in out


def test_show_caps_messages_at_2000_characters_by_default(session: Append) -> None:
    url = session("user", "z" * 2500)
    out = show(url)
    assert "z" * 2000 in out
    assert "z" * 2001 not in out
    assert "500 characters cut" in out


def test_show_prints_the_gateway_time_of_each_message(session: Append) -> None:
    url = session("user", "hello", created_at=SENT)
    (line,) = transcript_lines(show(url))
    assert "2024-05-01 12:01:30" in line


def test_show_head_summary_has_started_ended_end_reason_and_last_activity(
    session: Append,
) -> None:
    url = session("user", "hello", created_at=SENT)
    with Ledger.open(url, writer="gw") as ledger:
        ledger.close_session("s1", reason="idle timeout", ended_at=ENDED)
    head = show(url).split("hello")[0]
    assert "started 2024-05-01 12:00:00" in head
    assert "ended 2024-05-01 13:15:00 (idle timeout)" in head
    assert "last activity 2024-05-01 13:15:00" in head


def test_show_head_summary_caps_the_system_prompt(session: Append) -> None:
    url = session("user", "hello")
    with Ledger.open(url, writer="gw") as ledger:
        ledger.configure_session("s1", system_prompt="p" * 300)
    out = show(url, "--max-chars", "100")
    assert "system prompt: " + "p" * 100 in out
    assert "p" * 101 not in out
    assert "200 characters cut" in out


def test_show_json_has_every_message_field(session: Append) -> None:
    url = session("user", "hello", name="alice", metadata={"platform_id": "42"})
    (message,) = json.loads(show(url, "--json"))["messages"]
    assert set(message) == set(TranscriptMessage.__struct_fields__)
    assert (message["name"], message["metadata"]) == ("alice", {"platform_id": "42"})


def test_show_json_keeps_content_parts_as_a_list(session: Append) -> None:
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    (message,) = json.loads(show(session("user", parts), "--json"))["messages"]
    assert message["content"] == parts


def test_show_json_gives_message_times_in_iso_8601(session: Append) -> None:
    url = session("user", "hello", created_at=SENT)
    (message,) = json.loads(show(url, "--json"))["messages"]
    assert dt.datetime.fromisoformat(message["created_at"]) == SENT
    assert dt.datetime.fromisoformat(message["recorded_at"]).tzinfo is not None


def test_show_json_has_reasoning_fields_and_null_content(session: Append) -> None:
    details = [{"type": "reasoning.text", "text": "step"}]
    url = session(
        "assistant",
        None,
        tool_calls=[TOOL_CALL],
        reasoning_content="thinking",
        reasoning_details=details,
    )
    (message,) = json.loads(show(url, "--json"))["messages"]
    assert message["content"] is None
    assert (message["reasoning_content"], message["reasoning_details"]) == ("thinking", details)
    assert message["tool_calls"] == [TOOL_CALL]


def test_show_json_has_every_head_field(session: Append) -> None:
    url = session("user", "hello", created_at=SENT)
    with Ledger.open(url, writer="gw") as ledger:
        ledger.close_session("s1", reason="idle timeout", ended_at=ENDED)
    head = json.loads(show(url, "--json"))["head"]
    assert set(head) == set(SessionHead.__struct_fields__)
    assert dt.datetime.fromisoformat(head["started_at"]) == STARTED
    assert dt.datetime.fromisoformat(head["ended_at"]) == ENDED
    assert dt.datetime.fromisoformat(head["last_activity_at"]) == ENDED
    assert head["end_reason"] == "idle timeout"
    assert head["system_prompt"] == "You are terse."
    assert head["model_config"] == {"temperature": 0.2}
