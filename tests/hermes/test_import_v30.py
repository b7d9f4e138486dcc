"""A Hermes v30 ``state.db`` imports field by field: nothing a gateway stored is lost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.hermes._importer import import_hermes
from tests.hermes.fixture_v30 import BIG, CALLS, DETAILS, PARTS, PROMPT, T0, USAGE


def _at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@pytest.fixture
def imported(ledger: Ledger, v30_path: Path) -> Ledger:
    import_hermes(ledger, v30_path)
    return ledger


def test_session_times_come_from_hermes(imported: Ledger) -> None:
    head = imported.head("v_done")
    assert head is not None
    assert (head.started_at, head.ended_at) == (_at(T0 - 1000), _at(T0 + 500))
    assert head.last_activity_at == _at(T0 + 500)


def test_the_end_reason_reaches_the_head(imported: Ledger) -> None:
    head = imported.head("v_done")
    assert head is not None
    assert (head.state, head.end_reason) == ("closed", "user_exit")


def test_a_prompt_stored_by_hash_is_the_sessions_system_prompt(imported: Ledger) -> None:
    head = imported.head("v_main")
    assert head is not None
    assert head.system_prompt == PROMPT


def test_an_inline_prompt_of_an_older_schema_is_kept_too(imported: Ledger) -> None:
    head = imported.head("v_done")
    assert head is not None
    assert head.system_prompt == "an inline prompt"


def test_model_config_becomes_the_heads_model_config(imported: Ledger) -> None:
    head = imported.head("v_main")
    assert head is not None
    assert head.model_config == {"temperature": 0.3}


def test_session_usage_is_carried(imported: Ledger) -> None:
    usage = imported.usage("v_main")
    assert usage.input_tokens == USAGE["input_tokens"]
    assert usage.cache_read_tokens == USAGE["cache_read_tokens"]
    assert usage.reasoning_tokens == USAGE["reasoning_tokens"]
    assert usage.cost_usd == pytest.approx(USAGE["estimated_cost_usd"])


def test_json_content_becomes_content_parts(imported: Ledger) -> None:
    assert imported.transcript("v_main")[0].content == PARTS


def test_null_content_stays_none_with_its_tool_calls_and_reasoning(imported: Ledger) -> None:
    message = imported.transcript("v_main")[1]
    assert message.content is None
    assert message.tool_calls == CALLS
    assert message.reasoning_content == "I should read it."
    assert message.reasoning_details == DETAILS


def test_a_multi_megabyte_tool_result_imports_intact(imported: Ledger) -> None:
    message = imported.transcript("v_main")[2]
    assert message.content == BIG
    assert len(BIG.encode()) > 3_000_000


def test_message_times_are_hermes_timestamps(imported: Ledger) -> None:
    assert [m.created_at for m in imported.transcript("v_main")][:2] == [_at(T0 + 1), _at(T0 + 2)]


def test_a_broken_json_row_is_reported_and_its_session_kept(ledger: Ledger, v30_path: Path) -> None:
    summary = import_hermes(ledger, v30_path)
    assert list(summary.bad_rows) == ["v_main/5"]
    assert "json" in summary.bad_rows["v_main/5"]
    assert ledger.transcript("v_main")[-1].content == "{broken"
    assert len(ledger.transcript("v_main")) == 5


def test_a_subagent_child_is_a_delegate_not_a_compression(imported: Ledger) -> None:
    opened = next(iter(imported.read_stream("session-v_sub"))).event
    assert opened.reason == "delegate"  # type: ignore[attr-defined]


def test_sessions_order_by_hermes_activity(imported: Ledger) -> None:
    """Latest Hermes activity first: v_done ended at T0+500, v_sub wrote at T0+51, v_main at
    T0+5; all were recorded by the import at nearly the same moment."""
    assert [h.session_id for h in imported.sessions()] == ["v_done", "v_sub", "v_main"]


def test_the_source_gets_no_wal_or_shm_beside_it(ledger: Ledger, v30_path: Path) -> None:
    """Opening the state.db read-only creates no -wal/-shm files next to it."""
    import_hermes(ledger, v30_path)
    beside = sorted(p.name for p in v30_path.parent.iterdir() if p.name.startswith("v30"))
    assert beside == ["v30-state.db"]
