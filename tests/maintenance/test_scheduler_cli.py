"""``ledger scheduler run|jobs`` on the command line: refused configurations, human output."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from ledger import EventStore
from ledger.cli import cli
from ledger.maintenance import run_job
from ledger.maintenance.scheduler import build_scheduler, format_moment, load_schedule

NOW = dt.datetime(2026, 12, 2, 18, 37, tzinfo=dt.UTC)


@pytest.mark.parametrize("command", ["run", "jobs"])
@pytest.mark.parametrize(
    "value", ["every 1h older_than=abc", "every 1h olderthan=30d", "every 1h pages=10"]
)
def test_an_invalid_option_stops_the_scheduler_with_one_error_line(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, command: str, value: str
) -> None:
    """A bad option fails at start: exit 1 and one ``error:`` line naming job and option."""
    monkeypatch.setenv("LEDGER_SCHEDULE_ARCHIVE", value)
    args = ["scheduler", command, "--url", migrated_url]
    if command == "run":
        args += ["--exit-after", "0.1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: LEDGER_SCHEDULE_ARCHIVE")
    assert "archive" in lines[0]
    assert value.split()[-1].split("=")[0] in lines[0]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (dt.datetime(2026, 12, 2, 19, 0, tzinfo=dt.UTC), "2026-12-02 19:00 UTC (in 23m)"),
        (
            dt.datetime(2026, 12, 2, 18, 0, 5, 123, tzinfo=dt.UTC),
            "2026-12-02 18:00:05 UTC (36m ago)",
        ),
        (dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC), "2026-12-04 03:00 UTC (in 1d 8h)"),
        (dt.datetime(2026, 12, 2, 20, 7, tzinfo=dt.UTC), "2026-12-02 20:07 UTC (in 1h 30m)"),
        (dt.datetime(2026, 12, 2, 18, 37, 40, tzinfo=dt.UTC), "2026-12-02 18:37:40 UTC (in 40s)"),
        (NOW, "2026-12-02 18:37 UTC (now)"),
    ],
)
def test_format_moment_is_a_utc_time_and_how_far_it_is(moment: dt.datetime, text: str) -> None:
    """Times as ``scheduler jobs`` prints them: minutes (seconds only if any), UTC, relative."""
    assert format_moment(moment, NOW) == text


def test_scheduler_jobs_prints_human_durations_and_times(
    store: EventStore, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``every 1h``, ``cron …``, ages as ``older_than=30d``, next and last run in UTC."""
    monkeypatch.setenv("LEDGER_SCHEDULE_VACUUM", "cron 0 3 * * *")
    monkeypatch.setenv("LEDGER_SCHEDULE_KEYS", "every 30m older_than=168h")
    scheduler = build_scheduler(store, load_schedule(), BackgroundScheduler(timezone=dt.UTC))
    scheduler.start(paused=True)
    scheduler.shutdown(wait=False)
    run_job(store, "keys")
    result = CliRunner().invoke(cli, ["scheduler", "jobs", "--url", migrated_url])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == {"archive", "keys", "snapshot", "vacuum"}
    moment = r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC \((in [0-9dhms ]+|now)\)"
    assert re.search(r"every 1h .*next " + moment, lines["archive"])
    assert "older_than=30d" in lines["archive"]
    assert re.search(r"every 30m .*next " + moment, lines["keys"])
    assert "older_than=1w" in lines["keys"]
    last = r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC \(([0-9dhms ]+ ago|now)\)"
    assert re.search(r"last ok " + last, lines["keys"])
    assert re.search(r"cron 0 3 \* \* \* .*next \d{4}-\d\d-\d\d 03:00 UTC", lines["vacuum"])
    assert re.search(r"every 1d .*last -", lines["snapshot"])
    assert "{" not in result.stdout


def test_scheduler_jobs_json_is_exact_seconds_and_iso_times(
    store: EventStore, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--json``: seconds and ISO 8601 times, as configured, for machines."""
    monkeypatch.setenv("LEDGER_SCHEDULE_VACUUM", "cron 0 3 * * *")
    scheduler = build_scheduler(store, load_schedule(), BackgroundScheduler(timezone=dt.UTC))
    scheduler.start(paused=True)
    scheduler.shutdown(wait=False)
    result = CliRunner().invoke(cli, ["scheduler", "jobs", "--url", migrated_url, "--json"])
    assert result.exit_code == 0, result.output
    infos = {info["job"]: info for info in json.loads(result.stdout)}
    archive = infos["archive"]
    assert (archive["every"], archive["cron"]) == (3600.0, None)
    assert archive["trigger"] == "every 3600s"
    assert archive["options"] == {"older_than": "30d"}
    next_run = dt.datetime.fromisoformat(archive["next_run"])
    assert next_run.tzinfo is not None
    assert next_run.minute == next_run.second == 0
    assert (infos["vacuum"]["every"], infos["vacuum"]["cron"]) == (None, "0 3 * * *")
    assert dt.datetime.fromisoformat(infos["vacuum"]["next_run"]).hour == 3
