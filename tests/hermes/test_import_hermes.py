"""Tests of a first import by the Hermes ``state.db`` importer (``ledger.hermes``).

The sources are built by ``tests/hermes/fixture.py`` with the old and the new Hermes column
sets; their docstrings list what each scenario holds and so what an import must produce. Every
test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, MessageAppended, MessagesRetracted, SessionOpened, SessionSwitched
from ledger.config import Settings
from ledger.hermes._importer import ImportSummary, count_hermes_messages, import_hermes
from tests.hermes import fixture as hermes_fixture
from tests.hermes.fixture import CLI_KEY, DISCORD_KEY, TELEGRAM_KEY
from tests.hermes.support import add_rows


def stream_events(ledger: Ledger, stream: str) -> list[Any]:
    return [record.event for record in ledger.read_stream(stream)]


def opened_event(ledger: Ledger, session_id: str) -> SessionOpened:
    event = stream_events(ledger, f"session-{session_id}")[0]
    assert isinstance(event, SessionOpened)
    return event


def message_event(ledger: Ledger, session_id: str, content: str) -> MessageAppended:
    (event,) = [
        e
        for e in stream_events(ledger, f"session-{session_id}")
        if isinstance(e, MessageAppended) and e.content == content
    ]
    return event


# -- what one import writes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "expected"),
    [(hermes_fixture.old_db, (3, 10, 0)), (hermes_fixture.new_db, (4, 11, 4))],
    ids=["old-schema", "new-schema"],
)
def test_import_counts_every_session_message_and_retraction(
    ledger: Ledger, tmp_path: Path, builder: Any, expected: tuple[int, int, int]
) -> None:
    """The summary counts the sessions, transcript messages and retractions written."""
    summary = import_hermes(ledger, builder(tmp_path / "state.db"))
    assert (summary.sessions, summary.messages, summary.retractions) == expected


def test_live_message_count_equals_the_active_rows_of_each_session(
    ledger: Ledger, new_path: Path
) -> None:
    """Each head's message_count is the number of active, not compacted, transcript rows."""
    import_hermes(ledger, new_path)
    conn = sqlite3.connect(new_path)
    active = dict(
        conn.execute(
            "SELECT session_id, SUM(role != 'session_meta' AND active = 1 AND compacted = 0) "
            "FROM messages GROUP BY session_id"
        ).fetchall()
    )
    conn.close()
    counts = {sid: ledger.head(sid).message_count for sid in active}  # type: ignore[union-attr]
    assert counts == active


def test_transcript_follows_timestamp_then_row_id(ledger: Ledger, old_path: Path) -> None:
    """Messages are appended in Hermes timestamp order, ties broken by row id."""
    import_hermes(ledger, old_path)
    contents = [m.content for m in ledger.transcript("a_child")]
    assert contents == ["first", "second", "third", "fourth"]


def test_compression_child_links_to_its_parent(ledger: Ledger, new_path: Path) -> None:
    """A session with parent_session_id opens with reason compress and the parent's lineage."""
    import_hermes(ledger, new_path)
    assert ledger.lineage("n_b") == ["n_a", "n_b"]
    assert opened_event(ledger, "n_b").reason == "compress"


def test_parents_are_imported_before_their_children(ledger: Ledger, old_path: Path) -> None:
    """A parent is written first even when its child sorts before it by start time and id."""
    import_hermes(ledger, old_path)
    parent = next(ledger.read_stream("session-o_root")).position
    child = next(ledger.read_stream("session-a_child")).position
    assert parent < child


def test_tool_calls_json_becomes_a_list_of_dicts(ledger: Ledger, old_path: Path) -> None:
    """``tool_calls`` JSON text is decoded into the event's list of dicts."""
    import_hermes(ledger, old_path)
    (call,) = [m for m in ledger.transcript("o_root") if m.tool_calls]
    assert call.tool_calls == hermes_fixture.TOOL_CALLS


def test_malformed_tool_calls_are_kept_raw(ledger: Ledger, old_path: Path) -> None:
    """``tool_calls`` that is not JSON is kept as ``[{"raw": text}]``."""
    import_hermes(ledger, old_path)
    assert message_event(ledger, "o_tg", "oops").tool_calls == [{"raw": "{not json"}]


