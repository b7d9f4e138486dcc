"""``ledger scheduler``: the compaction jobs on a schedule, with APScheduler 3.

Jobs are stored in the ledger's own database (table ``apscheduler_jobs``, through
:class:`LedgerJobStore`), coalesced, with ``max_instances=1`` and a misfire grace of ten
minutes. Several schedulers may run against one database, on one host or many: every job run
first claims its row in ``compaction_runs`` under ``UNIQUE (job, scheduled_for)``, so whichever
scheduler fires a scheduled run first executes it and the others skip it. Interval triggers are
anchored at a fixed epoch so every scheduler computes the same run times.

A job row holds JSON (:class:`StoredJob`: the job's name, ``every``/``cron``, options, next run
time and the coalesce/instances/grace settings), never a pickle and never the database URL.
APScheduler's stock store pickles each job, with its arguments, and unpickles every row it
reads: the URL's password would sit in the table, and whoever can write the table would run
code on every scheduler host. Here a job is rebuilt in code (always :func:`execute`, the
trigger from its spec), a row that is not such JSON is logged and removed without being
loaded, and a run opens the database the scheduler process was started on (else
``LEDGER_DATABASE_URL``).

Configuration, a TOML file (``--config`` or ``LEDGER_SCHEDULE_FILE``)::

    [jobs.archive]
    every = "1h"          # or: cron = "0 3 * * *"
    older_than = "30d"    # job options, as on the command line

    [jobs.snapshot]
    enabled = false       # off the schedule

or one variable per job, ``LEDGER_SCHEDULE_ARCHIVE="every 1h older_than=30d"`` (``off`` takes
the job off the schedule). The schedule is the defaults (archive hourly with 30 days idle,
keys every 6 hours with 7 days, snapshot and vacuum daily), each job replaced as a whole by its
table in the file, then by its variable: configuring one job leaves the others as they were.
Retention is never scheduled unless configured: it deletes data. Every option is checked when
the schedule loads, against the job function's keyword-only parameters (``dry_run`` and
``progress`` are the scheduler's own), ages through :func:`parse_duration`: a bad one is a
:class:`ConfigurationError` at start, not a failure on every run.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import datetime_to_utc_timestamp

from ledger.errors import ConfigurationError
from ledger.maintenance import history, jobs, parse_duration, run_job
from ledger.maintenance._runs import job_parameters
from ledger.schema import apscheduler_jobs
from ledger.store import EventStore, default_writer
from ledger.store.database import RAW_ERRORS

__all__ = [
    "JOB_FORMAT",
    "JobInfo",
    "JobSpec",
    "LedgerJobStore",
    "StoredJob",
    "build_scheduler",
    "describe_jobs",
    "execute",
    "format_duration",
    "format_moment",
    "format_options",
    "format_trigger",
    "job_options",
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
#: The value of ``LEDGER_SCHEDULE_<JOB>`` that takes a job off the schedule.
OFF = "off"
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


def _age(value: Any, where: str, job: str, key: str) -> dt.timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigurationError(
            f"{where}: {key}", value, f"a duration (30d, 12h, 15m, 90s, 2w) for job {job}"
        ) from exc


def _is_age(hint: Any) -> bool:
    return hint is dt.timedelta or dt.timedelta in typing.get_args(hint)


def _convert(job: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``options`` as job ``job`` takes them, or ConfigurationError naming what is wrong.

    The configurable options are the job function's keyword-only parameters but ``dry_run``
    and ``progress``; ages go through :func:`parse_duration`, other values are converted to
    the parameter's annotated type (``"50"`` for an ``int``), and a parameter without a
    default must be given.
    """
    func = jobs()[job]
    parameters = job_parameters(func)
    try:
        hints = typing.get_type_hints(func)
    except (NameError, TypeError):  # an annotation a plugin only imports for type checking
        hints = {}
    converted: dict[str, Any] = {}
    for key, value in options.items():
        if key not in parameters:
            takes = ", ".join(sorted(parameters)) or "none"
            raise ConfigurationError(
                f"{where}: {key}", value, f"an option of job {job} (it takes: {takes})"
            )
        hint = hints.get(key, Any)
        if key in _AGE_OPTIONS or _is_age(hint):
            converted[key] = _age(value, where, job, key)
            continue
        try:
            converted[key] = msgspec.convert(value, hint, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigurationError(f"{where}: {key}", value, f"{exc} for job {job}") from exc
        except TypeError:  # a type msgspec cannot build: the job checks it itself
            converted[key] = value
    missing = [
        name
        for name, parameter in parameters.items()
        if parameter.default is inspect.Parameter.empty and name not in options
    ]
    if missing:
        raise ConfigurationError(
            where, dict(options), f"job {job} to be given {', '.join(missing)} (it has no default)"
        )
    return converted


def job_options(spec: JobSpec) -> dict[str, Any]:
    """The keyword arguments a run of ``spec`` passes to its job (ages as timedelta)."""
    return _convert(spec.job, spec.options, f"job {spec.job}")


def _spec(job: str, raw: Mapping[str, Any], where: str) -> JobSpec | None:
    """One job's spec from its table (or variable), validated; None if ``enabled = false``."""
    if job not in jobs():
        raise ConfigurationError(where, job, "a job: " + ", ".join(sorted(jobs())))
    values = dict(raw)
    enabled = values.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"{where}: enabled", enabled, "true or false")
    if not enabled:
        return None
    every, cron = values.pop("every", None), values.pop("cron", None)
    if (every is None) == (cron is None):
        raise ConfigurationError(where, dict(raw), "exactly one of every = '1h' or cron = '…'")
    seconds = None if every is None else _age(every, where, job, "every").total_seconds()
    if cron is not None:
        try:
            CronTrigger.from_crontab(str(cron))
        except ValueError as exc:
            raise ConfigurationError(where, cron, f"a crontab line ({exc})") from exc
    _convert(job, values, where)
    return JobSpec(job=job, every=seconds, cron=cron, options=values)


