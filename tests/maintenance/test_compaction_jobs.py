"""The retention, keys, snapshot and vacuum jobs, ``run_job`` history and the ``compact`` CLI.

Each job runs on SQLite and PostgreSQL. Sessions become "old" by a tiny ``older_than`` after a
short sleep (every session then qualifies) or by moving ``updated_at`` back by hand.
"""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ledger import InvalidArgumentError, Ledger, SessionClosedError
from ledger.cli import cli
from ledger.facade import key_stream, session_stream
from ledger.maintenance import (
    archive,
    compact_keys,
    history,
    jobs,
    parse_duration,
    retention,
    run_job,
    vacuum,
)
from ledger.replay import replay
from ledger.schema import (
    events,
    projection_snapshots,
    search_documents,
    session_heads,
    session_tombstones,
    usage_daily,
)
from projections.keys import KeysProjection
from projections.rebuild import rebuild, verify
from projections.sessions import SessionsProjection
from tests.maintenance.support import (
    AGE,
    catch_up,
    dump_all,
    event_rows,
    let_age,
    segment_count,
    verify_all,
)

KEY = "telegram:1:main"
OTHER_KEY = "telegram:2:main"
REPORT_KEYS = {"job", "dry_run", "sessions", "events", "bytes_before", "bytes_after"}


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


def invoke(*args: str) -> tuple[int, str, str]:
    """Run the ``ledger`` CLI; returns exit code, stdout and stderr."""
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def usage_messages(ledger: Ledger) -> int:
    """Messages counted by the usage projection over every source and day."""
    with ledger.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.sum(usage_daily.c.messages))).scalar() or 0)


def search_sessions(ledger: Ledger) -> set[str]:
    """Sessions that have documents in the search index."""
    with ledger.store.engine.connect() as conn:
        query = sa.select(search_documents.c.session_id).distinct()
        return set(conn.execute(query).scalars())


# -- retention ----------------------------------------------------------------------------------


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
    """A closed active session is purged; the key still points at it (its head remains)."""
    retention(ledger.store, older_than=AGE)
    head = ledger.head(retained["closed_active"])
    assert head is not None
    assert head.state == "purged"
    assert ledger.active_session(OTHER_KEY) == retained["closed_active"]


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


# -- keys -----------------------------------------------------------------------------------------


@pytest.fixture
def switched(ledger: Ledger) -> list[str]:
    """Two keys with several switches each; returns the session ids."""
    ids = [ledger.open_session(KEY, session_id=f"k1-{i}") for i in range(3)]
    ledger.switch_session(KEY, ids[0])
    ledger.switch_session(KEY, ids[2], reason="resume")
    other = [ledger.open_session(OTHER_KEY, session_id=f"k2-{i}") for i in range(2)]
    ledger.switch_session(OTHER_KEY, other[0])
    let_age()
    return ids + other


def test_keys_compaction_keeps_only_each_keys_latest_switch(
    ledger: Ledger, switched: list[str]
) -> None:
    """Each key stream keeps exactly its latest switch, at its original sequence."""
    latest = {k: list(ledger.read_stream(key_stream(k)))[-1] for k in (KEY, OTHER_KEY)}
    report = compact_keys(ledger.store, older_than=AGE)
    assert (report.sessions, report.events) == (2, 5 - 1 + 3 - 1)
    for key, record in latest.items():
        assert list(ledger.read_stream(key_stream(key))) == [record]


def test_keys_compaction_leaves_active_sessions_and_heads_unchanged(
    ledger: Ledger, switched: list[str]
) -> None:
    """Active sessions, heads and transcripts are the same after key compaction."""
    before = dump_all(ledger.store, "session_heads", "session_keys", "transcript_messages")
    compact_keys(ledger.store, older_than=AGE)
    assert dump_all(ledger.store, "session_heads", "session_keys", "transcript_messages") == (
        before
    )
    assert ledger.active_session(KEY) == "k1-2"
    assert ledger.active_session(OTHER_KEY) == "k2-0"


def test_keys_compaction_keeps_every_projection_verifiable(
    ledger: Ledger, switched: list[str]
) -> None:
    """After key compaction every projection equals a rebuild from the log."""
    compact_keys(ledger.store, older_than=AGE)
    assert verify_all(ledger.store) == {}


