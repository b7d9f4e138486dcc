"""``ledger scheduler``: the compaction jobs on a schedule, with APScheduler 3.

Jobs are stored in the ledger's own database (``SQLAlchemyJobStore``, table
``apscheduler_jobs``), coalesced, with ``max_instances=1``. Several schedulers may run against
one database, on one host or many: every job run first claims its row in ``compaction_runs``
under ``UNIQUE (job, scheduled_for)``, so whichever scheduler fires a scheduled run first
executes it and the others skip it. Interval triggers are anchored at a fixed epoch so every
scheduler computes the same run times.

Configuration, a TOML file (``--config`` or ``LEDGER_SCHEDULE_FILE``)::

    [jobs.archive]
    every = "1h"          # or: cron = "0 3 * * *"
    older_than = "30d"    # job options, as on the command line

or one variable per job, ``LEDGER_SCHEDULE_ARCHIVE="every 1h older_than=30d"``. Without any
configuration: archive hourly (30 days idle), keys every 6 hours, snapshot and vacuum daily.
Retention is never scheduled unless configured: it deletes data.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ledger.errors import ConfigurationError
from ledger.maintenance import history, jobs, parse_duration, run_job
from ledger.schema import apscheduler_jobs
from ledger.store import EventStore, default_writer
from ledger.store.database import RAW_ERRORS

__all__ = [
    "JobInfo",
    "JobSpec",
    "build_scheduler",
    "describe_jobs",
    "execute",
    "load_schedule",
]

log = logging.getLogger("ledger.scheduler")

#: Interval triggers count from here, so every scheduler fires at the same instants.
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DEFAULT_SCHEDULE: dict[str, dict[str, Any]] = {
    "archive": {"every": "1h", "older_than": "30d"},
    "keys": {"every": "6h", "older_than": "7d"},
    "snapshot": {"every": "24h"},
    "vacuum": {"every": "24h"},
}
_AGE_OPTIONS = ("older_than",)
#: Seconds a run may start late and still count as the run of its fire time.
MISFIRE_GRACE = 600


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled job: which, when (``every`` seconds or a ``cron`` line), with what."""

    job: str
    every: float | None = None
    cron: str | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    def trigger(self) -> IntervalTrigger | CronTrigger:
        """The APScheduler trigger for this spec."""
        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron, timezone=dt.UTC)
        assert self.every is not None
        return IntervalTrigger(seconds=self.every, start_date=EPOCH, timezone=dt.UTC)


def _spec(job: str, raw: Mapping[str, Any], where: str) -> JobSpec:
    if job not in jobs():
        raise ConfigurationError(where, job, "a job: " + ", ".join(sorted(jobs())))
    values = dict(raw)
    every, cron = values.pop("every", None), values.pop("cron", None)
    if (every is None) == (cron is None):
        raise ConfigurationError(where, dict(raw), "exactly one of every = '1h' or cron = '…'")
    seconds = None if every is None else parse_duration(every).total_seconds()
    if cron is not None:
        try:
            CronTrigger.from_crontab(str(cron))
        except ValueError as exc:
            raise ConfigurationError(where, cron, f"a crontab line ({exc})") from exc
    return JobSpec(job=job, every=seconds, cron=cron, options=values)


def _from_variable(job: str, text: str) -> JobSpec:
    name = f"LEDGER_SCHEDULE_{job.upper()}"
    words = text.split()
    if len(words) < 2 or words[0] not in ("every", "cron"):
        raise ConfigurationError(name, text, "'every 1h [opt=value…]' or 'cron m h dom mon dow'")
    if words[0] == "cron":
        return _spec(job, {"cron": " ".join(words[1:6]), **_pairs(words[6:], name)}, name)
    return _spec(job, {"every": words[1], **_pairs(words[2:], name)}, name)


def _pairs(words: list[str], name: str) -> dict[str, str]:
    pairs = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ConfigurationError(name, word, "option=value")
        pairs[key] = value
    return pairs


