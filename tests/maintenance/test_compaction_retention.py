"""The ``retention`` job, on SQLite and PostgreSQL.

Sessions become "old" by a tiny ``older_than`` after a short sleep (every session then
qualifies) or by moving ``updated_at`` back by hand. A purge keeps a ``purged`` head, deletes the
session's events, transcript, search documents, usage and snapshots, and spares a key's open
active session; every projection stays verifiable.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ledger import InvalidArgumentError, Ledger, SessionClosedError
from ledger.facade import session_stream
from ledger.maintenance import archive, jobs, parse_duration, retention
from ledger.schema import (
    projection_snapshots,
    search_documents,
    session_heads,
    session_keys,
    session_tombstones,
    usage_daily,
)
from projections.rebuild import rebuild
from projections.sessions import SessionsProjection
from tests.maintenance.support import (
    AGE,
    KEY,
    OTHER_KEY,
    catch_up,
    dump_all,
    event_rows,
    invoke,
    let_age,
    segment_count,
    verify_all,
)


@pytest.fixture
def retained(ledger: Ledger) -> dict[str, str]:
    """Sessions for retention, all older than ``AGE`` once it returns.

    ``gone`` is closed (not active); ``closed_active`` is closed and its key's active session;
    ``switched_away`` is open but no longer active; ``active`` is open and active; all share the
    source ``telegram`` and today's date, so usage rows stay after a purge.
    """
    gone = ledger.open_session(KEY, session_id="gone", source="telegram")
    ledger.append_message(gone, "user", "purge this findable text", token_count=5)
    ledger.append_message(gone, "assistant", "purged answer", token_count=7)
    ledger.retract_messages(gone, 1)
    ledger.close_session(gone)
    switched_away = ledger.open_session(KEY, session_id="switched-away", source="telegram")
    ledger.append_message(switched_away, "user", "switched away text")
    active = ledger.open_session(KEY, session_id="active", source="telegram")
    ledger.append_message(active, "user", "active findable text", token_count=1)
    closed_active = ledger.open_session(OTHER_KEY, session_id="closed-active", source="telegram")
    ledger.append_message(closed_active, "user", "closed but active")
    ledger.close_session(closed_active)
    catch_up(ledger.store)
    let_age()
    return {
        "gone": gone,
        "switched_away": switched_away,
        "active": active,
        "closed_active": closed_active,
    }


def usage_messages(ledger: Ledger) -> int:
    """Messages counted by the usage projection over every source and day."""
    with ledger.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.sum(usage_daily.c.messages))).scalar() or 0)


def search_sessions(ledger: Ledger) -> set[str]:
    """Sessions that have documents in the search index."""
    with ledger.store.engine.connect() as conn:
        query = sa.select(search_documents.c.session_id).distinct()
        return set(conn.execute(query).scalars())


def test_retention_requires_an_age(ledger: Ledger, retained: dict[str, str]) -> None:
    """Without ``older_than`` retention refuses to run and purges nothing."""
    before = dump_all(ledger.store)
    with pytest.raises(InvalidArgumentError, match="older_than"):
        retention(ledger.store, older_than=None)
    assert dump_all(ledger.store) == before


def test_retention_cli_without_an_age_exits_1(
    ledger: Ledger, retained: dict[str, str], migrated_url: str
) -> None:
    """``ledger compact retention`` without ``--older-than`` is an error, exit status 1."""
    code, _, err = invoke("compact", "retention", "--url", migrated_url)
    assert code == 1
    assert "older_than" in err


def test_retention_purges_an_old_closed_session_keeping_a_purged_head(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """A purged session's head stays, state ``purged``, with the same ``sequence``."""
    head = ledger.head(retained["gone"])
    assert head is not None
    retention(ledger.store, older_than=AGE)
    after = ledger.head(retained["gone"])
    assert after is not None
    assert (after.state, after.sequence, after.session_key) == ("purged", head.sequence, KEY)
    assert (after.message_count, after.source) == (0, "telegram")