def test_keys_compaction_continues_the_key_stream_sequence(
    ledger: Ledger, switched: list[str]
) -> None:
    """A switch after compaction gets the next sequence, never a reused one."""
    compact_keys(ledger.store, older_than=AGE)
    result = ledger.switch_session(KEY, "k1-0")
    assert result is not None
    assert result.sequence == 6


def test_keys_compaction_dry_run_and_rerun_change_nothing(
    ledger: Ledger, switched: list[str]
) -> None:
    """A dry run writes nothing; after a real run a second run finds nothing to drop."""
    before = dump_all(ledger.store)
    planned = compact_keys(ledger.store, older_than=AGE, dry_run=True)
    assert dump_all(ledger.store) == before
    assert compact_keys(ledger.store, older_than=AGE).events == planned.events
    after = dump_all(ledger.store)
    assert compact_keys(ledger.store, older_than=AGE).events == 0
    assert dump_all(ledger.store) == after


def test_keys_compaction_with_the_default_horizon_drops_only_older_switches(
    ledger: Ledger, switched: list[str]
) -> None:
    """With the 7-day default, only switches recorded more than 7 days ago go."""
    stream = key_stream(KEY)
    with ledger.store.engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
        conn.execute(
            events.update()
            .where(events.c.stream == stream, events.c.sequence <= 2)
            .values(recorded_at=past)
        )
    report = compact_keys(ledger.store)
    assert (report.sessions, report.events) == (1, 2)
    assert [r.sequence for r in ledger.read_stream(stream)] == [3, 4, 5]
    assert verify_all(ledger.store) == {}


def test_keys_compaction_keeps_replay_totals(ledger: Ledger) -> None:
    """``ledger replay`` counts the same turns after old switches are dropped."""
    first = ledger.open_session(KEY, session_id="r1")
    ledger.append_message(first, "user", "a turn on the first session")
    second = ledger.open_session(KEY, session_id="r2")
    ledger.append_message(second, "user", "a turn on the second session")
    before = msgspec.to_builtins(replay(ledger.store.read_all()).guards)
    assert before["ledger"]["turns"] == 2
    let_age()
    assert compact_keys(ledger.store, older_than=AGE).events == 1
    assert msgspec.to_builtins(replay(ledger.store.read_all()).guards) == before


# -- snapshot -------------------------------------------------------------------------------------


def test_rebuild_from_a_snapshot_folds_only_the_later_events(ledger: Ledger) -> None:
    """After a snapshot, a rebuild of ``sessions`` folds just the events appended since."""
    session_id = ledger.open_session(KEY, session_id="snap")
    for i in range(5):
        ledger.append_message(session_id, "user", f"before snapshot {i}")
    report = jobs()["snapshot"](ledger.store)
    assert report.job == "snapshot"
    ledger.append_message(session_id, "user", "after 1")
    ledger.retract_messages(session_id, 2)
    ledger.append_message(session_id, "user", "after 2")
    views = dump_all(ledger.store, "session_heads", "transcript_messages")
    assert rebuild(ledger.store, SessionsProjection(), from_snapshot=True) == 3
    assert dump_all(ledger.store, "session_heads", "transcript_messages") == views
    assert verify(ledger.store, SessionsProjection()) == []
    assert rebuild(ledger.store, SessionsProjection(), from_snapshot=False) == 2 + 5 + 3


def test_rebuild_of_keys_from_a_snapshot_keeps_active_sessions(ledger: Ledger) -> None:
    """The keys projection rebuilt from a snapshot plus later switches is the live one."""
    first = ledger.open_session(KEY, session_id="s1")
    jobs()["snapshot"](ledger.store)
    ledger.open_session(KEY, session_id="s2")
    ledger.switch_session(KEY, first)
    assert rebuild(ledger.store, KeysProjection(), from_snapshot=True) == 3
    assert ledger.active_session(KEY) == first
    assert verify(ledger.store, KeysProjection()) == []


