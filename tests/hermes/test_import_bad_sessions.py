"""A Hermes row or session the ledger cannot store is a reported failure; the rest imports.

On both backends alike: a session row with a NULL id is a bad row, a NUL in a session id or
key, or a ``token_count`` wider than its column, fails that one session (``failed_sessions``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger import Ledger
from ledger.hermes._importer import import_hermes
from tests.hermes.fixture import add_message, add_session

LIVE = 7  # the live messages of new_db's four sessions


def _add_session(path: Path, session_id: str | None, **columns: object) -> None:
    conn = sqlite3.connect(path)
    add_session(conn, session_id, source="cli", started_at=200.0, **columns)  # type: ignore[arg-type]
    if session_id is not None:  # messages.session_id is NOT NULL
        add_message(conn, session_id, "user", "hello", timestamp=201.0)
    conn.commit()
    conn.close()


def _rest_imported(ledger: Ledger) -> None:
    assert ledger.head("n_b") is not None
    assert sum(h.message_count for h in ledger.sessions()) == LIVE


def test_a_session_row_with_a_null_id_is_a_bad_row(ledger: Ledger, new_path: Path) -> None:
    _add_session(new_path, None)
    summary = import_hermes(ledger, new_path)
    assert any("NULL" in reason for reason in summary.bad_rows.values()), summary.bad_rows
    assert summary.sessions == 4
    _rest_imported(ledger)


def test_a_nul_in_a_session_id_fails_that_session(ledger: Ledger, new_path: Path) -> None:
    _add_session(new_path, "bad\x00id")
    summary = import_hermes(ledger, new_path)
    assert list(summary.failed_sessions) == ["bad\x00id"]
    assert summary.sessions == 4
    _rest_imported(ledger)


def test_a_nul_in_a_session_key_fails_that_session(ledger: Ledger, new_path: Path) -> None:
    _add_session(new_path, "n_key", session_key="agent:main:bad\x00key")
    summary = import_hermes(ledger, new_path)
    assert list(summary.failed_sessions) == ["n_key"]
    assert ledger.head("n_key") is None
    _rest_imported(ledger)


def test_a_token_count_wider_than_its_column_fails_that_session(
    ledger: Ledger, new_path: Path
) -> None:
    conn = sqlite3.connect(new_path)
    add_session(conn, "n_tok", source="cli", started_at=200.0)
    add_message(conn, "n_tok", "user", "big", timestamp=201.0, token_count=2**31)
    conn.commit()
    conn.close()
    summary = import_hermes(ledger, new_path)
    assert list(summary.failed_sessions) == ["n_tok"]
    assert "token_count" in summary.failed_sessions["n_tok"]
    assert ledger.head("n_tok") is None
    _rest_imported(ledger)


def test_a_nul_in_message_content_is_replaced_and_the_session_imported(
    ledger: Ledger, new_path: Path
) -> None:
    """Content is Hermes' own text: its NUL becomes U+FFFD (the mapper's rule), never an abort."""
    conn = sqlite3.connect(new_path)
    add_session(conn, "n_nul", source="cli", started_at=200.0)
    add_message(conn, "n_nul", "user", "a\x00b", timestamp=201.0)
    conn.commit()
    conn.close()
    summary = import_hermes(ledger, new_path)
    assert summary.failed_sessions == {}
    assert [m.content for m in ledger.transcript("n_nul")] == ["a\ufffdb"]
