"""``ledger scheduler``: configuration, run claims, and two schedulers on one database."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger import ConfigurationError, EventStore
from ledger.maintenance import parse_duration, run_job
from ledger.maintenance.scheduler import (
    EPOCH,
    JobSpec,
    format_duration,
    job_options,
    load_schedule,
    scheduled_time,
)
from ledger.schema import compaction_runs


def test_default_schedule_never_includes_retention() -> None:
    """Without configuration the deleting job stays off."""
    jobs = {spec.job for spec in load_schedule(env={})}
    assert jobs == {"archive", "keys", "snapshot", "vacuum"}


def test_toml_file_configures_intervals_crons_and_options(tmp_path: Path) -> None:
    """A TOML file names each job with ``every`` or ``cron`` plus its options."""
    config = tmp_path / "schedule.toml"
    config.write_text(
        '[jobs.archive]\nevery = "2h"\nolder_than = "10d"\n\n[jobs.vacuum]\ncron = "0 3 * * *"\n'
    )
    specs = {spec.job: spec for spec in load_schedule(config, env={})}
    assert specs["archive"] == JobSpec(job="archive", every=7200.0, options={"older_than": "10d"})
    assert specs["vacuum"].cron == "0 3 * * *"


def test_environment_variable_configures_a_job() -> None:
    """``LEDGER_SCHEDULE_<JOB>`` adds or overrides one job."""
    specs = {
        spec.job: spec
        for spec in load_schedule(env={"LEDGER_SCHEDULE_RETENTION": "every 1d older_than=90d"})
    }
    assert specs["retention"] == JobSpec(
        job="retention", every=86400.0, options={"older_than": "90d"}
    )


def test_configuring_one_job_keeps_the_other_defaults(tmp_path: Path) -> None:
    """A variable or a file table for one job overrides that job only: the defaults stay."""
    by_variable = load_schedule(env={"LEDGER_SCHEDULE_RETENTION": "every 1d older_than=90d"})
    assert {spec.job for spec in by_variable} == {
        "archive",
        "keys",
        "snapshot",
        "vacuum",
        "retention",
    }
    config = tmp_path / "schedule.toml"
    config.write_text('[jobs.archive]\nevery = "2h"\nolder_than = "60d"\n')
    by_file = {spec.job: spec for spec in load_schedule(config, env={})}
    assert set(by_file) == {"archive", "keys", "snapshot", "vacuum"}
    assert by_file["archive"] == JobSpec(job="archive", every=7200.0, options={"older_than": "60d"})
    assert by_file["keys"] == JobSpec(job="keys", every=21600.0, options={"older_than": "7d"})


def test_the_variable_overrides_the_file_which_overrides_the_default(tmp_path: Path) -> None:
    """Per job: the default, replaced by the file's table, replaced by the variable."""
    config = tmp_path / "schedule.toml"
    config.write_text('[jobs.keys]\nevery = "2h"\n\n[jobs.vacuum]\ncron = "0 4 * * *"\n')
    specs = {
        spec.job: spec
        for spec in load_schedule(config, env={"LEDGER_SCHEDULE_KEYS": "every 3h older_than=1d"})
    }
    assert specs["keys"] == JobSpec(job="keys", every=10800.0, options={"older_than": "1d"})
    assert specs["vacuum"] == JobSpec(job="vacuum", cron="0 4 * * *")
    assert specs["archive"] == JobSpec(job="archive", every=3600.0, options={"older_than": "30d"})


def test_a_default_job_is_turned_off_by_off_or_enabled_false(tmp_path: Path) -> None:
    """``LEDGER_SCHEDULE_<JOB>=off`` or ``enabled = false`` in the job's table: not scheduled."""
    config = tmp_path / "schedule.toml"
    config.write_text("[jobs.snapshot]\nenabled = false\n")
    env = {"LEDGER_SCHEDULE_ARCHIVE": "off", "LEDGER_SCHEDULE_RETENTION": "OFF"}
    assert {spec.job for spec in load_schedule(config, env=env)} == {"keys", "vacuum"}


def test_a_variable_turns_back_on_what_the_file_turned_off(tmp_path: Path) -> None:
    """The variable wins over the file for its job, either way."""
    config = tmp_path / "schedule.toml"
    config.write_text("[jobs.vacuum]\nenabled = false\n")
    specs = {s.job: s for s in load_schedule(config, env={"LEDGER_SCHEDULE_VACUUM": "every 2d"})}
    assert specs["vacuum"] == JobSpec(job="vacuum", every=172800.0)


def test_enabled_must_be_a_boolean(tmp_path: Path) -> None:
    """``enabled = "no"`` is refused rather than guessed."""
    config = tmp_path / "schedule.toml"
    config.write_text('[jobs.vacuum]\nenabled = "no"\n')
    with pytest.raises(ConfigurationError, match="enabled"):
        load_schedule(config, env={})


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("every 1h older_than=abc", ["archive", "older_than", "abc", "duration"]),
        ("every 1h olderthan=30d", ["archive", "olderthan", "30d", "older_than"]),
        ("every 1h pages=10", ["archive", "pages", "10"]),
        ("every 1h limit=many", ["archive", "limit", "many"]),
        ("every 1h dry_run=true", ["archive", "dry_run", "true"]),
        ("every 1h progress=1", ["archive", "progress"]),
        ("every 1h store=x", ["archive", "store"]),
    ],
)
def test_invalid_options_are_refused_when_the_schedule_loads(value: str, words: list[str]) -> None:
    """An option the job does not take, or a value it cannot use, fails at start, not per run."""
    with pytest.raises(ConfigurationError) as raised:
        load_schedule(env={"LEDGER_SCHEDULE_ARCHIVE": value})
    for word in words:
        assert word in str(raised.value)