def test_tool_reply_keeps_its_tool_name_and_call_id(ledger: Ledger, old_path: Path) -> None:
    """A tool row keeps ``tool_name`` and ``tool_call_id``."""
    import_hermes(ledger, old_path)
    reply = message_event(ledger, "o_root", "results")
    assert (reply.tool_name, reply.tool_call_id) == ("web_search", "call_1")


def test_ended_sessions_are_closed_with_their_end_reason(ledger: Ledger, old_path: Path) -> None:
    """A session with ended_at ends with SessionClosed(end_reason, else ``ended``)."""
    import_hermes(ledger, old_path)
    reasons = {
        sid: stream_events(ledger, f"session-{sid}")[-1].reason for sid in ("o_root", "o_tg")
    }
    assert reasons == {"o_root": "user_exit", "o_tg": "ended"}


def test_sessions_without_ended_at_stay_open(ledger: Ledger, old_path: Path) -> None:
    """A session Hermes never ended is open in the ledger."""
    import_hermes(ledger, old_path)
    assert ledger.head("a_child").state == "open"  # type: ignore[union-attr]


def test_each_key_ends_on_its_latest_started_session(ledger: Ledger, new_path: Path) -> None:
    """The active session of a key is its most recently started one."""
    import_hermes(ledger, new_path)
    assert ledger.active_session(TELEGRAM_KEY) == "n_b"


def test_key_stream_holds_a_switch_per_session_in_start_order(
    ledger: Ledger, new_path: Path
) -> None:
    """The key stream records every session of the key, each naming the one before."""
    import_hermes(ledger, new_path)
    switches = stream_events(ledger, f"key-{TELEGRAM_KEY}")
    assert all(isinstance(s, SessionSwitched) for s in switches)
    assert [(s.previous_session_id, s.session_id) for s in switches] == [
        (None, "n_z"),
        ("n_z", "n_a"),
        ("n_a", "n_b"),
    ]


def test_missing_session_key_is_derived_from_source_and_user(
    ledger: Ledger, old_path: Path
) -> None:
    """Without a session_key column the key is ``agent:main:<source>:dm:<user or unknown>``."""
    import_hermes(ledger, old_path)
    keys = {h.session_id: h.session_key for h in ledger.sessions()}
    assert keys == {"o_root": CLI_KEY, "a_child": CLI_KEY, "o_tg": "agent:main:telegram:dm:77"}


def test_null_session_key_is_derived_from_chat_type_chat_and_thread(
    ledger: Ledger, new_path: Path
) -> None:
    """A NULL session_key is derived from chat_type, chat_id and thread_id when present."""
    import_hermes(ledger, new_path)
    assert ledger.head("n_d").session_key == DISCORD_KEY  # type: ignore[union-attr]


def test_compacted_rows_are_retracted_with_reason_compact(ledger: Ledger, new_path: Path) -> None:
    """Rows with compacted = 1 are retracted with reason ``compact``."""
    import_hermes(ledger, new_path)
    retracted = [
        e for e in stream_events(ledger, "session-n_a") if isinstance(e, MessagesRetracted)
    ]
    assert {e.reason for e in retracted} == {"compact"}
    assert len(retracted) == 2


def test_inactive_rows_are_retracted_with_reason_undo(ledger: Ledger, new_path: Path) -> None:
    """Rows with active = 0 (not compacted) are retracted with reason ``undo``."""
    import_hermes(ledger, new_path)
    retracted = [
        e for e in stream_events(ledger, "session-n_b") if isinstance(e, MessagesRetracted)
    ]
    assert [e.reason for e in retracted] == ["undo", "undo"]


def test_retraction_directly_follows_its_message(ledger: Ledger, new_path: Path) -> None:
    """Each retraction is the event right after the message it takes back."""
    import_hermes(ledger, new_path)
    events = stream_events(ledger, "session-n_b")
    pairs = [(events[i - 1], e) for i, e in enumerate(events) if isinstance(e, MessagesRetracted)]
    assert all(e.message_ids == [before.message_id] for before, e in pairs)


def test_session_meta_rows_are_left_out_and_counted(ledger: Ledger, new_path: Path) -> None:
    """``session_meta`` rows are not in the transcript and are counted in the summary."""
    summary = import_hermes(ledger, new_path)
    roles = {m.role for m in ledger.transcript("n_a", include_retracted=True)}
    assert summary.skipped_meta_rows == 1
    assert "session_meta" not in roles


