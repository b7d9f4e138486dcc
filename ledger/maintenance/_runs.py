"""Running a job by name and keeping its history (``compaction_runs``, ``ledger compact history``).

Every run that writes is a row: claimed (inserted) before the job starts, finished with its
status and report afterwards. A scheduled run's ``(job, scheduled_for)`` is UNIQUE, so however
many schedulers fire the same run, the first claim wins and the others return without running.
A dry run writes nothing, not even its row; a run refused for its arguments (unknown option,
bad value: :class:`InvalidArgumentError` before the job writes) leaves no row either, since it
never ran.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger import plugins
from ledger.errors import DatabaseError, InvalidArgumentError
from ledger.maintenance._jobs import JOBS, CompactionReport, Progress
from ledger.schema import compaction_runs
from ledger.store import EventStore

__all__ = [
    "FIXED_OPTIONS",
    "LEASE_SECONDS",
    "RunRecord",
    "describe",
    "history",
    "job_parameters",
    "jobs",
    "run_job",
]

log = logging.getLogger("ledger.maintenance")
#: How long a run's claim holds without a heartbeat: the time a killed run blocks its slot.
LEASE_SECONDS = 120.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def jobs() -> dict[str, Callable[..., CompactionReport]]:
    """Every runnable job by name (core jobs and ``session_ledger.jobs`` entry points)."""
    found = dict(JOBS)
    for job in plugins.load("jobs"):
        found[job.__name__] = job
    return found


def describe(report: CompactionReport) -> dict[str, Any]:
    """The report as plain data (the ``--json`` output)."""
    data: dict[str, Any] = msgspec.to_builtins(report)
    return data


def run_job(
    store: EventStore,
    name: str,
    *,
    dry_run: bool = False,
    scheduled_for: dt.datetime | None = None,
    runner: str | None = None,
    progress: Progress | None = None,
    lease: float = LEASE_SECONDS,
    **options: Any,
) -> CompactionReport | None:
    """Run job ``name`` and record the run in ``compaction_runs`` (``ledger compact history``).

    A run for a ``scheduled_for`` time that another runner already claimed returns None
    without running: the UNIQUE (job, scheduled_for) row is the claim, so however many
    schedulers fire the same scheduled run, it executes once. The claim is a lease of
    ``lease`` seconds that this process renews while the job works; if the claimant died (its
    lease expired, the run still ``running``), the next scheduler to fire that run takes it
    over and runs it. That is the retry rule: a run killed midway is retried once its lease has
    expired, by whoever fires it next; a run that failed is not retried (the next scheduled
    run is the retry, as every job is idempotent).
    """
    if lease <= 0:
        raise InvalidArgumentError("lease", lease, "seconds > 0")
    available = jobs()
    if name not in available:
        raise InvalidArgumentError("job", name, " | ".join(sorted(available)))
    job = available[name]
    if progress is not None:
        options["progress"] = progress
    _check_options(name, job, options)
    if dry_run:
        return job(store, dry_run=True, **options)
    who = runner or store.writer
    _abandon_expired(store)
    run_id = _claim(store, name, scheduled_for, who, lease)
    if run_id is None:
        return None
    status, report = "failed", None
    heartbeat = _Heartbeat(store, run_id, lease)
    try:
        report = job(store, dry_run=False, **options)
        status = "ok"
        return report
    except InvalidArgumentError:
        status = "refused"  # its arguments: the job raises this before it writes anything
        raise
    finally:
        heartbeat.stop()
        runs = compaction_runs
        with store.transaction() as conn:
            mine = runs.c.run_id == run_id
            if status == "refused":
                conn.execute(runs.delete().where(mine))
            else:
                conn.execute(
                    runs.update()
                    .where(mine)
                    .values(
                        status=status,
                        finished_at=_now(),
                        lease_until=None,
                        report=None if report is None else msgspec.json.encode(report).decode(),
                    )
                )


def _claim(
    store: EventStore, name: str, scheduled_for: dt.datetime | None, runner: str, lease: float
) -> int | None:
    """Insert the run's row (the claim), or take over a scheduled run whose lease expired."""
    runs = compaction_runs
    now = _now()
    until = now + dt.timedelta(seconds=lease)
    try:
        with store.transaction() as conn:
            return int(
                conn.execute(
                    runs.insert()
                    .values(
                        job=name,
                        scheduled_for=scheduled_for,
                        runner=runner,
                        dry_run=False,
                        status="running",
                        started_at=now,
                        lease_until=until,
                    )
                    .returning(runs.c.run_id)
                ).scalar_one()
            )
    except DatabaseError as exc:
        if exc.constraint != "uq_compaction_runs_job_scheduled_for" or scheduled_for is None:
            raise
    with store.transaction() as conn:
        # One UPDATE decides between schedulers taking over at once: the first one's lease
        # makes the condition false for the others.
        taken = conn.execute(
            runs.update()
            .where(
                runs.c.job == name,
                runs.c.scheduled_for == scheduled_for,
                runs.c.status == "running",
                runs.c.lease_until < now,
            )
            .values(runner=runner, started_at=now, lease_until=until)
            .returning(runs.c.run_id)
        ).scalar()
    if taken is not None:
        log.warning("%s run of %s: lease expired; %s takes it over", name, scheduled_for, runner)
    return None if taken is None else int(taken)


