"""``run_job`` and its history, the ``compact`` CLI's reports, and ``parse_duration``.

Every run that writes is recorded (``ok`` or ``failed``; dry runs and runs refused for their
arguments are not: see test_erasure.py), a scheduled run is claimed once, every job's
``--json`` report has the documented keys, and an age is parsed or refused with a typed error.
Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from ledger import InvalidArgumentError, Ledger
from ledger.maintenance import (
    JOBS,
    CompactionReport,
    archive,
    history,
    jobs,
    parse_duration,
    run_job,
)
from ledger.schema import events
from ledger.store import EventStore
from tests.maintenance.support import KEY, invoke

REPORT_KEYS = {"job", "dry_run", "sessions", "events", "bytes_before", "bytes_after"}


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


def _boom(store: EventStore, *, dry_run: bool = False) -> CompactionReport:
    """A job that fails while running (not for its arguments)."""
    raise RuntimeError("disk on fire")


@pytest.fixture
def boom(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install :func:`_boom` as the job ``boom``."""
    monkeypatch.setitem(JOBS, "boom", _boom)


def test_run_job_records_a_failed_run_and_reraises(ledger: Ledger, boom: None) -> None:
    """A run whose job raises is recorded as ``failed`` and the error reaches the caller."""
    with pytest.raises(RuntimeError):
        run_job(ledger.store, "boom")
    (run,) = history(ledger.store)
    assert (run.job, run.status, run.report) == ("boom", "failed", None)


def test_run_job_of_an_unknown_job_raises_invalid_argument(ledger: Ledger) -> None:
    """An unknown job name lists the known ones and records nothing."""
    with pytest.raises(InvalidArgumentError, match="archive"):
        run_job(ledger.store, "defragment")
    assert history(ledger.store) == []


def test_history_cli_json_lists_runs_newest_first(
    ledger: Ledger, migrated_url: str, boom: None
) -> None:
    """``ledger compact history --json`` shows each run's job, status and report."""
    run_job(ledger.store, "keys")
    with pytest.raises(RuntimeError):
        run_job(ledger.store, "boom")
    run_job(ledger.store, "vacuum")
    code, out, _ = invoke("compact", "history", "--json", "--url", migrated_url)
    assert code == 0
    runs = json.loads(out)
    assert [(r["job"], r["status"], r["dry_run"]) for r in runs] == [
        ("vacuum", "ok", False),
        ("boom", "failed", False),
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
        ["retention", "--older-than", "30d", "--yes"],
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
