"""Everything a gateway writes comes back: every message and session field, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger import (
    InvalidArgumentError,
    InvalidEventError,
    Ledger,
    SessionClosedError,
    SessionNotFoundError,
)
from projections.rebuild import verify
from projections.sessions import SessionsProjection
from tests.helpers import count_events

KEY = "agent:main:telegram:dm:7"
WHEN = dt.datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
PARTS = [
    {"type": "text", "text": "what is in this picture?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
]
CALLS = [{"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]


@pytest.fixture
def session_id(ledger: Ledger) -> str:
    return ledger.open_session(KEY)


def test_every_known_message_field_round_trips(ledger: Ledger, session_id: str) -> None:
    """created_at, name, reasoning fields and metadata come back from the transcript as given."""
    ledger.append_message(
        session_id,
        "assistant",
        "thinking done",
        created_at=WHEN,
        metadata={"platform": {"message_id": 99}, "edited": False},
        name="helper",
        token_count=12,
        finish_reason="stop",
        reasoning="short",
        reasoning_content="the long chain",
        reasoning_details=[{"type": "reasoning.text", "text": "step 1"}],
    )
    (message,) = ledger.transcript(session_id)
    assert message.created_at == WHEN
    assert message.metadata == {"platform": {"message_id": 99}, "edited": False}
    assert message.name == "helper"
    assert (message.token_count, message.finish_reason) == (12, "stop")
    assert message.reasoning == "short"
    assert message.reasoning_content == "the long chain"
    assert message.reasoning_details == [{"type": "reasoning.text", "text": "step 1"}]
    assert message.recorded_at != WHEN


def test_content_parts_round_trip_exactly(ledger: Ledger, session_id: str) -> None:
    """A list of content parts (text + image) is stored and read back unchanged."""
    ledger.append_message(session_id, "user", PARTS)
    assert ledger.transcript(session_id)[0].content == PARTS


def test_none_content_with_tool_calls_round_trips(ledger: Ledger, session_id: str) -> None:
    """An assistant turn that only calls tools keeps content None (not '')."""
    ledger.append_message(session_id, "assistant", None, tool_calls=CALLS)
    message = ledger.transcript(session_id)[0]
    assert message.content is None
    assert message.tool_calls == CALLS


def test_developer_role_is_accepted(ledger: Ledger, session_id: str) -> None:
    ledger.append_message(session_id, "developer", "be terse")
    assert ledger.transcript(session_id)[0].role == "developer"


def test_an_unknown_field_is_refused_and_nothing_is_written(
    ledger: Ledger, session_id: str
) -> None:
    """A keyword the ledger has no field for raises, naming it; it is never dropped."""
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError, match="reasoning_contnet"):
        ledger.append_message(session_id, "user", "hi", reasoning_contnet="typo")
    assert count_events(ledger) == before


def test_a_naive_created_at_is_refused(ledger: Ledger, session_id: str) -> None:
    with pytest.raises(InvalidEventError, match="created_at"):
        ledger.append_message(session_id, "user", "hi", created_at=dt.datetime(2025, 1, 1))


def test_a_nul_in_a_text_part_is_refused(ledger: Ledger, session_id: str) -> None:
    with pytest.raises(InvalidArgumentError, match="NUL"):
        ledger.append_message(session_id, "user", [{"type": "text", "text": "a\x00b"}])


def test_a_16_mib_message_is_accepted_and_read_back_intact(ledger: Ledger, session_id: str) -> None:
    """Tool output of 16 MiB (non-Latin text included) is stored and comes back byte for byte."""
    content = ("東京の天気は晴れです " * 64 + "\n") * (16 * 1024 * 1024 // (64 * 31 + 1) + 1)
    assert len(content.encode()) > 16 * 1024 * 1024
    ledger.append_message(session_id, "tool", content, tool_call_id="c1", tool_name="cat")
    assert ledger.transcript(session_id)[0].content == content
    events = list(ledger.read_stream(f"session-{session_id}"))
    assert events[-1].event.content == content  # type: ignore[attr-defined]


def test_a_message_over_the_limit_names_the_session_and_size(
    migrated_url: str, settings: object
) -> None:
    """Above LEDGER_MAX_EVENT_BYTES: EventTooLargeError naming the stream and the size."""
    import dataclasses

    from ledger import EventTooLargeError, Settings

    assert isinstance(settings, Settings)
    small = dataclasses.replace(settings, max_event_bytes=10_000)
    with Ledger.open(migrated_url, settings=small) as ledger:
        session_id = ledger.open_session(KEY)
        with pytest.raises(EventTooLargeError) as raised:
            ledger.append_message(session_id, "tool", "x" * 20_000)
    assert session_id in str(raised.value)
    assert raised.value.size > 20_000


def test_session_times_prompt_and_config_are_in_the_head(ledger: Ledger) -> None:
    """started_at, system_prompt and model_config given at open are the head's."""
    session_id = ledger.open_session(
        KEY, started_at=WHEN, system_prompt="You are Hermes.", model_config={"temperature": 0.2}
    )
    head = ledger.head(session_id)
    assert head is not None
    assert head.started_at == WHEN
    assert head.last_activity_at == WHEN
    assert head.system_prompt == "You are Hermes."
    assert head.model_config == {"temperature": 0.2}