def _abandon_expired(store: EventStore) -> None:
    """Runs by hand whose process died stay ``running`` no longer: they are ``abandoned``."""
    runs = compaction_runs
    with store.transaction() as conn:
        conn.execute(
            runs.update()
            .where(
                runs.c.status == "running",
                runs.c.scheduled_for.is_(None),
                runs.c.lease_until < _now(),
            )
            .values(status="abandoned", finished_at=_now(), lease_until=None)
        )


class _Heartbeat:
    """Renews a run's lease every third of it while the job works (a daemon thread)."""

    def __init__(self, store: EventStore, run_id: int, lease: float) -> None:
        self._store = store
        self._run_id = run_id
        self._lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="ledger-run-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        runs = compaction_runs
        while not self._stop.wait(self._lease / 3):
            try:
                with self._store.transaction() as conn:
                    conn.execute(
                        runs.update()
                        .where(runs.c.run_id == self._run_id, runs.c.status == "running")
                        .values(lease_until=_now() + dt.timedelta(seconds=self._lease))
                    )
            except DatabaseError as exc:  # the next beat tries again; the lease may lapse
                log.warning("could not renew the lease of run %s: %s", self._run_id, exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


#: Job parameters the runner sets itself: never options of a run.
FIXED_OPTIONS = ("dry_run", "progress")


def job_parameters(job: Callable[..., CompactionReport]) -> dict[str, inspect.Parameter]:
    """The options ``job`` takes, by name: its keyword-only parameters but
    :data:`FIXED_OPTIONS` (checked here before a run, by the scheduler when it loads)."""
    return {
        name: parameter
        for name, parameter in inspect.signature(job).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in FIXED_OPTIONS
    }


def _check_options(
    name: str, job: Callable[..., CompactionReport], options: dict[str, Any]
) -> None:
    """Refuse options ``job`` does not take, before anything runs or is recorded."""
    try:
        inspect.signature(job).bind(None, dry_run=False, **options)
    except TypeError as exc:
        taken = ", ".join(job_parameters(job))
        raise InvalidArgumentError(
            f"{name} options", sorted(options), "options among: " + taken
        ) from exc


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded job run."""

    run_id: int
    job: str
    scheduled_for: dt.datetime | None
    runner: str
    dry_run: bool
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    report: dict[str, Any] | None
    #: While ``running``: until when the runner holds the claim (renewed as it works).
    lease_until: dt.datetime | None = None


def history(store: EventStore, *, job: str | None = None, limit: int = 50) -> list[RunRecord]:
    """The most recent job runs, newest first."""
    runs = compaction_runs
    query = sa.select(runs).order_by(runs.c.run_id.desc()).limit(limit)
    if job is not None:
        query = query.where(runs.c.job == job)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        RunRecord(
            **{k: row[k] for k in RunRecord.__struct_fields__ if k != "report"},
            report=None if row["report"] is None else msgspec.json.decode(row["report"]),
        )
        for row in rows
    ]