def test_retention_deletes_the_purged_sessions_events(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """No event of a purged session is left in the log, live or archived."""
    archive(ledger.store, older_than=None)  # the closed ones go to segments first
    retention(ledger.store, older_than=AGE)
    stream = session_stream(retained["gone"])
    assert list(ledger.read_stream(stream)) == []
    assert all(row[1] != stream for row in event_rows(ledger.store))
    assert segment_count(ledger.store) == 0


def test_retention_empties_the_purged_transcript(ledger: Ledger, retained: dict[str, str]) -> None:
    """The transcript of a purged session is empty, retracted messages included."""
    retention(ledger.store, older_than=AGE)
    assert ledger.transcript(retained["gone"], include_retracted=True) == []


def test_retention_drops_the_purged_search_documents(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """Search no longer finds a purged session's messages; the kept ones still are."""
    assert {h.session_id for h in ledger.search("findable")} == {"gone", "active"}
    retention(ledger.store, older_than=AGE)
    assert {h.session_id for h in ledger.search("findable")} == {"active"}
    assert "gone" not in search_sessions(ledger)


def test_retention_reduces_usage_totals(ledger: Ledger, retained: dict[str, str]) -> None:
    """Usage statistics lose exactly the purged sessions' messages."""
    before = usage_messages(ledger)
    report = retention(ledger.store, older_than=AGE)
    catch_up(ledger.store)
    purged = {"gone": 2, "switched_away": 1, "closed_active": 1}
    assert report.sessions == len(purged)
    assert usage_messages(ledger) == before - sum(purged.values())


def test_retention_keeps_every_projection_verifiable(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """After a purge every projection still equals a rebuild from the log."""
    retention(ledger.store, older_than=AGE)
    assert verify_all(ledger.store) == {}


def test_retention_of_a_sources_only_session_keeps_usage_verifiable(ledger: Ledger) -> None:
    """Purging the only session of a source leaves no usage row a rebuild would not have."""
    only = ledger.open_session("slack:9", session_id="only-slack", source="slack")
    ledger.append_message(only, "user", "the only slack message")
    ledger.close_session(only)
    catch_up(ledger.store)
    let_age()
    assert retention(ledger.store, older_than=AGE).sessions == 1
    assert verify_all(ledger.store) == {}


def test_append_to_a_purged_session_raises_session_closed(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """``append_message`` to a purged session is refused and writes nothing."""
    retention(ledger.store, older_than=AGE)
    before = event_rows(ledger.store)
    with pytest.raises(SessionClosedError):
        ledger.append_message(retained["switched_away"], "user", "too late")
    assert event_rows(ledger.store) == before


def test_retention_keeps_the_active_session_of_a_key(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """The open active session of a key survives, with its events and head."""
    head = ledger.head(retained["active"])
    stream = session_stream(retained["active"])
    events_before = list(ledger.read_stream(stream))
    retention(ledger.store, older_than=AGE)
    assert ledger.head(retained["active"]) == head
    assert list(ledger.read_stream(stream)) == events_before
    assert ledger.active_session(KEY) == retained["active"]


def test_retention_purges_the_active_session_of_a_key_when_closed(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """A closed active session is purged; the keys view still points at it (its tombstone head
    remains), and ``active_session`` names no session, since the key's session is not open."""
    retention(ledger.store, older_than=AGE)
    head = ledger.head(retained["closed_active"])
    assert head is not None
    assert head.state == "purged"
    with ledger.store.engine.connect() as conn:
        pointed = conn.execute(
            sa.select(session_keys.c.session_id).where(session_keys.c.session_key == OTHER_KEY)
        ).scalar()
    assert pointed == retained["closed_active"]
    assert ledger.active_session(OTHER_KEY) is None


def test_retention_skips_sessions_younger_than_the_age(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """With an age of a day nothing written just now is purged."""
    before = dump_all(ledger.store, "events", "session_heads")
    report = retention(ledger.store, older_than=dt.timedelta(days=1))
    assert report.sessions == 0
    assert dump_all(ledger.store, "events", "session_heads") == before


def test_retention_of_a_backdated_session_purges_only_that_one(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """A session whose head was last updated 40 days ago goes under a 30-day age."""
    with ledger.store.engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
        conn.execute(
            session_heads.update()
            .where(session_heads.c.session_id == retained["gone"])
            .values(updated_at=past)
        )
    report = retention(ledger.store, older_than=parse_duration("30d"))
    assert report.sessions == 1
    with ledger.store.engine.connect() as conn:
        purged = set(conn.execute(sa.select(session_tombstones.c.session_id)).scalars())
    assert purged == {retained["gone"]}


def test_retention_dry_run_changes_nothing(ledger: Ledger, retained: dict[str, str]) -> None:
    """``dry_run=True`` reports the purge it would do and writes nothing."""
    before = dump_all(ledger.store)
    planned = retention(ledger.store, older_than=AGE, dry_run=True)
    assert dump_all(ledger.store) == before
    done = retention(ledger.store, older_than=AGE)
    assert (planned.sessions, planned.events) == (done.sessions, done.events)


def test_retention_is_idempotent(ledger: Ledger, retained: dict[str, str]) -> None:
    """A second retention run purges nothing more."""
    retention(ledger.store, older_than=AGE)
    before = dump_all(ledger.store)
    assert retention(ledger.store, older_than=AGE).sessions == 0
    assert dump_all(ledger.store) == before


def test_rebuild_after_retention_brings_back_the_purged_heads(
    ledger: Ledger, retained: dict[str, str]
) -> None:
    """A full rebuild of ``sessions`` after a purge yields the same tombstone heads."""
    retention(ledger.store, older_than=AGE)
    views = dump_all(ledger.store, "session_heads", "transcript_messages")
    rebuild(ledger.store, SessionsProjection(), from_snapshot=False)
    assert dump_all(ledger.store, "session_heads", "transcript_messages") == views


def test_retention_deletes_the_snapshots(ledger: Ledger, retained: dict[str, str]) -> None:
    """Snapshots hold purged data, so retention removes them."""
    jobs()["snapshot"](ledger.store)
    with ledger.store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(projection_snapshots)
        assert conn.execute(query).scalar_one() > 0
    retention(ledger.store, older_than=AGE)
    with ledger.store.engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 0
