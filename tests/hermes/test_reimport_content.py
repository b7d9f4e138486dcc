"""A re-import compares content, not counts: every way Hermes moves on reaches the ledger."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from ledger import Ledger
from ledger.hermes._importer import import_hermes
from tests.helpers import count_events
from tests.hermes.fixture import TELEGRAM_KEY, add_message
from tests.hermes.fixture_v30 import T0


def _hermes(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(path)
    for sql, params in statements:
        conn.execute(sql, params)
    conn.commit()
    conn.close()


def _live(ledger: Ledger, session_id: str) -> list[object]:
    return [m.content for m in ledger.transcript(session_id)]


def test_delete_one_and_append_one_is_not_unchanged(ledger: Ledger, v30_path: Path) -> None:
    """Same count, other rows: the deleted row is retracted and the new one appended."""
    import_hermes(ledger, v30_path)
    _hermes(
        v30_path,
        ("DELETE FROM messages WHERE session_id = 'v_main' AND id = 4", ()),
        (
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, ?, ?, ?)",
            ("v_main", "assistant", "A lighthouse.", T0 + 6),
        ),
    )
    again = import_hermes(ledger, v30_path)
    assert again.updated_sessions == 1
    contents = _live(ledger, "v_main")
    assert "A harbour at dusk." not in contents
    assert contents[-1] == "A lighthouse."


def test_a_rewind_in_hermes_retracts_the_rewound_rows(ledger: Ledger, v30_path: Path) -> None:
    import_hermes(ledger, v30_path)
    _hermes(v30_path, ("DELETE FROM messages WHERE session_id = 'v_main' AND id >= 4", ()))
    import_hermes(ledger, v30_path)
    assert len(_live(ledger, "v_main")) == 3
    head = ledger.head("v_main")
    assert head is not None
    assert head.message_count == 3


def test_a_reopened_session_is_reopened_and_continued(ledger: Ledger, v30_path: Path) -> None:
    """Hermes /resume of an ended session: the ledger reopens it and takes the new rows."""
    import_hermes(ledger, v30_path)
    conn = sqlite3.connect(v30_path)
    conn.execute("UPDATE sessions SET ended_at = NULL, end_reason = NULL WHERE id = 'v_done'")
    add_message(conn, "v_done", "user", "I am back", timestamp=T0 + 600)
    conn.commit()
    conn.close()
    again = import_hermes(ledger, v30_path)
    head = ledger.head("v_done")
    assert head is not None
    assert (head.state, head.ended_at, again.reopened_sessions) == ("open", None, 1)
    assert _live(ledger, "v_done") == ["long ago", "I am back"]


def test_a_cleared_title_is_cleared(ledger: Ledger, v30_path: Path) -> None:
    import_hermes(ledger, v30_path)
    _hermes(v30_path, ("UPDATE sessions SET title = NULL WHERE id = 'v_main'", ()))
    import_hermes(ledger, v30_path)
    head = ledger.head("v_main")
    assert head is not None
    assert head.title is None


def test_grown_token_counters_arrive_as_usage(ledger: Ledger, v30_path: Path) -> None:
    import_hermes(ledger, v30_path)
    before = ledger.head("v_main")
    _hermes(
        v30_path,
        ("UPDATE sessions SET input_tokens = 2000, output_tokens = 400 WHERE id = 'v_main'", ()),
    )
    again = import_hermes(ledger, v30_path)
    usage = ledger.usage("v_main")
    assert (usage.input_tokens, usage.output_tokens, again.usage_records) == (2000, 400, 1)
    head = ledger.head("v_main")
    assert head is not None
    assert before is not None
    assert head.sequence == before.sequence  # usage never moves the session


def test_a_reimport_after_changes_is_idempotent(ledger: Ledger, v30_path: Path) -> None:
    import_hermes(ledger, v30_path)
    _hermes(v30_path, ("DELETE FROM messages WHERE session_id = 'v_main' AND id >= 4", ()))
    import_hermes(ledger, v30_path)
    before = count_events(ledger)
    again = import_hermes(ledger, v30_path)
    assert (again.events, count_events(ledger)) == (0, before)


def test_a_newer_ledger_session_on_the_key_stays_active(ledger: Ledger, v30_path: Path) -> None:
    """The gateway opened a session after Hermes' latest: a re-import never switches back."""
    import_hermes(ledger, v30_path)
    newer = ledger.open_session(TELEGRAM_KEY)
    add_rows = ("INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, ?, ?, ?)",)
    _hermes(v30_path, (add_rows[0], ("v_main", "user", "late hermes row", T0 + 7)))
    import_hermes(ledger, v30_path)
    assert ledger.active_session(TELEGRAM_KEY) == newer
    assert _live(ledger, "v_main")[-1] == "late hermes row"


def test_gateway_messages_on_an_imported_session_are_not_retracted(
    ledger: Ledger, v30_path: Path
) -> None:
    """Messages the gateway wrote on the ledger are not Hermes' rows: a re-import keeps them."""
    import_hermes(ledger, v30_path)
    ledger.append_message("v_main", "user", "written on the ledger")
    import_hermes(ledger, v30_path)
    assert _live(ledger, "v_main")[-1] == "written on the ledger"


def test_rows_written_during_an_import_arrive_whole_on_the_next(
    ledger: Ledger, v30_path: Path
) -> None:
    """Hermes writes (WAL mode) while the import runs: the import reads one snapshot, and the
    next import brings the rest."""
    writer = sqlite3.connect(v30_path, check_same_thread=False)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("INSERT INTO messages (session_id, role, content, timestamp) VALUES "
                   "('v_sub', 'user', 'before', 1)")  # fmt: skip
    writer.commit()
    done = threading.Event()

    def write_meanwhile(_rows: int) -> None:
        if not done.is_set():
            done.set()
            add_message(writer, "v_sub", "assistant", "during", timestamp=T0 + 52)
            writer.commit()

    try:
        import_hermes(ledger, v30_path, progress=write_meanwhile)
        assert "during" not in _live(ledger, "v_sub")
        import_hermes(ledger, v30_path)
        assert _live(ledger, "v_sub")[-1] == "during"
    finally:
        writer.close()
