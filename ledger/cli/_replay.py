"""``ledger replay`` and ``ledger explain``: why did the agent cache bust?

Both read the log (a database, read-only, or a JSONL export) and run :func:`ledger.replay.replay`.
``replay`` prints totals per guard and per key; ``explain`` prints one key's timeline with each
guard's decision at every turn. Output is a table for people, ``--json`` for machines and
``--html FILE`` for a self-contained timeline page (``ledger.replay._explain``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.table import Table
from rich.text import Text

from ledger.cli._common import open_store, progress_bar
from ledger.cli._files import atomic_output, check_output
from ledger.cli._options import json_option, url_option
from ledger.cli._output import echo, emit_json, print_table, text
from ledger.codec import Codec
from ledger.config import Settings
from ledger.errors import InvalidArgumentError
from ledger.jsonl import read_jsonl
from ledger.records import RecordedEvent
from ledger.replay import GUARDS, KeyReport, ReplayReport, TimelineEntry, replay
from ledger.replay._explain import HTML_LIMIT, LABELS, render_html, replay_document

__all__ = ["explain_command", "replay_command"]


def _records(
    stack: ExitStack, url: str | None, jsonl: Path | None
) -> tuple[Iterator[RecordedEvent], int]:
    """The log to replay and its size (for the progress bar)."""
    if jsonl is not None:
        lines = stack.enter_context(jsonl.open("rb"))
        codec = Codec(max_event_bytes=Settings.from_env().max_event_bytes)
        return read_jsonl(lines, codec), 0
    store = stack.enter_context(open_store(url, create=False))
    return store.read_all(batch_size=5000), store.last_position()


def _since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError("--since", value, "an ISO date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _guards(value: str) -> list[str]:
    chosen = [g.strip() for g in value.split(",") if g.strip()]
    unknown = [g for g in chosen if g not in GUARDS]
    if unknown or not chosen:
        raise InvalidArgumentError(
            "--guard", value, "a comma-separated subset of " + ",".join(GUARDS)
        )
    return chosen


def _run(
    url: str | None,
    jsonl: Path | None,
    keys: list[str] | None,
    since: str | None,
    guard: str,
    timeline: bool,
    quiet: bool,
) -> ReplayReport:
    with ExitStack() as stack:
        records, total = _records(stack, url, jsonl)
        with progress_bar("replay", total, quiet) as advance:
            return replay(
                records,
                keys=keys,
                since=_since(since),
                guards=_guards(guard),
                timeline=timeline,
                progress=advance,
            )


def _source_options(func: Any) -> Any:
    func = click.option("--guard", default=",".join(GUARDS), show_default=True)(func)
    func = click.option("--since", default=None, help="Only turns at or after this ISO time.")(func)
    func = click.option(
        "--from-jsonl",
        "jsonl",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Replay an export instead of a database.",
    )(func)
    func = click.option(
        "--html-limit",
        type=click.IntRange(min=0),
        default=HTML_LIMIT,
        show_default=True,
        help="At most this many timeline rows in the --html page; beyond it the page keeps "
        "only rebuilds and disagreements with their causes.",
    )(func)
    func = click.option("--force", is_flag=True, help="Replace an existing --html file.")(func)
    func = click.option(
        "--html",
        "html_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write a self-contained timeline page to this file.",
    )(func)
    return url_option(json_option(func))


def _check_html(html_file: Path | None, url: str | None, jsonl: Path | None, force: bool) -> None:
    """Before any work: the page must not land on the database, the replayed export, or an
    existing file unless ``--force``."""
    if html_file is None:
        return
    if jsonl is not None and html_file.resolve() == jsonl.resolve():
        raise InvalidArgumentError("--html", str(html_file), "a file other than --from-jsonl")
    check_output(html_file, None if jsonl is not None else url, force=force)


def _write_html(path: Path, report: ReplayReport, limit: int) -> None:
    with atomic_output(path) as out:
        out.write(render_html(report, limit=limit).encode("utf-8"))
    echo(f"wrote {path}", err=True)


@click.command("replay")
@_source_options
@click.option("--key", "keys", multiple=True, help="Only these session keys (repeatable).")
def replay_command(
    url: str | None,
    as_json: bool,
    html_file: Path | None,
    html_limit: int,
    jsonl: Path | None,
    since: str | None,
    guard: str,
    force: bool,
    keys: tuple[str, ...],
) -> None:
    """Replay the log and total, per guard, the rebuilds, false busts and missed changes."""
    _check_html(html_file, url, jsonl, force)
    report = _run(url, jsonl, list(keys) or None, since, guard, html_file is not None, as_json)
    if html_file is not None:
        _write_html(html_file, report, html_limit)
    if as_json:
        emit_json(replay_document(report))
    elif html_file is None:
        _print_totals(report)


@click.command("explain")
@_source_options
@click.argument("session_key")
def explain_command(
    url: str | None,
    as_json: bool,
    html_file: Path | None,
    html_limit: int,
    jsonl: Path | None,
    since: str | None,
    guard: str,
    force: bool,
    session_key: str,
) -> None:
    """Show the timeline of SESSION_KEY with every guard's decision and its cause."""
    _check_html(html_file, url, jsonl, force)
    report = _run(url, jsonl, [session_key], since, guard, True, as_json)
    key = report.keys.get(session_key)
    if key is None:
        raise InvalidArgumentError("session_key", session_key, "a key with events in the log")
    if html_file is not None:
        _write_html(html_file, report, html_limit)
    if as_json:
        emit_json(msgspec.to_builtins(key))
    elif html_file is None:
        _print_timeline(key)