def _from_variable(job: str, text: str) -> JobSpec | None:
    name = f"LEDGER_SCHEDULE_{job.upper()}"
    words = text.split()
    if len(words) == 1 and words[0].lower() == OFF:
        return None
    if len(words) < 2 or words[0] not in ("every", "cron"):
        raise ConfigurationError(
            name, text, f"'every 1h [opt=value…]', 'cron m h dom mon dow [opt=value…]' or '{OFF}'"
        )
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
    """The schedule: the defaults, each job replaced by its file table, then by its variable.

    The file is ``path`` or ``LEDGER_SCHEDULE_FILE``; the variables ``LEDGER_SCHEDULE_<JOB>``.
    A job's table with ``enabled = false`` or its variable set to ``off`` takes it off the
    schedule. Every job and option is validated here, so a bad one fails at start.
    """
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
    specs = {job: _spec(job, raw, "default schedule") for job, raw in DEFAULT_SCHEDULE.items()}
    for job, raw in table.items():
        if not isinstance(raw, dict):
            raise ConfigurationError(f"jobs.{job} in {file}", raw, f"a table [jobs.{job}]")
        specs[job] = _spec(job, raw, f"[jobs.{job}] in {file}")
    for job in jobs():
        text = env.get(f"LEDGER_SCHEDULE_{job.upper()}", "").strip()
        if text:
            specs[job] = _from_variable(job, text)
    return [spec for spec in specs.values() if spec is not None]


_UNIT_SECONDS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60))


def format_duration(seconds: float) -> str:
    """``seconds`` as :func:`parse_duration` reads it: the largest unit that divides it
    exactly (``3600`` → ``1h``, ``5400`` → ``90m``, ``1.5`` → ``1.5s``)."""
    for unit, size in _UNIT_SECONDS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds!r}s"


def _roughly(seconds: float) -> str:
    """A span in its two largest whole units of days, hours and minutes (``23m``,
    ``1h 30m``, ``1d 8h``), or in seconds under a minute (``40s``)."""
    if seconds < 60:
        return f"{int(seconds)}s"
    left = int(seconds) // 60
    parts: list[tuple[int, str]] = []
    for unit, size in (("d", 1440), ("h", 60), ("m", 1)):
        count, left = divmod(left, size)
        if count or parts:
            parts.append((count, unit))
    return " ".join(f"{count}{unit}" for count, unit in parts[:2] if count)


