"""``projections verify`` checks the log's own ``streams`` head table against its events: drift
there (a head lowered, raised, lost, or a wrong archived flag) is reported and exits 1, and a
history through every compaction job and an erasure stays clean. Both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger import Ledger
from ledger.maintenance import archive, compact_keys, erase, retention, scope_of
from ledger.schema import streams
from projections.rebuild import verify_heads
from tests.maintenance.support import AGE, invoke, let_age


@pytest.fixture
def history(ledger: Ledger) -> Ledger:
    """Sessions through archive, retention, key compaction and an erasure."""
    for n in range(4):
        sid = ledger.open_session("k", session_id=f"s{n}", user_id=f"u{n}")
        ledger.append_message(sid, "user", f"message {n}")
        ledger.record_usage(sid, input_tokens=n + 1)
        if n < 3:
            ledger.close_session(sid)
    let_age()
    archive(ledger.store, older_than=None)
    retention(ledger.store, older_than=AGE, user="u0")
    erase(ledger.store, scope_of(user="u1"))
    compact_keys(ledger.store, older_than=AGE)
    return ledger


def set_head(ledger: Ledger, stream: str, **values: object) -> None:
    with ledger.store.transaction() as conn:
        conn.execute(streams.update().where(streams.c.stream == stream).values(**values))


def kinds(ledger: Ledger) -> dict[str, str]:
    return {m.key["stream"]: m.kind for m in verify_heads(ledger.store)}


def test_heads_match_after_every_job_and_an_erasure(history: Ledger) -> None:
    """Archive, retention, key compaction and erasure leave no drift."""
    assert verify_heads(history.store) == []


def test_a_lowered_head_is_reported_behind(history: Ledger) -> None:
    """A head below its last event (a sequence would be reused)."""
    set_head(history, "session-s3", sequence=1)
    assert kinds(history) == {"session-s3": "behind"}


def test_a_raised_head_is_reported_ahead(history: Ledger) -> None:
    """A head above its last event that no job explains."""
    set_head(history, "session-s3", sequence=99)
    assert kinds(history) == {"session-s3": "ahead"}


def test_a_lost_head_row_is_reported_missing(history: Ledger) -> None:
    """Events whose stream has no head row."""
    with history.store.transaction() as conn:
        conn.execute(streams.delete().where(streams.c.stream == "session-s3"))
    assert kinds(history) == {"session-s3": "missing"}


def test_a_wrong_archived_flag_is_reported(history: Ledger) -> None:
    """An archived stream flagged live."""
    set_head(history, "session-s2", archived=sa.false())
    assert kinds(history) == {"session-s2": "archived_flag"}


def test_the_cli_verify_reports_head_drift_and_exits_1(history: Ledger, migrated_url: str) -> None:
    """``ledger projections verify`` (and ``verify log``) print the drift, exit status 1."""
    set_head(history, "session-s3", sequence=1)
    for args in (["projections", "verify"], ["projections", "verify", "log"]):
        code, out, _ = invoke(*args, "--url", migrated_url)
        assert code == 1
        assert b"log/streams behind" in out
