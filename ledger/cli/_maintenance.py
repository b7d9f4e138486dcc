"""``ledger compact …``: the compaction jobs by hand, and the history of every run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import msgspec

from ledger.cli._common import open_store, progress_bar
from ledger.cli._options import confirm, json_option, url_option
from ledger.cli._output import echo, emit_json, printable
from ledger.maintenance import (
    CompactionReport,
    history,
    parse_duration,
    restore,
    retention,
    run_job,
)

__all__ = ["compact"]


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
    for session_id in report.session_ids:
        echo(f"  {session_id}")
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
@click.option("--key", default=None, help="Only sessions opened under this session key.")
@click.option("--user", default=None, help="Only sessions opened with this user id.")
@click.option("--yes", is_flag=True, help="Really purge (otherwise: say what, change nothing).")
def retention_command(
    url: str | None,
    as_json: bool,
    dry_run: bool,
    older_than: str | None,
    key: str | None,
    user: str | None,
    yes: bool,
) -> None:
    """Purge sessions idle longer than --older-than (required), keeping tombstone heads.

    Without --yes (or a typed confirmation on a terminal) it lists what it would purge and
    changes nothing.
    """
    age = parse_duration(older_than) if older_than is not None else None
    if not dry_run and not yes:
        with open_store(url, create=False) as store:
            plan = retention(store, older_than=age, key=key, user=user, dry_run=True)
        ids = ", ".join(plan.session_ids) or "none"
        confirm(yes, printable(f"retention would purge {plan.sessions} sessions ({ids})"), "purge")
    _run("retention", url, as_json, dry_run, older_than=age, key=key, user=user)


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
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
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
