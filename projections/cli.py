"""``ledger projections status|rebuild|verify|run``: plugged into the ``ledger`` CLI.

Importing this module imports only click and the CLI's options (``ledger --help`` lists the
group without loading the store); each command imports what it runs on when it runs.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import click

from ledger.cli import echo, emit_json, json_option, url_option

if TYPE_CHECKING:
    from projections.rebuild import Mismatch

__all__ = ["projections"]


@click.group()
def projections() -> None:
    """Inspect, rebuild, verify and run the projections of the log."""


@projections.command("status")
@url_option
@json_option
def status_command(url: str | None, as_json: bool) -> None:
    """Each projection with its checkpoint and lag behind the log."""
    import msgspec

    from ledger.cli import open_store
    from projections import rebuild as maintenance
    from projections.registry import select

    with open_store(url, create=False) as store:
        rows = maintenance.status(store, select(None))
    if as_json:
        emit_json(msgspec.to_builtins(rows))
        return
    for row in rows:
        echo(
            f"{row.name:<10} {row.kind:<6} checkpoint {row.checkpoint:>10}  "
            f"log {row.last_position:>10}  lag {row.lag}"
        )


@projections.command("rebuild")
@url_option
@click.argument("name", required=False)
@click.option(
    "--from-snapshot",
    is_flag=True,
    help="Start inline projections from their snapshot (fast; does not repair the snapshot).",
)
@json_option
def rebuild_command(url: str | None, name: str | None, from_snapshot: bool, as_json: bool) -> None:
    """Recreate NAME (default: every projection) from the log; safe to interrupt and rerun."""
    from ledger.cli import open_store, progress_bar
    from projections import rebuild as maintenance
    from projections.registry import select

    report: list[dict[str, Any]] = []
    with open_store(url) as store:
        total = store.last_position()
        for projection in select(name):
            with progress_bar(f"rebuild {projection.name}", total, as_json) as advance:
                events = maintenance.rebuild(
                    store, projection, advance, from_snapshot=from_snapshot
                )
            report.append({"projection": projection.name, "events": events})
    if as_json:
        emit_json(report)
    else:
        for item in report:
            echo(f"rebuilt {item['projection']} from {item['events']} events")


@projections.command("verify")
@url_option
@click.argument("name", required=False)
@json_option
def verify_command(url: str | None, name: str | None, as_json: bool) -> None:
    """Compare NAME (default: every projection, and ``log``: the stream heads) with the log;
    exit 1 on any mismatch."""
    import msgspec

    from ledger.cli import open_store, progress_bar
    from projections import rebuild as maintenance
    from projections.registry import select

    mismatches: list[Mismatch] = []
    with open_store(url, create=False) as store:
        total = store.last_position()
        for projection in [] if name == "log" else select(name):
            with progress_bar(f"verify {projection.name}", total, as_json) as advance:
                mismatches.extend(maintenance.verify(store, projection, advance))
        if name is None or name == "log":  # the log's own head table against its events
            mismatches.extend(maintenance.verify_heads(store))
    if as_json:
        emit_json({"ok": not mismatches, "mismatches": msgspec.to_builtins(mismatches)})
    else:
        for m in mismatches:
            echo(
                f"MISMATCH {m.projection}/{m.table} {m.kind} {m.key}: "
                f"live={m.live} expected={m.expected}"
            )
        click.echo(
            "all projections match the log" if not mismatches else f"{len(mismatches)} mismatches"
        )
    if mismatches:
        raise SystemExit(1)


@projections.command("run")
@url_option
@click.option("--once", is_flag=True, help="Catch up and exit instead of tailing.")
@click.option("--poll-interval", default=0.5, show_default=True, help="Seconds between polls.")
def run_command(url: str | None, once: bool, poll_interval: float) -> None:
    """Run the asynchronous projections: catch up, then tail the log until SIGINT/SIGTERM."""
    from ledger.cli import open_store
    from projections.registry import select
    from projections.runner import ProjectionRunner

    with open_store(url) as store:
        runner = ProjectionRunner(store, [p for p in select(None) if not p.inline])
        if once:
            click.echo(f"applied {runner.catch_up()} events")
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        click.echo("tailing the log; Ctrl-C to stop", err=True)
        runner.run(stop, poll_interval=poll_interval)
