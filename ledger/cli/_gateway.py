"""CLI commands for people running a gateway: demo, sessions, show, tail, bench.

They are registered on the root ``ledger`` group by :mod:`ledger.cli`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import msgspec
from rich.table import Table

from ledger.cli._common import open_store
from ledger.cli._demo import run_demo
from ledger.cli._options import MAX_POSITION, json_option, url_option
from ledger.cli._output import console, echo, emit_json, print_table, text, write_tsv
from ledger.cli._render import DEFAULT_MAX_CHARS, head_summary, message_text, sessions_table
from ledger.facade import Ledger
from ledger.views import SessionHead

__all__ = ["bench", "demo", "sessions", "show", "tail"]

#: The fields ``sessions --plain`` prints, in order: the table's, named as in ``--json``.
PLAIN_FIELDS = (
    "session_id",
    "session_key",
    "source",
    "state",
    "message_count",
    "sequence",
    "last_activity_at",
    "title",
)


@click.command()
@url_option
@click.option(
    "--turns",
    default=400,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Gateway turns to simulate.",
)
@click.option(
    "--keys",
    default=12,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Conversation slots (chats).",
)
@click.option("--seed", default=7, show_default=True, help="Random seed.")
@click.option("--quick", is_flag=True, help="A short run (60 turns, 4 chats).")
@json_option
def demo(url: str | None, turns: int, keys: int, seed: int, quick: bool, as_json: bool) -> None:
    """Simulate a multi-platform gateway on the ledger and compare the three cache guards."""
    if quick:
        turns, keys = 60, 4
    started = time.perf_counter()
    with Ledger.open(url) as ledger:
        where = ledger.store.engine.url.render_as_string(hide_password=True)
        if not as_json:
            echo(f"gateway demo on {where}: {turns} turns over {keys} chats")
        result = run_demo(
            ledger,
            turns=turns,
            keys=keys,
            seed=seed,
            log=(lambda _: None) if as_json else echo,
        )
    elapsed = time.perf_counter() - started
    report = result.report
    assert report is not None
    if as_json:
        emit_json(
            {
                "run_id": result.run_id,
                "turns": result.turns,
                "agents_built": result.agents_built,
                "reuse_rate": result.reused / max(1, result.turns),
                "foreign_writes": result.foreign_writes,
                "commands": result.commands,
                "seconds": round(elapsed, 2),
                "guards": msgspec.to_builtins(report.guards),
                "cache_stats": msgspec.to_builtins(result.stats),
                "recorded": msgspec.to_builtins(report.recorded),
            }
        )
        return
    out = console()
    table = Table(title=f"{result.turns} turns in {elapsed:.1f}s — guards replayed from the log")
    for column in ("guard", "agents built", "rebuilds", "false busts", "missed changes"):
        table.add_column(column, justify="right" if column != "guard" else "left")
    labels = {"legacy": "mutable counter", "hermes": "4-tuple fix", "ledger": "this ledger"}
    for name, totals in report.guards.items():
        table.add_row(
            labels[name],
            str(totals.builds),
            str(totals.rebuilds),
            str(totals.false_busts),
            str(totals.missed_changes),
        )
    print_table(table, out)
    out.print(
        text(
            f"live AgentCache: {result.agents_built} agents built, "
            f"reuse rate {result.reused / max(1, result.turns):.0%}; commands "
            f"{result.commands}; scheduler process wrote {result.foreign_writes} reminders"
        )
    )
    stats = result.stats
    if stats is not None:
        rate = "-" if stats.hit_rate is None else f"{stats.hit_rate:.0%}"
        out.print(
            text(
                f"cache stats: {stats.builds} builds ({stats.build_seconds:.3f}s building), "
                f"hit rate {rate}, decisions {stats.decisions}; {stats.recorded} recorded "
                f"decisions, {report.recorded.disagreements} turns where the live cache and "
                "the simulated ledger guard disagree"
            )
        )
    # The command as it was run (``.venv/bin/ledger`` after ``make demo``), so it pastes.
    prog = sys.argv[0] if Path(sys.argv[0]).name == "ledger" else "ledger"
    out.print(
        text(
            f"explore: {prog} sessions · {prog} show SESSION_ID · {prog} replay · "
            f"{prog} explain {result.keys[0]} --html timeline.html"
        ),
        soft_wrap=True,
    )


@click.command()
@url_option
@click.option("--key", "session_key", default=None, help="Only sessions of this session_key.")
@click.option("--source", default=None, help="Only sessions from this platform.")
@click.option("--state", type=click.Choice(["open", "closed"]), default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0, MAX_POSITION))
@click.option(
    "--plain",
    is_flag=True,
    help="Tab-separated values with a header row, for scripts (no table, nothing cut).",
)
@json_option
def sessions(
    url: str | None,
    session_key: str | None,
    source: str | None,
    state: str | None,
    limit: int,
    offset: int,
    plain: bool,
    as_json: bool,
) -> None:
    """List sessions, most recent gateway activity first (--json: every head field)."""
    if plain and as_json:
        raise click.UsageError("--plain and --json exclude each other: choose one")
    with open_store(url, create=False) as store:
        heads = Ledger(store).sessions(
            session_key=session_key, source=source, state=state, limit=limit, offset=offset
        )
    if as_json:
        emit_json(msgspec.to_builtins(heads))
    elif plain:
        write_tsv(list(PLAIN_FIELDS), [_plain_row(head) for head in heads])
    else:
        print_table(sessions_table(heads))


def _plain_row(head: SessionHead) -> list[str]:
    """``head``'s :data:`PLAIN_FIELDS` as ``--json`` gives them (times in ISO 8601), or ``""``
    for none."""
    fields = msgspec.to_builtins(head)
    return ["" if fields[name] is None else str(fields[name]) for name in PLAIN_FIELDS]


@click.command()
@url_option
@click.argument("session_id")
@click.option("--all", "include_retracted", is_flag=True, help="Also show retracted messages.")
@click.option(
    "--max-chars",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_CHARS,
    show_default=True,
    help="Cap each message and the system prompt at N characters (0: no cap; not --json).",
)
@json_option
def show(
    url: str | None, session_id: str, include_retracted: bool, max_chars: int, as_json: bool
) -> None:
    """Print the transcript of SESSION_ID (retractions applied; --json: every field)."""
    with open_store(url, create=False) as store:
        ledger = Ledger(store)
        head = ledger.head(session_id)
        messages = ledger.transcript(session_id, include_retracted=include_retracted)
    if as_json:
        emit_json({"head": msgspec.to_builtins(head), "messages": msgspec.to_builtins(messages)})
        return
    out = console()
    assert head is not None
    out.print(head_summary(head, max_chars), soft_wrap=True)
    for message in messages:
        out.print(message_text(message, max_chars), soft_wrap=True)


@click.command()
@url_option
@click.option(
    "--after",
    default=None,
    type=click.IntRange(0, MAX_POSITION),
    help="Start after this position (default: end).",
)
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=3600),
    help="Seconds between polls (0 < seconds <= 3600).",
)
@click.option("--once", is_flag=True, help="Print what is there and exit.")
@json_option
def tail(url: str | None, after: int | None, interval: float, once: bool, as_json: bool) -> None:
    """Follow the log live, one line per event (Ctrl-C to stop)."""
    encoder = msgspec.json.Encoder()
    with open_store(url, create=False) as store:
        position = store.last_position() if after is None else after
        try:
            while True:
                for record in store.read_all(position):
                    position = record.position
                    if as_json:
                        sys.stdout.buffer.write(encoder.encode(record) + b"\n")
                        sys.stdout.flush()
                    else:
                        echo(
                            f"{record.position:>8} {record.recorded_at:%H:%M:%S} "
                            f"{record.stream}#{record.sequence} {record.type} by {record.writer}"
                        )
                if once:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return


@click.command()
@url_option
@click.option(
    "--singles",
    default=500,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="Single-event appends.",
)
@click.option(
    "--batches",
    default=10,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="1,000-event appends.",
)
@click.option(
    "--scratch-ok", is_flag=True, help="Let bench write into the SQLite --url (never a ledger)."
)
@json_option
def bench(url: str | None, singles: int, batches: int, scratch_ok: bool, as_json: bool) -> None:
    """Measure appends, head reads and replay against the bare write, on this machine.

    Runs on a throwaway database: a temporary SQLite file, or with a PostgreSQL --url a
    temporary schema it drops; it never writes into a ledger.
    """
    from ledger.cli._bench import run_bench

    if not as_json:
        click.echo("measuring on a throwaway database…", err=True)
    report = run_bench(url, singles=singles, batches=batches, scratch_ok=scratch_ok)
    if as_json:
        emit_json(msgspec.to_builtins(report))
        return
    click.echo(
        f"single appends   {report.single_appends_per_s:>10,.0f}/s  vs Core one-row commits "
        f"{report.single_baseline_per_s:,.0f}/s  ratio {report.single_ratio:.2f}"
    )
    click.echo(
        f"1,000-event batch {report.batch_events_per_s:>9,.0f} ev/s vs Core executemany "
        f"{report.batch_baseline_per_s:,.0f} ev/s  ratio {report.batch_ratio:.2f}"
    )
    click.echo(
        f"head read        median {report.head_read_median_us:.0f} µs, "
        f"p99 {report.head_read_p99_us:.0f} µs"
    )
    click.echo(f"replay           {report.replay_events_per_s:>10,.0f} ev/s (three guards)")