def test_snapshot_dry_run_writes_nothing(ledger: Ledger) -> None:
    """``snapshot(dry_run=True)`` reports sizes and stores no snapshot."""
    ledger.open_session(KEY)
    before = dump_all(ledger.store)
    report = jobs()["snapshot"](ledger.store, dry_run=True)
    assert report.dry_run
    assert report.sessions == 2  # the two inline projections
    assert dump_all(ledger.store) == before


# -- vacuum ----------------------------------------------------------------------------------------


def test_vacuum_reports_sizes_and_shrinks_after_a_big_archive(ledger: Ledger) -> None:
    """Vacuum reports integer sizes; on SQLite the file does not grow and frees archived pages."""
    for i in range(4):
        session_id = ledger.open_session(f"bulk:{i}")
        ledger.append_messages(
            session_id,
            [{"role": "user", "content": f"{i}-{n} " + "x" * 2000} for n in range(60)],
        )
        ledger.close_session(session_id)
    archive(ledger.store, older_than=None)
    report = vacuum(ledger.store)
    assert isinstance(report.bytes_before, int)
    assert isinstance(report.bytes_after, int)
    assert report.bytes_before > 0
    if ledger.store.engine.dialect.name == "sqlite":
        assert report.bytes_after <= report.bytes_before
        assert report.bytes_after < report.bytes_before, report.details


def test_vacuum_dry_run_changes_no_size(ledger: Ledger) -> None:
    """A dry-run vacuum reports and leaves the database size as it was."""
    session_id = ledger.open_session("bulk:0")
    ledger.append_messages(session_id, [{"role": "user", "content": "y" * 3000}] * 1)
    ledger.close_session(session_id)
    archive(ledger.store, older_than=None)
    planned = vacuum(ledger.store, dry_run=True)
    assert planned.dry_run
    assert vacuum(ledger.store, dry_run=True).bytes_before == planned.bytes_before


# -- run_job, history and the CLI ------------------------------------------------------------------


def test_run_job_records_a_successful_run(ledger: Ledger) -> None:
    """A run that finishes is recorded with status ``ok`` and its report."""
    ledger.close_session(ledger.open_session(KEY))
    report = run_job(ledger.store, "archive", older_than=None)
    assert report is not None
    (run,) = history(ledger.store)
    assert (run.job, run.status, run.dry_run, run.runner) == ("archive", "ok", False, "gateway-1")
    assert run.report is not None
    assert run.report["sessions"] == report.sessions == 1
    assert run.finished_at is not None


def test_run_job_records_a_failed_run_and_reraises(ledger: Ledger) -> None:
    """A run whose job raises is recorded as ``failed`` and the error reaches the caller."""
    with pytest.raises(InvalidArgumentError):
        run_job(ledger.store, "retention", older_than=None)
    (run,) = history(ledger.store)
    assert (run.job, run.status, run.report) == ("retention", "failed", None)


def test_run_job_of_an_unknown_job_raises_invalid_argument(ledger: Ledger) -> None:
    """An unknown job name lists the known ones and records nothing."""
    with pytest.raises(InvalidArgumentError, match="archive"):
        run_job(ledger.store, "defragment")
    assert history(ledger.store) == []


def test_history_cli_json_lists_runs_newest_first(ledger: Ledger, migrated_url: str) -> None:
    """``ledger compact history --json`` shows each run's job, status and report."""
    run_job(ledger.store, "keys")
    with pytest.raises(InvalidArgumentError):
        run_job(ledger.store, "retention", older_than=None)
    run_job(ledger.store, "vacuum", dry_run=True)
    code, out, _ = invoke("compact", "history", "--json", "--url", migrated_url)
    assert code == 0
    runs = json.loads(out)
    assert [(r["job"], r["status"], r["dry_run"]) for r in runs] == [
        ("vacuum", "ok", True),
        ("retention", "failed", False),
        ("keys", "ok", False),
    ]
    assert set(runs[0]["report"]) >= REPORT_KEYS
    code, out, _ = invoke("compact", "history", "--json", "--job", "keys", "--url", migrated_url)
    assert [r["job"] for r in json.loads(out)] == ["keys"]


