"""The ``ledger`` command line (click).

Every command takes ``--url`` (else ``LEDGER_DATABASE_URL``, else the embedded SQLite file) and,
where its output is data, ``--json``. Ledger errors are printed as one line on stderr with exit
status 1 (2 for usage errors, as click does), never as a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger import migration, plugins
from ledger.config import Settings
from ledger.database import create_engine
from ledger.errors import LedgerError
from ledger.store import EventStore

__all__ = ["cli", "emit_json", "json_option", "main", "open_store", "progress_bar", "url_option"]

F = TypeVar("F", bound=Callable[..., Any])


def url_option(func: F) -> F:
    """``--url``: the database to use."""
    return click.option(
        "--url",
        envvar="LEDGER_DATABASE_URL",
        default=None,
        help="SQLAlchemy URL (default: LEDGER_DATABASE_URL, else $LEDGER_HOME/ledger.db).",
    )(func)


def json_option(func: F) -> F:
    """``--json``: print machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def emit_json(data: object) -> None:
    """Print ``data`` as JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


class LedgerGroup(click.Group):
    """The root group: turns :class:`LedgerError` into a one-line message and exit 1, and adds
    the commands other packages plug in (``session_ledger.commands`` entry points)."""

    def _plugged(self) -> dict[str, click.Command]:
        return {command.name: command for command in plugins.load("commands") if command.name}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugged()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugged().get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=LedgerGroup)
@click.version_option(package_name="session-ledger")
def cli() -> None:
    """session-ledger: an event-sourced store for chat-agent gateways."""


@cli.group()
def db() -> None:
    """Manage the database schema (Alembic migrations)."""


@contextmanager
def open_store(url: str | None) -> Iterator[EventStore]:
    """The store at ``url`` (or the configured default), closed on exit."""
    store = EventStore.open(url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def progress_bar(label: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``. Silent when ``quiet``."""
    if quiet:
        yield lambda _n: None
        return
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=total or None)
        yield lambda n: progress.advance(task, n)


def _engine(url: str | None) -> Any:
    settings = Settings.from_env()
    return create_engine(settings.resolve_url(url), settings)


def _migrate(
    url: str | None, step: Callable[[Any, str], None], revision: str, verb: str, as_json: bool
) -> None:
    """Run one migration ``step`` and report the revision before and after."""
    engine = _engine(url)
    try:
        before = migration.current_revision(engine)
        step(engine, revision)
        after = migration.current_revision(engine)
    finally:
        engine.dispose()
    if as_json:
        emit_json({"from": before, "to": after, "head": migration.head_revision()})
    else:
        click.echo(f"{verb} {before or '<empty>'} -> {after or '<empty>'}")


@db.command("upgrade")
@url_option
@click.argument("revision", default="head")
@json_option
def db_upgrade(url: str | None, revision: str, as_json: bool) -> None:
    """Migrate the database up to REVISION (default: head)."""
    _migrate(url, migration.upgrade, revision, "upgraded", as_json)


@db.command("downgrade")
@url_option
@click.argument("revision")
@json_option
def db_downgrade(url: str | None, revision: str, as_json: bool) -> None:
    """Migrate the database down to REVISION (``base`` removes every table)."""
    _migrate(url, migration.downgrade, revision, "downgraded", as_json)


@db.command("current")
@url_option
@json_option
def db_current(url: str | None, as_json: bool) -> None:
    """Show the database's revision and whether it is the head."""
    engine = _engine(url)
    try:
        current = migration.current_revision(engine)
    finally:
        engine.dispose()
    head = migration.head_revision()
    if as_json:
        emit_json({"current": current, "head": head, "is_head": current == head})
    else:
        state = "(head)" if current == head else f"(head is {head}: run `ledger db upgrade`)"
        click.echo(f"{current or '<empty>'} {state}")


# The command modules register themselves on ``cli``; imported last because they import it.
from ledger import commands, explain, maintenance  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ledger")
