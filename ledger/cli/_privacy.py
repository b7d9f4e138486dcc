"""Privacy requests: ``ledger erase`` (one user's, key's or session's content) and
``ledger erasures`` (the record of every erasure)."""

from __future__ import annotations

import click
import msgspec

from ledger.cli._common import open_store, progress_bar
from ledger.cli._options import confirm, json_option, scope_options, url_option
from ledger.cli._output import echo, emit_json, printable
from ledger.maintenance import CompactionReport, Scope, erase, erasure_history, scope_of

__all__ = ["erase_command", "erasures_command"]


def _plan(scope: Scope, report: CompactionReport) -> str:
    ids = ", ".join(report.session_ids) or "none"
    return (
        f"erasing {scope.kind} {scope.subject!r} would remove {report.sessions} sessions "
        f"({ids}) and {report.events} events"
    )


@click.command("erase")
@url_option
@scope_options
@click.option("--dry-run", is_flag=True, help="List what would be erased; write nothing.")
@click.option("--yes", is_flag=True, help="Really erase (otherwise: say what, change nothing).")
@click.option(
    "--by", "requested_by", default=None, help="Who asked, for the record (default: user@host)."
)
@json_option
def erase_command(
    url: str | None,
    user: str | None,
    key: str | None,
    session: str | None,
    dry_run: bool,
    yes: bool,
    requested_by: str | None,
    as_json: bool,
) -> None:
    """Erase the content of one --user, --key or --session: log, views, archive, search.

    Heads stay as tombstones (sequences are never reused) and the erasure is recorded (who,
    when, which scope; never the content: ``ledger erasures``).
    """
    scope = scope_of(user=user, key=key, session=session)
    with open_store(url, create=False) as store:
        if not dry_run:
            confirm(yes, printable(_plan(scope, erase(store, scope, dry_run=True))), scope.subject)
        with progress_bar("erase", 0, quiet=as_json) as advance:
            report = erase(
                store, scope, dry_run=dry_run, requested_by=requested_by, progress=advance
            )
    if as_json:
        emit_json(msgspec.to_builtins(report))
        return
    if dry_run:
        echo(_plan(scope, report))
        return
    what = f"{scope.kind} {scope.subject!r}"
    echo(f"erased {report.sessions} sessions, {report.events} events ({what})")
    for session_id in report.session_ids:
        echo(f"  {session_id}")
    for line in report.details:
        echo(f"  {line}")


@click.command("erasures")
@url_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@json_option
def erasures_command(url: str | None, limit: int, as_json: bool) -> None:
    """The record of every erasure, newest first: who, when, which scope, how much."""
    with open_store(url, create=False) as store:
        records = erasure_history(store, limit=limit)
    if as_json:
        emit_json(msgspec.to_builtins(records))
        return
    for r in records:
        echo(
            f"{r.erasure_id:>5} {r.erased_at:%Y-%m-%d %H:%M:%S} {r.scope} {r.subject!r}: "
            f"{r.sessions} sessions, {r.events} events, by {r.requested_by}"
        )
