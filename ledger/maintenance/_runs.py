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
from collections.abc import Callable
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger import plugins
from ledger.errors import DatabaseError, InvalidArgumentError
from ledger.maintenance._jobs import JOBS, CompactionReport, Progress
from ledger.schema import compaction_runs
from ledger.store import EventStore

__all__ = ["RunRecord", "describe", "history", "jobs", "run_job"]


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
    **options: Any,
) -> CompactionReport | None:
    """Run job ``name`` and record the run in ``compaction_runs`` (``ledger compact history``).

    A run for a ``scheduled_for`` time that another runner already claimed returns None
    without running: the UNIQUE (job, scheduled_for) row is the claim, so however many
    schedulers fire the same scheduled run, it executes once.
    """
    available = jobs()
    if name not in available:
        raise InvalidArgumentError("job", name, " | ".join(sorted(available)))
    job = available[name]
    if progress is not None:
        options["progress"] = progress
    _check_options(name, job, options)
    if dry_run:
        return job(store, dry_run=True, **options)
    runs = compaction_runs
    try:
        with store.transaction() as conn:
            run_id = conn.execute(
                runs.insert()
                .values(
                    job=name,
                    scheduled_for=scheduled_for,
                    runner=runner or store.writer,
                    dry_run=dry_run,
                    status="running",
                    started_at=_now(),
                )
                .returning(runs.c.run_id)
            ).scalar_one()
    except DatabaseError as exc:
        claimed = exc.constraint == "uq_compaction_runs_job_scheduled_for"
        if claimed and scheduled_for is not None:
            return None
        raise
    status, report = "failed", None
    try:
        report = job(store, dry_run=False, **options)
        status = "ok"
        return report
    except InvalidArgumentError:
        status = "refused"  # its arguments: the job raises this before it writes anything
        raise
    finally:
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
                        report=None if report is None else msgspec.json.encode(report).decode(),
                    )
                )


def _check_options(
    name: str, job: Callable[..., CompactionReport], options: dict[str, Any]
) -> None:
    """Refuse options ``job`` does not take, before anything runs or is recorded."""
    try:
        inspect.signature(job).bind(None, dry_run=False, **options)
    except TypeError as exc:
        taken = [
            p.name
            for p in inspect.signature(job).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in ("dry_run", "progress")
        ]
        raise InvalidArgumentError(
            f"{name} options", sorted(options), "options among: " + ", ".join(taken)
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
