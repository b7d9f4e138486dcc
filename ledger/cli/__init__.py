"""The ``ledger`` command line (click): a root group and the commands registered on it.

Every command takes ``--url`` (else ``LEDGER_DATABASE_URL``, else the embedded SQLite file) and,
where its output is data, ``--json``. Ledger errors are printed as one line on stderr with exit
status 1 (2 for usage errors, as click does), never as a traceback.

The command modules define plain click commands and import nothing from here; this module adds
each one to the root group explicitly (no registration by import side effect), and commands
other packages provide come in through ``session_ledger.commands`` entry points.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ledger import plugins
from ledger.cli._common import emit_json, json_option, open_store, progress_bar, url_option
from ledger.cli._db import db
from ledger.cli._gateway import bench, demo, sessions, show, tail
from ledger.cli._maintenance import compact, scheduler
from ledger.cli._replay import explain_command, replay_command
from ledger.cli._transfer import export, import_hermes_command, import_jsonl
from ledger.errors import LedgerError

__all__ = ["cli", "emit_json", "json_option", "main", "open_store", "progress_bar", "url_option"]


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


for _command in (
    db,
    demo,
    sessions,
    show,
    tail,
    bench,
    export,
    import_jsonl,
    import_hermes_command,
    replay_command,
    explain_command,
    compact,
    scheduler,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ledger")