def test_unknown_columns_are_reported(ledger: Ledger, new_path: Path) -> None:
    """Columns with no event field of their own are listed per table in the summary."""
    summary = import_hermes(ledger, new_path)
    assert "future_column" in summary.unknown_columns["sessions"]
    assert "future_column" in summary.unknown_columns["messages"]


def test_unknown_session_columns_are_kept_in_session_metadata(
    ledger: Ledger, new_path: Path
) -> None:
    """A session's columns with no field of their own, known or not, are kept in metadata."""
    import_hermes(ledger, new_path)
    metadata = opened_event(ledger, "n_a").metadata or {}
    assert metadata["future_column"] == "kept"
    assert "system_prompt" not in metadata  # a field of its own now
    assert "started_at" not in metadata


def test_unknown_message_columns_are_kept_in_message_metadata(
    ledger: Ledger, new_path: Path
) -> None:
    """A message's columns with no field of their own are kept in its metadata."""
    import_hermes(ledger, new_path)
    metadata = message_event(ledger, "n_a", "summary").metadata or {}
    assert metadata["future_column"] == "also kept"
    assert metadata["display_kind"] == "hidden"
    assert "timestamp" not in metadata  # the message's created_at now


# -- what is refused, changed or reported -----------------------------------------------------


def test_an_oversized_row_is_reported_and_the_rest_of_its_session_imported(
    migrated_url: str, new_path: Path
) -> None:
    """A row over LEDGER_MAX_EVENT_BYTES is reported by id; its session's other rows import."""
    settings = Settings.from_env({"LEDGER_MAX_EVENT_BYTES": "4096"})
    add_rows(new_path, ("n_d", "tool", "x" * 5000, {"timestamp": 122.0}))
    with Ledger.open(migrated_url, settings=settings) as small:
        summary = import_hermes(small, new_path)
        assert summary.failed_sessions == {}
        (bad,) = summary.bad_rows
        assert bad.startswith("n_d/")
        assert "LEDGER_MAX_EVENT_BYTES" in summary.bad_rows[bad]
        assert [m.content for m in small.transcript("n_d")] == ["in a thread"]
        assert summary.sessions == 4


def test_nul_characters_are_replaced(ledger: Ledger, new_path: Path) -> None:
    """NUL characters (which PostgreSQL text refuses) become U+FFFD on both backends."""
    add_rows(new_path, ("n_d", "tool", "bin\x00ary", {"timestamp": 122.0}))
    summary = import_hermes(ledger, new_path)
    assert ledger.transcript("n_d")[-1].content == "bin\ufffdary"
    assert summary.nul_replaced == 1


def test_overlong_value_is_cut_to_its_column_and_kept_whole(ledger: Ledger, new_path: Path) -> None:
    """A finish_reason longer than its view column is cut and kept whole in metadata."""
    add_rows(
        new_path, ("n_d", "assistant", "long", {"timestamp": 122.0, "finish_reason": "s" * 99})
    )
    import_hermes(ledger, new_path)
    message = message_event(ledger, "n_d", "long")
    assert len(message.finish_reason or "") == 64
    assert (message.metadata or {})["finish_reason"] == "s" * 99


def test_rows_of_missing_sessions_are_counted_as_orphans(ledger: Ledger, old_path: Path) -> None:
    """Message rows whose session does not exist are not imported and are counted."""
    add_rows(old_path, ("ghost", "user", "boo", {}))
    summary = import_hermes(ledger, old_path)
    assert (summary.orphan_rows, summary.messages) == (1, 10)


def test_progress_reports_every_counted_row(ledger: Ledger, new_path: Path) -> None:
    """The progress callback adds up to count_hermes_messages."""
    done: list[int] = []
    import_hermes(ledger, new_path, progress=done.append)
    assert sum(done) == count_hermes_messages(new_path) == 12


def test_source_file_is_left_unchanged(ledger: Ledger, new_path: Path) -> None:
    """The state.db is read only: its bytes are the same after the import."""
    before = hashlib.sha256(new_path.read_bytes()).hexdigest()
    import_hermes(ledger, new_path)
    assert hashlib.sha256(new_path.read_bytes()).hexdigest() == before


def test_summary_is_plain_data() -> None:
    """The summary converts to JSON-ready builtins."""
    import msgspec

    data = msgspec.to_builtins(ImportSummary(path="state.db"))
    assert data["failed_sessions"] == {}
