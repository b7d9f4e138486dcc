"""Moving data in and out: ``ledger export``, ``import-jsonl`` and ``import-hermes``."""

from __future__ import annotations

import itertools
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from itertools import groupby
from pathlib import Path

import click
import msgspec

from ledger.cli._common import open_store, progress_bar
from ledger.cli._files import atomic_output, check_output
from ledger.cli._options import MAX_POSITION, json_option, scope_options, url_option
from ledger.cli._output import echo, emit_json
from ledger.errors import InvalidArgumentError
from ledger.facade import Ledger
from ledger.hermes import ImportSummary, count_hermes_messages, follow_hermes, import_hermes
from ledger.hermes._follow import MAX_INTERVAL, MIN_INTERVAL
from ledger.jsonl import plan_import, read_jsonl, write_jsonl
from ledger.maintenance import export_scope, scope_of
from ledger.records import RecordedEvent, StreamAppend
from ledger.store import EventStore

__all__ = ["export", "import_hermes_command", "import_jsonl"]


@click.command()
@url_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--after",
    default=0,
    show_default=True,
    type=click.IntRange(0, MAX_POSITION),
    help="Only events after this position.",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@scope_options
def export(
    url: str | None,
    output: Path | None,
    after: int,
    force: bool,
    user: str | None,
    key: str | None,
    session: str | None,
) -> None:
    """Write the log as JSON Lines (stdout, or --output FILE).

    With --user, --key or --session: only that scope's sessions (their content and usage
    streams, and the key's switches), in log order: a privacy request's export.
    """
    scoped = any(value is not None for value in (user, key, session))
    scope = scope_of(user=user, key=key, session=session) if scoped else None
    if output is not None:
        check_output(output, url, force=force)
    with open_store(url, create=False) as store:
        total = 0 if scope else max(0, store.last_position() - after)
        with progress_bar("export", total, quiet=output is None) as advance:
            records = store.read_all(after) if scope is None else export_scope(store, scope)
            if scope is not None and after:
                records = (r for r in records if r.position > after)
            if output is None:
                count = write_jsonl(records, sys.stdout.buffer)
            else:
                with atomic_output(output) as out:
                    count = write_jsonl(_counting(records, advance), out)
    echo(f"exported {count} events", err=True)


def _counting(
    records: Iterator[RecordedEvent], advance: Callable[[int], None]
) -> Iterator[RecordedEvent]:
    for record in records:
        advance(1)
        yield record


@click.command("import-jsonl")
@url_option
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def import_jsonl(url: str | None, source: Path, as_json: bool) -> None:
    """Append the events of an export, keeping their ids, writers and times (idempotent).

    The whole file is checked first (every line decodes; each stream's sequences run on
    without a gap, and continue the ledger's head): a bad file is refused naming the line,
    with nothing written. Then each stream's events are appended at the sequences the file
    gives them; events already in the ledger (same id at the same sequence) are skipped, so
    an interrupted import is finished by running it again.
    """
    with open_store(url) as store:
        with source.open("rb") as lines:
            plan = plan_import(lines, store.codec)
        heads = {stream: store.head_sequence(stream) for stream in plan.streams}
        for stream, (first, line, _count) in plan.streams.items():
            if first > heads[stream] + 1:
                raise InvalidArgumentError(
                    f"JSONL event {line}",
                    f"{stream} sequence {first}",
                    f"sequence {heads[stream] + 1} at most: the ledger's head of {stream} is "
                    f"{heads[stream]}, so the file misses events (nothing was written)",
                )
        written = skipped = 0
        with (
            source.open("rb") as lines,
            progress_bar("importing", plan.events, quiet=as_json) as advance,
        ):
            records = read_jsonl(lines, store.codec)
            for (stream, writer), group in groupby(records, key=lambda r: (r.stream, r.writer)):
                batch = list(group)
                present = _already_present(store, stream, batch, heads[stream])
                fresh = batch[present:]
                skipped += present
                if fresh:
                    part = StreamAppend(
                        stream=stream,
                        events=[r.event for r in fresh],
                        event_ids=[r.event_id for r in fresh],
                        writer=writer,
                        recorded_at=[r.recorded_at for r in fresh],
                        expected_sequence=heads[stream],
                    )
                    heads[stream] = store.append_streams([part])[0].sequence
                    written += len(fresh)
                advance(len(batch))
    if as_json:
        emit_json({"written": written, "already_present": skipped})
    else:
        echo(f"imported {written} events ({skipped} already present)")


