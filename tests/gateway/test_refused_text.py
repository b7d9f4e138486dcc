"""What the ledger refuses at the boundary, the same on SQLite and PostgreSQL.

PostgreSQL cannot store NUL in text or JSON, and no UTF-8 column holds a lone surrogate; SQLite
would store NUL. Both backends refuse both, with :class:`InvalidArgumentError` naming the
field, and write nothing, so a SQLite ledger always moves to PostgreSQL. Counts wider than
their column (``token_count`` is INTEGER) are refused alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger import InvalidArgumentError, InvalidEventError, Ledger, LedgerError
from ledger.codec import Codec
from ledger.events import MessageAppended
from tests.gateway.support import KEY
from tests.helpers import count_events

NUL = "a\x00b"
SURROGATE = "a\ud800b"


def _refused(ledger: Ledger, call: Callable[[], object], field: str) -> None:
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError) as raised:
        call()
    assert raised.value.argument.startswith(field), raised.value
    assert count_events(ledger) == before


OPEN_FIELDS = ["session_id", "session_key", "user_id", "title", "model", "system_prompt"]


@pytest.mark.parametrize("field", OPEN_FIELDS)
@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_open_session_refuses_unstorable_text_in_each_field(
    ledger: Ledger, field: str, bad: str
) -> None:
    """NUL or a lone surrogate in any text of ``open_session``: refused, nothing written."""
    options: dict[str, Any] = {field: bad}
    key = options.pop("session_key", KEY)
    _refused(ledger, lambda: ledger.open_session(key, **options), field)


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_open_session_refuses_unstorable_text_in_model_config(ledger: Ledger, bad: str) -> None:
    """A value of ``model_config`` is checked like every other text."""
    _refused(ledger, lambda: ledger.open_session(KEY, model_config={"stop": bad}), "model_config")


MESSAGE_CASES: dict[str, dict[str, Any]] = {
    "content": {"content": "x"},
    "content_parts": {"content": [{"type": "text", "text": "x"}]},
    "metadata_value": {"metadata": {"note": "x"}},
    "metadata_key": {"metadata": {"x": 1}},
    "reasoning": {"reasoning": "x"},
    "tool_calls": {"tool_calls": [{"id": "c1", "function": {"arguments": "x"}}]},
    "name": {"name": "x"},
}


def _with_bad(value: Any, bad: str) -> Any:
    """``value`` with every ``"x"`` (string or dict key) replaced by ``bad``."""
    if value == "x":
        return bad
    if isinstance(value, dict):
        return {(bad if k == "x" else k): _with_bad(v, bad) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_bad(v, bad) for v in value]
    return value


@pytest.mark.parametrize("case", sorted(MESSAGE_CASES))
@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_append_message_refuses_unstorable_text_anywhere(
    ledger: Ledger, case: str, bad: str
) -> None:
    """NUL or a lone surrogate in content, content parts, metadata (keys too), reasoning…"""
    session_id = ledger.open_session(KEY)
    fields = {"content": "hello", **_with_bad(MESSAGE_CASES[case], bad)}
    field = next(iter(MESSAGE_CASES[case]))
    _refused(ledger, lambda: ledger.append_message(session_id, "user", **fields), field)


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_append_message_refuses_an_unstorable_session_id(ledger: Ledger, bad: str) -> None:
    """The session id is checked before any statement runs."""
    _refused(ledger, lambda: ledger.append_message(bad, "user", "hi"), "session_id")


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_set_title_refuses_unstorable_text(ledger: Ledger, bad: str) -> None:
    """A title is text like any other."""
    session_id = ledger.open_session(KEY)
    _refused(ledger, lambda: ledger.set_title(session_id, bad), "title")


READS: dict[str, Callable[[Ledger, str], object]] = {
    "head": lambda ledger, bad: ledger.head(bad),
    "transcript": lambda ledger, bad: ledger.transcript(bad),
    "active_session": lambda ledger, bad: ledger.active_session(bad),
    "usage": lambda ledger, bad: ledger.usage(bad),
    "sessions": lambda ledger, bad: ledger.sessions(session_key=bad),
    "read_stream": lambda ledger, bad: list(ledger.read_stream(f"session-{bad}")),
}


@pytest.mark.parametrize("read", sorted(READS))
@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_reads_refuse_an_unstorable_identifier(ledger: Ledger, read: str, bad: str) -> None:
    """A read given an id no backend could hold: InvalidArgumentError, never a driver error."""
    with pytest.raises(InvalidArgumentError):
        READS[read](ledger, bad)


def test_a_text_holding_a_backslash_u0000_is_stored(ledger: Ledger) -> None:
    """The escaped form ``\\u0000`` as six characters of text is ordinary text."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "literal \\u0000 here", metadata={"k": "\\u0000"})
    assert ledger.transcript(session_id)[0].content == "literal \\u0000 here"


def test_a_token_count_wider_than_its_column_is_refused(ledger: Ledger) -> None:
    """``token_count`` >= 2**31 (an INTEGER column): a typed error on both backends."""
    session_id = ledger.open_session(KEY)
    before = count_events(ledger)
    with pytest.raises(InvalidEventError, match="token_count"):
        ledger.append_message(session_id, "user", "hi", token_count=2**31)
    assert count_events(ledger) == before


def test_the_largest_token_count_is_stored(ledger: Ledger) -> None:
    """``2**31 - 1`` fits the column on both backends."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hi", token_count=2**31 - 1)
    assert ledger.transcript(session_id)[0].token_count == 2**31 - 1


def test_a_usage_count_wider_than_bigint_is_refused(ledger: Ledger) -> None:
    """Usage totals are BIGINT: 2**63 is refused with a typed error."""
    session_id = ledger.open_session(KEY)
    with pytest.raises(LedgerError):
        ledger.record_usage(session_id, input_tokens=2**63)


def test_the_codec_refuses_nul_in_an_event_built_directly() -> None:
    """``EventStore.append`` callers get the same check: it lives in the codec."""
    codec = Codec(max_event_bytes=1 << 20)
    event = MessageAppended(session_id="s", message_id="m", role="user", content=NUL)
    with pytest.raises(InvalidArgumentError, match="content"):
        codec.encode(event)
