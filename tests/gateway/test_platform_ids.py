"""Idempotency keys from chat platforms: a redelivered update is stored once; a clash raises."""

from __future__ import annotations

import uuid

import pytest

from ledger import IdempotencyConflictError, InvalidArgumentError, Ledger, platform_event_id
from tests.helpers import count_events

KEY = "agent:main:telegram:dm:5"


def test_the_same_update_gives_the_same_id_everywhere() -> None:
    """uuid5 of platform, scope and id: stable across processes and hosts."""
    first = platform_event_id("telegram", 123456789, scope="bot:42")
    assert first == platform_event_id("Telegram", "123456789", scope="bot:42")
    assert first.version == 5


def test_another_scope_or_platform_gives_another_id() -> None:
    base = platform_event_id("telegram", 1, scope="bot:42")
    assert base != platform_event_id("telegram", 1, scope="bot:43")
    assert base != platform_event_id("discord", 1, scope="bot:42")


def test_an_empty_platform_or_id_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        platform_event_id("", 1)
    with pytest.raises(InvalidArgumentError):
        platform_event_id("telegram", "")


def test_a_redelivered_update_is_stored_once(ledger: Ledger) -> None:
    """The webhook retried: the second append returns the first result and writes nothing."""
    session_id = ledger.open_session(KEY)
    update = platform_event_id("telegram", 777, scope="bot:1")
    first = ledger.append_message(session_id, "user", "hello", event_id=update)
    before = count_events(ledger)
    again = ledger.append_message(session_id, "user", "hello", event_id=update)
    assert again.duplicate
    assert (again.sequence, again.position) == (first.sequence, first.position)
    assert count_events(ledger) == before
    assert [m.content for m in ledger.transcript(session_id)] == ["hello"]


def test_different_content_under_one_update_id_is_a_conflict(ledger: Ledger) -> None:
    """Two different messages under one platform id raise, never return the old result."""
    session_id = ledger.open_session(KEY)
    update = platform_event_id("discord", 1234567890123)
    ledger.append_message(session_id, "user", "hello", event_id=update)
    before = count_events(ledger)
    with pytest.raises(IdempotencyConflictError, match="different content"):
        ledger.append_message(session_id, "user", "something else", event_id=update)
    assert count_events(ledger) == before


def test_a_batch_redelivered_is_stored_once(ledger: Ledger) -> None:
    session_id = ledger.open_session(KEY)
    ids = [platform_event_id("slack", f"1700000000.00{i}", scope="C42") for i in range(2)]
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    ledger.append_messages(session_id, messages, event_ids=ids)
    again = ledger.append_messages(session_id, messages, event_ids=ids)
    assert again.duplicate
    assert len(ledger.transcript(session_id)) == 2


def test_event_ids_and_messages_of_different_lengths_are_refused(ledger: Ledger) -> None:
    session_id = ledger.open_session(KEY)
    with pytest.raises(InvalidArgumentError, match="event_ids"):
        ledger.append_messages(
            session_id, [{"role": "user", "content": "a"}] * 2, event_ids=[uuid.uuid4()]
        )