def load_schedule(path: Path | None = None, env: Mapping[str, str] | None = None) -> list[JobSpec]:
    """The schedule from a TOML file and/or ``LEDGER_SCHEDULE_<JOB>`` variables."""
    env = os.environ if env is None else env
    table: dict[str, Any] = {}
    file = path or (Path(env["LEDGER_SCHEDULE_FILE"]) if env.get("LEDGER_SCHEDULE_FILE") else None)
    if file is not None:
        try:
            table = tomllib.loads(file.read_text()).get("jobs", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(
                "schedule file", str(file), f"a readable TOML file ({exc})"
            ) from exc
    specs = {job: _spec(job, raw, f"[jobs.{job}] in {file}") for job, raw in table.items()}
    for job in jobs():
        text = env.get(f"LEDGER_SCHEDULE_{job.upper()}")
        if text:
            specs[job] = _from_variable(job, text)
    if not specs:
        specs = {job: _spec(job, raw, "default schedule") for job, raw in DEFAULT_SCHEDULE.items()}
    return list(specs.values())


def scheduled_time(spec: JobSpec, now: dt.datetime) -> dt.datetime:
    """The scheduled instant this run belongs to: the latest fire time at or before ``now``."""
    if spec.every is not None:
        steps = int((now - EPOCH).total_seconds() // spec.every)
        return EPOCH + dt.timedelta(seconds=steps * spec.every)
    trigger = spec.trigger()
    # A run starts at most ``misfire_grace_time`` after its fire time, so the fire time it
    # belongs to lies in that window: walking it is cheap even for ``* * * * *``.
    probe = now - dt.timedelta(seconds=MISFIRE_GRACE + 1)
    latest = None
    fire = trigger.get_next_fire_time(None, probe)
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return (latest or now).astimezone(dt.UTC)


def execute(url: str, spec: dict[str, Any]) -> dict[str, Any] | None:
    """Run one scheduled job (called by APScheduler; module-level so the job store can find it)."""
    job = msgspec.convert(spec, JobSpec)
    options: dict[str, Any] = {
        key: parse_duration(value) if key in _AGE_OPTIONS else value
        for key, value in job.options.items()
    }
    when = scheduled_time(job, dt.datetime.now(dt.UTC))
    with EventStore.open(url) as store:
        report = run_job(store, job.job, scheduled_for=when, runner=default_writer(), **options)
    if report is None:
        log.info("%s run of %s was claimed by another scheduler", job.job, when.isoformat())
        return None
    log.info("%s run of %s: %s", job.job, when.isoformat(), msgspec.to_builtins(report))
    return msgspec.to_builtins(report)  # type: ignore[no-any-return]


def build_scheduler(
    store: EventStore, specs: list[JobSpec], scheduler: BaseScheduler | None = None
) -> BaseScheduler:
    """A scheduler whose jobs live in the ledger database, one per spec."""
    scheduler = scheduler or BlockingScheduler(timezone=dt.UTC)
    scheduler.configure(
        jobstores={
            # APScheduler catches SQLAlchemy's IntegrityError itself: leave its errors raw.
            "default": SQLAlchemyJobStore(
                engine=store.engine.execution_options(**{RAW_ERRORS: True}),
                tablename="apscheduler_jobs",
            )
        },
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE,
        },
        timezone=dt.UTC,
    )
    url = store.engine.url.render_as_string(hide_password=False)
    _forget_unconfigured(store, {f"ledger-{spec.job}" for spec in specs})
    for spec in specs:
        scheduler.add_job(
            execute,
            spec.trigger(),
            id=f"ledger-{spec.job}",
            name=spec.job,
            kwargs={"url": url, "spec": msgspec.to_builtins(spec)},
            replace_existing=True,
        )
    return scheduler


def _forget_unconfigured(store: EventStore, keep: set[str]) -> None:
    """Drop stored ``ledger-*`` jobs that are no longer in the configuration."""
    table = apscheduler_jobs
    with store.transaction() as conn:
        conn.execute(table.delete().where(table.c.id.like("ledger-%"), table.c.id.not_in(keep)))


class JobInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A configured job, when it runs next and how its last run went."""

    job: str
    trigger: str
    options: dict[str, Any]
    next_run: dt.datetime | None
    last_status: str | None
    last_run: dt.datetime | None


def describe_jobs(store: EventStore, specs: list[JobSpec]) -> list[JobInfo]:
    """Each configured job with its next run (from the job store) and its last recorded run."""
    table = apscheduler_jobs
    with store.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(table.c.id, table.c.next_run_time)).tuples().all())
    infos = []
    for spec in specs:
        when = stored.get(f"ledger-{spec.job}")
        runs = history(store, job=spec.job, limit=1)
        infos.append(
            JobInfo(
                job=spec.job,
                trigger=f"cron {spec.cron}" if spec.cron else f"every {spec.every:g}s",
                options=spec.options,
                next_run=None if when is None else dt.datetime.fromtimestamp(when, dt.UTC),
                last_status=runs[0].status if runs else None,
                last_run=runs[0].started_at if runs else None,
            )
        )
    return infos