#: How each verdict is styled in the timeline (the words say it too).
_VERDICT_STYLE = {"false_bust": "red", "missed_change": "bold red", "build": "dim"}
#: The widest the event column gets before it wraps (ids and times never wrap).
_EVENT_WIDTH = 60


def _print_totals(report: ReplayReport) -> None:
    table = Table(title=text(f"{report.events} events, {report.turns} turns"))
    table.add_column("key", no_wrap=True)
    for name in report.guards:
        table.add_column(f"{LABELS[name]}\nrebuilds/false/missed", justify="right", no_wrap=True)
    for key, detail in report.keys.items():
        table.add_row(
            text(key),
            *(_cell(t.rebuilds, t.false_busts, t.missed_changes) for t in detail.guards.values()),
        )
    table.add_row(
        text("total", "bold"),
        *(_cell(t.rebuilds, t.false_busts, t.missed_changes) for t in report.guards.values()),
    )
    print_table(table)
    live = report.recorded
    if live.decisions:
        echo(
            f"recorded by the live caches: {live.decisions} decisions, {live.builds} builds; "
            f"{live.disagreements} turns where the live cache and the simulated ledger guard "
            "disagree (evictions, TTL expiry, restarts)"
        )


def _cell(rebuilds: int, false_busts: int, missed: int) -> str:
    return f"{rebuilds}/{false_busts}/{missed}"


def _print_timeline(key: KeyReport) -> None:
    table = Table(title=text(key.session_key))
    for column in ("position", "time", "writer", "session"):
        table.add_column(column, no_wrap=True)
    table.add_column("event", max_width=_EVENT_WIDTH, overflow="fold")
    for name in key.guards:
        table.add_column(name, no_wrap=True)
    recording = key.recorded.decisions > 0
    if recording:
        table.add_column("live (recorded)", no_wrap=True)
    for entry in key.timeline:
        cells = []
        for name in key.guards:
            decision = (entry.decisions or {}).get(name)
            if decision is None:
                cells.append(text(""))
                continue
            style = _VERDICT_STYLE.get(decision.verdict, "")
            cells.append(text(f"{decision.action} ({decision.reason})", style))
        if recording:
            cells.append(_live_cell(entry))
        table.add_row(
            str(entry.position),
            f"{entry.recorded_at:%H:%M:%S}",
            text(entry.writer),
            text(entry.session_id),
            text(f"{entry.kind}: {entry.detail}"),
            *cells,
        )
    print_table(table)


def _live_cell(entry: TimelineEntry) -> Text:
    """What the live cache recorded for a turn (``reuse (hit)`` when it recorded nothing)."""
    if entry.kind != "turn":
        return text("")
    live = entry.recorded
    action = "reuse" if live is None else live.action
    label = "reuse (hit)" if live is None else f"{live.action} ({live.reason})"
    simulated = (entry.decisions or {}).get("ledger")
    differs = simulated is not None and simulated.action != action
    return text(label + (" ≠ simulated" if differs else ""), "bold red" if differs else "")