def format_moment(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    """``moment`` in UTC to the minute (seconds only when it has some) and how far from
    ``now`` it is: ``2026-12-02 19:00 UTC (in 23m)``, ``… (37m ago)``, ``… (now)``."""
    now = dt.datetime.now(dt.UTC) if now is None else now
    moment = moment.astimezone(dt.UTC)
    shape = "%Y-%m-%d %H:%M" if moment.second == moment.microsecond == 0 else "%Y-%m-%d %H:%M:%S"
    delta = (moment - now).total_seconds()
    if abs(delta) < 1:
        return f"{moment:{shape}} UTC (now)"
    span = _roughly(abs(delta))
    return f"{moment:{shape}} UTC ({'in ' + span if delta > 0 else span + ' ago'})"


def format_trigger(spec: JobSpec) -> str:
    """``every 1h`` or ``cron 0 3 * * *``."""
    if spec.cron is not None:
        return f"cron {spec.cron}"
    assert spec.every is not None
    return f"every {format_duration(spec.every)}"


def format_options(spec: JobSpec) -> str:
    """The job's options as ``key=value`` words, ages as durations (``older_than=30d``)."""
    words = []
    for key, value in job_options(spec).items():
        if isinstance(value, dt.timedelta):
            value = format_duration(value.total_seconds())
        words.append(f"{key}={value}")
    return " ".join(words)


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


#: The database each job store's jobs run against, by target name (the URL without its
#: password): filled by :func:`build_scheduler` in the scheduler's own process, never stored.
_TARGETS: dict[str, str] = {}


def execute(spec: dict[str, Any], target: str | None = None) -> dict[str, Any] | None:
    """Run one scheduled job (called by APScheduler with the job as the job store rebuilt it).

    ``target`` names the database :func:`build_scheduler` was given in this process; unknown,
    the run opens the configured database (``LEDGER_DATABASE_URL``).
    """
    job = msgspec.convert(spec, JobSpec)
    options = job_options(job)
    when = scheduled_time(job, dt.datetime.now(dt.UTC))
    with EventStore.open(_TARGETS.get(target or "")) as store:
        report = run_job(store, job.job, scheduled_for=when, runner=default_writer(), **options)
    if report is None:
        log.info("%s run of %s was claimed by another scheduler", job.job, when.isoformat())
        return None
    log.info("%s run of %s: %s", job.job, when.isoformat(), msgspec.to_builtins(report))
    return msgspec.to_builtins(report)  # type: ignore[no-any-return]


#: The ``format`` of a job row's state, so a row that is anything else is recognised.
JOB_FORMAT = "session-ledger/job/1"


class StoredJob(msgspec.Struct, frozen=True, kw_only=True):
    """What a row of ``apscheduler_jobs`` holds (JSON in ``job_state``): the spec and the
    scheduling state, nothing executable and no database URL."""

    format: str
    id: str
    name: str
    spec: JobSpec
    next_run_time: dt.datetime | None
    coalesce: bool
    max_instances: int
    misfire_grace_time: int | None


class _UnreadableJobError(Exception):
    """A row whose ``job_state`` is not a :class:`StoredJob` (a pickle, say)."""


class LedgerJobStore(SQLAlchemyJobStore):  # type: ignore[misc]  # APScheduler is untyped
    """APScheduler's ``SQLAlchemyJobStore`` on the ledger's engine, with JSON job state.

    The stock store pickles each job into ``job_state`` and unpickles whatever it reads, so
    anyone who can write the table runs code on every scheduler host. This one writes a
    :class:`StoredJob` (msgspec JSON) and rebuilds the job in code: ``func`` is always
    :func:`execute`, the trigger comes from the spec. A row that is not such JSON is never
    loaded: it is logged and removed.
    """

    def __init__(self, store: EventStore, target: str) -> None:
        # APScheduler catches SQLAlchemy's IntegrityError itself: leave its errors raw.
        super().__init__(
            engine=store.engine.execution_options(**{RAW_ERRORS: True}),
            tablename=apscheduler_jobs.name,
        )
        self.target = target

    @staticmethod
    def _state(job: Job) -> bytes:
        spec = job.kwargs.get("spec")
        if spec is None:
            raise ValueError(f"job {job.id!r} is not a ledger job: only execute(spec) is stored")
        return msgspec.json.encode(
            StoredJob(
                format=JOB_FORMAT,
                id=job.id,
                name=job.name,
                spec=msgspec.convert(spec, JobSpec),
                next_run_time=job.next_run_time,
                coalesce=job.coalesce,
                max_instances=job.max_instances,
                misfire_grace_time=job.misfire_grace_time,
            )
        )

    def add_job(self, job: Job) -> None:
        """Insert ``job`` as JSON; ConflictingIdError if its id is taken."""
        insert = self.jobs_t.insert().values(
            id=job.id,
            next_run_time=datetime_to_utc_timestamp(job.next_run_time),
            job_state=self._state(job),
        )
        with self.engine.begin() as connection:
            try:
                connection.execute(insert)
            except sa.exc.IntegrityError:
                raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        """Overwrite ``job``'s row (whatever it held) with its JSON; JobLookupError if none."""
        update = (
            self.jobs_t.update()
            .values(
                next_run_time=datetime_to_utc_timestamp(job.next_run_time),
                job_state=self._state(job),
            )
            .where(self.jobs_t.c.id == job.id)
        )
        with self.engine.begin() as connection:
            if connection.execute(update).rowcount == 0:
                raise JobLookupError(job.id)

    def lookup_job(self, job_id: str) -> Job | None:
        """The job ``job_id``, or None (also for an unreadable row, which is removed)."""
        query = sa.select(self.jobs_t.c.job_state).where(self.jobs_t.c.id == job_id)
        with self.engine.begin() as connection:
            state = connection.execute(query).scalar()
            if state is None:
                return None
            try:
                return self._reconstitute_job(state)
            except _UnreadableJobError as exc:
                self._drop(connection, {job_id}, exc)
                return None

    def _reconstitute_job(self, job_state: bytes) -> Job:
        try:
            stored = msgspec.json.decode(job_state, type=StoredJob)
            if stored.format != JOB_FORMAT:
                raise ValueError(f"format {stored.format!r}, not {JOB_FORMAT!r}")
            job = Job(
                self._scheduler,
                id=stored.id,
                func=execute,
                trigger=stored.spec.trigger(),
                executor="default",
                args=(),
                kwargs={"spec": msgspec.to_builtins(stored.spec), "target": self.target},
                name=stored.name,
                misfire_grace_time=stored.misfire_grace_time,
                coalesce=stored.coalesce,
                max_instances=stored.max_instances,
            )
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            raise _UnreadableJobError(str(exc)) from None
        job.next_run_time = stored.next_run_time
        job._jobstore_alias = self._alias
        return job

    def _get_jobs(self, *conditions: Any) -> list[Job]:
        query = sa.select(self.jobs_t.c.id, self.jobs_t.c.job_state).order_by(
            self.jobs_t.c.next_run_time
        )
        if conditions:
            query = query.where(sa.and_(*conditions))
        found: list[Job] = []
        unreadable: dict[str, Exception] = {}
        with self.engine.begin() as connection:
            for job_id, state in connection.execute(query):
                try:
                    found.append(self._reconstitute_job(state))
                except _UnreadableJobError as exc:
                    unreadable[job_id] = exc
            for job_id, why in unreadable.items():
                self._drop(connection, {job_id}, why)
        return found

    def _drop(self, connection: sa.Connection, ids: set[str], why: Exception) -> None:
        for job_id in ids:
            log.warning(
                "job %r in %s is not ledger JSON job state (%s): removed without loading it "
                "(the scheduler never unpickles its table)",
                job_id,
                self.jobs_t.name,
                why,
            )
        connection.execute(self.jobs_t.delete().where(self.jobs_t.c.id.in_(ids)))

    def shutdown(self) -> None:
        """Nothing to release: the engine is the store's, closed with it."""


def build_scheduler(
    store: EventStore, specs: list[JobSpec], scheduler: BaseScheduler | None = None
) -> BaseScheduler:
    """A scheduler whose jobs live in the ledger database (as JSON), one per spec."""
    scheduler = scheduler or BlockingScheduler(timezone=dt.UTC)
    target = store.engine.url.render_as_string(hide_password=True)
    _TARGETS[target] = store.engine.url.render_as_string(hide_password=False)
    scheduler.configure(
        jobstores={"default": LedgerJobStore(store, target)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE,
        },
        timezone=dt.UTC,
    )
    _forget_unconfigured(store, {f"ledger-{spec.job}" for spec in specs})
    for spec in specs:
        scheduler.add_job(
            execute,
            spec.trigger(),
            id=f"ledger-{spec.job}",
            name=spec.job,
            kwargs={"spec": msgspec.to_builtins(spec), "target": target},
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
    #: ``every <seconds>s`` or ``cron <line>``; ``every`` and ``cron`` say the same apart.
    trigger: str
    every: float | None
    cron: str | None
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
                every=spec.every,
                cron=spec.cron,
                options=spec.options,
                next_run=None if when is None else dt.datetime.fromtimestamp(when, dt.UTC),
                last_status=runs[0].status if runs else None,
                last_run=runs[0].started_at if runs else None,
            )
        )
    return infos