def test_a_scheduled_run_is_claimed_once(ledger: Ledger) -> None:
    """Two runs for the same ``scheduled_for`` time: the second returns None and runs nothing."""
    when = dt.datetime(2030, 1, 1, 3, 0, tzinfo=dt.UTC)
    first = run_job(ledger.store, "keys", scheduled_for=when, runner="host-a")
    second = run_job(ledger.store, "keys", scheduled_for=when, runner="host-b")
    assert first is not None
    assert second is None
    runs = history(ledger.store)
    assert [(r.runner, r.scheduled_for) for r in runs] == [("host-a", when)]
    assert run_job(ledger.store, "keys", scheduled_for=when + dt.timedelta(hours=1)) is not None


@pytest.mark.parametrize(
    "args",
    [
        ["archive", "--older-than", "30d"],
        ["retention", "--older-than", "30d"],
        ["keys", "--older-than", "7d"],
        ["snapshot"],
        ["vacuum"],
    ],
    ids=lambda args: args[0],
)
def test_every_jobs_json_report_has_the_documented_keys(
    ledger: Ledger, migrated_url: str, args: list[str]
) -> None:
    """``ledger compact JOB --json`` (and with ``--dry-run``) prints the documented report."""
    ledger.close_session(ledger.open_session(KEY))
    for dry_run in (True, False):
        extra = ["--dry-run"] if dry_run else []
        code, out, err = invoke("compact", *args, *extra, "--json", "--url", migrated_url)
        assert code == 0, err
        report = json.loads(out)
        assert set(report) >= REPORT_KEYS
        assert (report["job"], report["dry_run"]) == (args[0], dry_run)
        assert all(isinstance(report[k], int) for k in REPORT_KEYS - {"job", "dry_run"})


def test_every_core_job_is_listed_by_jobs() -> None:
    """``jobs()`` holds the core jobs and the plugged-in snapshot job."""
    assert {"archive", "retention", "keys", "vacuum", "snapshot"} <= set(jobs())


# -- parse_duration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 12 * 3600),
        ("90s", 90),
        ("15m", 15 * 60),
        ("2w", 14 * 86400),
        ("45", 45),
        ("1.5h", 5400),
        (" 7d ", 7 * 86400),
        (120, 120),
        (0.5, 0.5),
    ],
)
def test_parse_duration_accepts_units_and_bare_numbers(text: str | float, seconds: float) -> None:
    """Durations with s/m/h/d/w units, or bare seconds, parse to the right timedelta."""
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["abc", "-1", "0", "0d", "", "10y", "d", "1 2"])
def test_parse_duration_rejects_what_is_not_a_positive_duration(text: str) -> None:
    """Text that is not a positive duration is an ``InvalidArgumentError`` naming the value."""
    with pytest.raises(InvalidArgumentError, match="duration"):
        parse_duration(text)


def test_compact_cli_rejects_a_bad_age(ledger: Ledger, migrated_url: str) -> None:
    """``--older-than abc`` is an error with exit status 1 and no run recorded as ok."""
    code, _, err = invoke("compact", "archive", "--older-than", "abc", "--url", migrated_url)
    assert code == 1
    assert "abc" in err
    assert all(run.status != "ok" for run in history(ledger.store))


def test_archive_events_report_matches_the_rows_moved(ledger: Ledger) -> None:
    """The archive report counts exactly the rows that left the ``events`` table."""
    ledger.close_session(ledger.open_session(KEY, session_id="counted"))
    with ledger.store.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    report = archive(ledger.store, older_than=None)
    with ledger.store.engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    assert report.events == before - after == 2


def test_a_plain_rebuild_repairs_a_view_even_after_a_snapshot_of_the_damage(
    ledger: Ledger,
) -> None:
    """Rebuild reads the log by default, so a snapshot taken of a damaged view cannot keep it."""
    session_id = ledger.open_session(KEY, session_id="damaged")
    ledger.append_message(session_id, "user", "hello")
    with ledger.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE session_heads SET message_count = 99")
    jobs()["snapshot"](ledger.store)
    rebuild(ledger.store, SessionsProjection())
    head = ledger.head(session_id)
    assert head is not None
    assert head.message_count == 1
    assert verify(ledger.store, SessionsProjection()) == []
