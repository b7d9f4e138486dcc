"""``ledger scheduler``: configuration, run claims, and two schedulers on one database."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger import ConfigurationError, EventStore
from ledger.maintenance import run_job
from ledger.maintenance.scheduler import EPOCH, JobSpec, load_schedule, scheduled_time
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
    specs = load_schedule(env={"LEDGER_SCHEDULE_RETENTION": "every 1d older_than=90d"})
    assert specs == [JobSpec(job="retention", every=86400.0, options={"older_than": "90d"})]


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
