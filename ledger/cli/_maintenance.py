"""``ledger compact …``: the compaction jobs by hand, and the history of every run."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from ledger.cli._common import open_store, progress_bar
from ledger.cli._options import json_option, url_option
from ledger.cli._output import echo, emit_json
from ledger.maintenance import CompactionReport, history, parse_duration, restore, run_job
from ledger.maintenance.scheduler import build_scheduler, describe_jobs, load_schedule

__all__ = ["compact", "scheduler"]


@click.group()
def compact() -> None:
    """Archive, purge, compact and vacuum: keep the store small without losing anything."""


F = TypeVar("F", bound=Callable[..., Any])


def _job_options(default_age: str | None) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        func = click.option(
            "--older-than",
            default=default_age,
            show_default=default_age is not None,
            help="Age: 30d, 12h, 90s (a bare number is seconds).",
        )(func)
        func = click.option(
            "--dry-run", is_flag=True, help="Report what would change; write nothing."
        )(func)
        return url_option(json_option(func))

    return decorate


def _print(report: CompactionReport | None, as_json: bool) -> None:
    if report is None:
        return
    if as_json:
        emit_json(msgspec.to_builtins(report))
        return
    verb = "would touch" if report.dry_run else "touched"
    echo(
        f"{report.job}: {verb} {report.sessions} sessions/streams, {report.events} events; "
        f"bytes {report.bytes_before} -> {report.bytes_after}"
    )
    for line in report.details:
        echo(f"  {line}")


def _run(job: str, url: str | None, as_json: bool, dry_run: bool, **options: Any) -> None:
    with open_store(url) as store, progress_bar(job, 0, quiet=as_json) as advance:
        report = run_job(store, job, dry_run=dry_run, progress=advance, **options)
    _print(report, as_json)


@compact.command("archive")
@_job_options("30d")
def archive_command(url: str | None, as_json: bool, dry_run: bool, older_than: str) -> None:
    """Move closed or idle sessions into compressed segments (reads stay transparent)."""
    _run("archive", url, as_json, dry_run, older_than=parse_duration(older_than))


@compact.command("restore")
@url_option
@json_option
@click.option("--dry-run", is_flag=True)
@click.argument("session_id")
def restore_command(url: str | None, as_json: bool, dry_run: bool, session_id: str) -> None:
    """Bring archived SESSION_ID back into the live table, byte-for-byte."""
    with open_store(url) as store:
        _print(restore(store, session_id, dry_run=dry_run), as_json)


@compact.command("retention")
@_job_options(None)
def retention_command(
    url: str | None, as_json: bool, dry_run: bool, older_than: str | None
) -> None:
    """Purge sessions idle longer than --older-than (required), keeping tombstone heads."""
    age = parse_duration(older_than) if older_than is not None else None
    _run("retention", url, as_json, dry_run, older_than=age)


@compact.command("keys")
@_job_options("7d")
def keys_command(url: str | None, as_json: bool, dry_run: bool, older_than: str) -> None:
    """Drop old switches from key streams, keeping each key's latest."""
    _run("keys", url, as_json, dry_run, older_than=parse_duration(older_than))


@compact.command("snapshot")
@url_option
@json_option
@click.option("--dry-run", is_flag=True)
def snapshot_command(url: str | None, as_json: bool, dry_run: bool) -> None:
    """Store the inline views so the next rebuild starts from here."""
    _run("snapshot", url, as_json, dry_run)


@compact.command("vacuum")
@url_option
@json_option
@click.option("--dry-run", is_flag=True)
def vacuum_command(url: str | None, as_json: bool, dry_run: bool) -> None:
    """SQLite: return free pages in bounded steps; PostgreSQL: ANALYZE."""
    _run("vacuum", url, as_json, dry_run)


@compact.command("history")
@url_option
@json_option
@click.option("--job", default=None)
@click.option("--limit", default=20, show_default=True)
def history_command(url: str | None, as_json: bool, job: str | None, limit: int) -> None:
    """The most recent job runs (by hand or by the scheduler) and their outcome."""
    with open_store(url) as store:
        runs = history(store, job=job, limit=limit)
    if as_json:
        emit_json(msgspec.to_builtins(runs))
        return
    for run in runs:
        report = run.report or {}
        echo(
            f"{run.run_id:>5} {run.started_at:%Y-%m-%d %H:%M:%S} {run.job:<9} {run.status:<7} "
            f"{'dry-run ' if run.dry_run else ''}sessions={report.get('sessions', '-')} "
            f"events={report.get('events', '-')} by {run.runner}"
        )


@click.group()
def scheduler() -> None:
    """Run the compaction jobs on a schedule (APScheduler, one run per schedule across hosts)."""


def _config_option(func: F) -> F:
    return click.option(
        "--config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Schedule TOML file (default: LEDGER_SCHEDULE_FILE / LEDGER_SCHEDULE_<JOB>).",
    )(func)


@scheduler.command("run")
@url_option
@_config_option
@click.option("--exit-after", type=float, default=None, help="Stop after this many seconds.")
def scheduler_run(url: str | None, config: Path | None, exit_after: float | None) -> None:
    """Run the scheduler in the foreground until SIGINT/SIGTERM."""
    specs = load_schedule(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with open_store(url) as store:
        running = build_scheduler(store, specs)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: running.shutdown(wait=False))
        if exit_after is not None:
            timer = threading.Timer(exit_after, lambda: running.shutdown(wait=False))
            timer.daemon = True
            timer.start()
        echo(f"scheduler running {', '.join(s.job for s in specs)}; Ctrl-C to stop", err=True)
        running.start()


@scheduler.command("jobs")
@url_option
@_config_option
@json_option
def scheduler_jobs(url: str | None, config: Path | None, as_json: bool) -> None:
    """The configured jobs, their next run and their last result."""
    specs = load_schedule(config)
    with open_store(url) as store:
        infos = describe_jobs(store, specs)
    if as_json:
        emit_json(msgspec.to_builtins(infos))
        return
    for info in infos:
        echo(
            f"{info.job:<10} {info.trigger:<22} next {info.next_run or '-'}  "
            f"last {info.last_status or '-'} {info.last_run or ''} {info.options or ''}"
        )