def test_invalid_options_in_a_file_are_refused(tmp_path: Path) -> None:
    """The same check for a file's table, naming the job and the option."""
    config = tmp_path / "schedule.toml"
    config.write_text('[jobs.snapshot]\nevery = "1h"\nolder_than = "30d"\n')
    with pytest.raises(ConfigurationError, match=r"snapshot.*older_than"):
        load_schedule(config, env={})


def test_a_job_without_its_required_option_is_refused() -> None:
    """Retention has no default age: scheduling it without one is an error at start."""
    with pytest.raises(ConfigurationError, match=r"retention.*older_than"):
        load_schedule(env={"LEDGER_SCHEDULE_RETENTION": "every 1d"})


def test_valid_options_are_converted_as_the_job_takes_them() -> None:
    """Ages through ``parse_duration``, numbers from their text: what the run will pass."""
    specs = {
        s.job: s
        for s in load_schedule(
            env={
                "LEDGER_SCHEDULE_ARCHIVE": "every 1h older_than=2w limit=50",
                "LEDGER_SCHEDULE_VACUUM": "every 1d pages=100",
            }
        )
    }
    assert job_options(specs["archive"]) == {"older_than": dt.timedelta(weeks=2), "limit": 50}
    assert job_options(specs["vacuum"]) == {"pages": 100}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "1h"), (1800, "30m"), (86400, "1d"), (604800, "1w"), (90, "90s"), (5400, "90m")],
)
def test_format_duration_is_the_inverse_of_parse_duration(seconds: float, text: str) -> None:
    """The human duration ``scheduler jobs`` prints parses back to the same seconds."""
    assert format_duration(seconds) == text
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("seconds", [1, 1.5, 59, 61, 3599, 3601, 86399, 2592000, 1209600])
def test_format_duration_round_trips(seconds: float) -> None:
    """Any positive number of seconds formats into a text ``parse_duration`` reads back."""
    assert parse_duration(format_duration(seconds)).total_seconds() == seconds


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LEDGER_SCHEDULE_ARCHIVE", "sometimes", "every 1h"),
        ("LEDGER_SCHEDULE_ARCHIVE", "every soon", "duration"),
        ("LEDGER_SCHEDULE_ARCHIVE", "cron 99 * * * *", "crontab"),
        ("LEDGER_SCHEDULE_ARCHIVE", "every 1h older_than", "option=value"),
    ],
)
def test_bad_schedule_values_name_the_variable(variable: str, value: str, message: str) -> None:
    """A bad schedule is a typed error naming what was wrong."""
    with pytest.raises(ValueError, match=message):
        load_schedule(env={variable: value})


def test_unknown_job_in_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A file naming a job that does not exist is refused."""
    config = tmp_path / "schedule.toml"
    config.write_text('[jobs.defrag]\nevery = "1h"\n')
    with pytest.raises(ConfigurationError, match="defrag"):
        load_schedule(config, env={})


def test_interval_runs_are_anchored_so_every_scheduler_agrees() -> None:
    """The scheduled instant of a run is the latest grid point from the fixed epoch."""
    spec = JobSpec(job="archive", every=3600.0)
    now = EPOCH + dt.timedelta(hours=5, minutes=59, seconds=59)
    assert scheduled_time(spec, now) == EPOCH + dt.timedelta(hours=5)


def test_cron_runs_resolve_to_the_latest_fire_time() -> None:
    """A cron job's run (started within the misfire grace) belongs to its latest fire time."""
    spec = JobSpec(job="vacuum", cron="30 3 * * *")
    now = dt.datetime(2026, 5, 2, 3, 34, 59, tzinfo=dt.UTC)
    assert scheduled_time(spec, now) == dt.datetime(2026, 5, 2, 3, 30, tzinfo=dt.UTC)


def test_a_scheduled_run_is_claimed_once(store: EventStore) -> None:
    """Two runners firing the same scheduled run: the second one does nothing."""
    when = EPOCH + dt.timedelta(hours=1)
    first = run_job(store, "keys", scheduled_for=when, runner="a")
    second = run_job(store, "keys", scheduled_for=when, runner="b")
    assert first is not None
    assert second is None


def _scheduler(url: str, seconds: float) -> None:
    from click.testing import CliRunner

    from ledger.cli import cli

    result = CliRunner().invoke(
        cli, ["scheduler", "run", "--url", url, "--exit-after", str(seconds)]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_two_schedulers_execute_each_run_once(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two scheduler processes on one database: every (job, scheduled instant) runs once."""
    monkeypatch.setenv("LEDGER_SCHEDULE_KEYS", "every 1s older_than=1d")
    monkeypatch.setenv("LEDGER_SCHEDULE_VACUUM", "every 1s")
    monkeypatch.setenv("LEDGER_SCHEDULE_ARCHIVE", "off")
    monkeypatch.setenv("LEDGER_SCHEDULE_SNAPSHOT", "off")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_scheduler, args=(migrated_url, 4.5)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    with EventStore.open(migrated_url) as store, store.engine.connect() as conn:
        runs = conn.execute(
            sa.select(
                compaction_runs.c.job, compaction_runs.c.scheduled_for, compaction_runs.c.runner
            )
        ).all()
    per_run = Counter((job, when) for job, when, _ in runs)
    assert per_run, "no scheduled run happened"
    assert max(per_run.values()) == 1
    assert {job for job, _ in per_run} == {"keys", "vacuum"}
    assert sum(1 for job, _ in per_run if job == "keys") >= 3