def test_close_keeps_ended_at_and_end_reason(ledger: Ledger, session_id: str) -> None:
    ended = WHEN + dt.timedelta(hours=1)
    ledger.close_session(session_id, reason="user_exit", ended_at=ended)
    head = ledger.head(session_id)
    assert head is not None
    assert (head.state, head.ended_at, head.end_reason) == ("closed", ended, "user_exit")


def test_reopen_lets_a_closed_session_take_messages(ledger: Ledger, session_id: str) -> None:
    """Hermes' /resume of an ended session: reopen, then append, and the head is open."""
    ledger.close_session(session_id)
    with pytest.raises(SessionClosedError):
        ledger.append_message(session_id, "user", "late")
    ledger.reopen_session(session_id)
    ledger.append_message(session_id, "user", "back")
    head = ledger.head(session_id)
    assert head is not None
    assert (head.state, head.ended_at, head.end_reason, head.message_count) == (
        "open",
        None,
        None,
        1,
    )


def test_reopen_of_an_open_session_is_a_no_op(ledger: Ledger, session_id: str) -> None:
    assert ledger.reopen_session(session_id) is None


def test_configure_session_is_content_and_moves_the_sequence(
    ledger: Ledger, session_id: str
) -> None:
    before = ledger.head(session_id)
    assert before is not None
    ledger.configure_session(session_id, system_prompt="v2", model_config={"top_p": 0.9})
    head = ledger.head(session_id)
    assert head is not None
    assert head.sequence == before.sequence + 1
    assert (head.system_prompt, head.model_config) == ("v2", {"top_p": 0.9})


def test_configure_session_with_nothing_is_refused(ledger: Ledger, session_id: str) -> None:
    with pytest.raises(InvalidArgumentError):
        ledger.configure_session(session_id)


def test_a_title_can_be_cleared(ledger: Ledger, session_id: str) -> None:
    ledger.set_title(session_id, "first")
    ledger.set_title(session_id, None)
    head = ledger.head(session_id)
    assert head is not None
    assert head.title is None


def test_rewind_from_a_message_retracts_it_and_everything_after(
    ledger: Ledger, session_id: str
) -> None:
    ids = [ledger.append_message(session_id, "user", f"m{i}") for i in range(4)]
    del ids
    messages = ledger.transcript(session_id)
    ledger.retract_messages(session_id, from_message_id=messages[1].message_id)
    assert [m.content for m in ledger.transcript(session_id)] == ["m0"]
    retracted = [m for m in ledger.transcript(session_id, include_retracted=True) if m.retracted]
    assert [m.content for m in retracted] == ["m1", "m2", "m3"]


def test_rewind_from_an_unknown_message_is_refused(ledger: Ledger, session_id: str) -> None:
    ledger.append_message(session_id, "user", "m0")
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError, match="from_message_id"):
        ledger.retract_messages(session_id, from_message_id="nope")
    assert count_events(ledger) == before


def test_usage_totals_add_up_and_never_move_the_sequence(ledger: Ledger, session_id: str) -> None:
    before = ledger.head(session_id)
    assert before is not None
    ledger.record_usage(session_id, input_tokens=100, output_tokens=20, cost_usd=0.01, model="m1")
    ledger.record_usage(session_id, input_tokens=50, cache_read_tokens=40, reasoning_tokens=5)
    usage = ledger.usage(session_id)
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (2, 150, 20)
    assert (usage.cache_read_tokens, usage.reasoning_tokens) == (40, 5)
    assert usage.cost_usd == pytest.approx(0.01)
    assert usage.model == "m1"
    head = ledger.head(session_id)
    assert head is not None
    assert head.sequence == before.sequence


def test_usage_of_an_unknown_session_is_refused(ledger: Ledger) -> None:
    with pytest.raises(SessionNotFoundError):
        ledger.usage("nope")


def test_sessions_are_ordered_by_the_gateways_last_activity(ledger: Ledger) -> None:
    """An imported old session sorts below a current one though it was recorded later."""
    current = ledger.open_session("k:1")
    ledger.append_message(current, "user", "now")
    old = ledger.open_session("k:2", started_at=WHEN)
    ledger.append_message(old, "user", "then", created_at=WHEN)
    assert [h.session_id for h in ledger.sessions()][:2] == [current, old]


def test_views_with_every_new_field_equal_a_rebuild(ledger: Ledger) -> None:
    session_id = ledger.open_session(KEY, started_at=WHEN, system_prompt="p", model_config={})
    ledger.append_message(session_id, "user", PARTS, created_at=WHEN, metadata={"a": 1})
    ledger.append_messages(
        session_id,
        [
            {"role": "assistant", "content": None, "tool_calls": CALLS},
            {"role": "tool", "content": "a.txt", "tool_call_id": "call_1", "name": "ls"},
        ],
    )
    ledger.record_usage(session_id, input_tokens=3)
    ledger.configure_session(session_id, model="m2")
    ledger.retract_messages(session_id)
    ledger.set_title(session_id, None)
    ledger.close_session(session_id, reason="done", ended_at=WHEN)
    ledger.reopen_session(session_id)
    assert verify(ledger.store, SessionsProjection()) == []