def _already_present(store: EventStore, stream: str, batch: list[RecordedEvent], head: int) -> int:
    """How many of ``batch`` (consecutive sequences) the ledger holds already, checking they
    are the same events (same ids at the same sequences); a different event there is refused."""
    count = sum(1 for r in batch if r.sequence <= head)
    if not count:
        return 0
    stored = {
        r.sequence: r.event_id
        for r in itertools.islice(store.read_stream(stream, batch[0].sequence), count)
    }
    for record in batch[:count]:
        if stored.get(record.sequence) != record.event_id:
            raise InvalidArgumentError(
                f"{stream} sequence {record.sequence}",
                str(record.event_id),
                f"the event the ledger holds there ({stored.get(record.sequence)}): the file "
                "is not an export of this ledger's history",
            )
    return count


@click.command("import-hermes")
@url_option
@click.argument("state_db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Events per transaction (a larger session gets one of its own).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep importing as Hermes writes (Ctrl-C or SIGTERM stops between rounds).",
)
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(MIN_INTERVAL, MAX_INTERVAL),
    help="Seconds between --follow rounds.",
)
@click.option("--rounds", type=click.IntRange(min=1), help="Stop --follow after this many rounds.")
@json_option
def import_hermes_command(
    url: str | None,
    state_db: Path,
    batch_size: int,
    follow: bool,
    interval: float,
    rounds: int | None,
    as_json: bool,
) -> None:
    """Import a Hermes Agent STATE_DB exactly: sessions, messages, prompts, usage.

    A re-run imports what changed since (content decides, not counts). With --follow, a
    report (or one JSON line) for the first round and for every round that changed something.
    """
    if follow:
        sys.exit(_follow(url, state_db, batch_size, interval, rounds, as_json))
    total = count_hermes_messages(state_db)
    with Ledger.open(url) as ledger, progress_bar("importing", total, quiet=as_json) as advance:
        summary = import_hermes(ledger, state_db, progress=advance, batch_size=batch_size)
    if as_json:
        emit_json(msgspec.to_builtins(summary))
    else:
        _report(summary)
    if summary.failed_sessions:
        sys.exit(1)


def _report(s: ImportSummary) -> None:
    echo(
        f"{s.sessions} sessions imported, {s.updated_sessions} updated, "
        f"{s.skipped_sessions} unchanged; {s.messages} messages, {s.retractions} retractions, "
        f"{s.reopened_sessions} reopened, {s.usage_records} usage records, "
        f"{s.events} events on {s.keys} keys in {s.seconds:.1f}s"
    )
    echo(
        f"left out: {s.skipped_meta_rows} session_meta rows, {s.unknown_role_rows} rows of "
        f"other roles, {s.orphan_rows} rows without a session, {len(s.bad_rows)} bad rows"
    )
    for row, why in s.bad_rows.items():
        echo(f"bad row: {row}: {why}", err=True)
    for session_id, error in s.failed_sessions.items():
        echo(f"failed: {session_id}: {error}", err=True)


def _follow(
    url: str | None,
    state_db: Path,
    batch_size: int,
    interval: float,
    rounds: int | None,
    as_json: bool,
) -> int:
    """The --follow loop; exit status 1 if any round failed a session."""
    stop = threading.Event()
    failed = False
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def on_round(number: int, summary: ImportSummary) -> None:
        nonlocal failed
        failed = failed or bool(summary.failed_sessions)
        if not (summary.events or summary.failed_sessions or number == 1):
            return  # a quiet round: nothing to say
        if as_json:
            # One line per round (JSON Lines), so a consumer can read rounds as they come.
            click.echo(json.dumps({"round": number, **msgspec.to_builtins(summary)}, default=str))
        else:
            echo(f"round {number}:")
            _report(summary)

    with Ledger.open(url) as ledger:
        follow_hermes(
            ledger,
            state_db,
            interval=interval,
            rounds=rounds,
            stop=stop,
            on_round=on_round,
            batch_size=batch_size,
        )
    return 1 if failed else 0
