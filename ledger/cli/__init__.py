"""The ``ledger`` command line (click): a root group and the commands registered on it.

Every command takes ``--url`` (else ``LEDGER_DATABASE_URL``, else the embedded SQLite file) and,
where its output is data, ``--json``; both may also come before the command (``ledger --url X
sessions``), where a command's own option wins. Every error is one ``error: …`` line on stderr:
exit status 1, or 2 for a usage error (as click and POSIX tools do), never a traceback.

The root group lists its commands without importing them: :data:`COMMANDS` names each one's
module and short help, and a command's module (with SQLAlchemy, rich, APScheduler behind it)
is imported only when that command runs, so ``ledger --help`` and ``ledger --version`` start
fast. The command modules define plain click commands and import nothing from here; commands
other packages provide come in through ``session_ledger.commands`` entry points (named as
their commands), loaded when run or listed.
"""

from __future__ import annotations

import errno
import importlib
import os
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import click

from ledger.cli._options import json_option, url_option
from ledger.cli._output import echo, emit_json, one_line, printable
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from ledger.cli._common import open_store, progress_bar

__all__ = [
    "COMMANDS",
    "cli",
    "echo",
    "emit_json",
    "json_option",
    "main",
    "open_store",
    "printable",
    "progress_bar",
    "url_option",
]

#: The entry-point group of the commands other packages plug in.
PLUGIN_GROUP = "session_ledger.commands"
#: What the root ``--url`` sets for the command it runs (the variable every ``--url`` reads).
URL_VARIABLE = "LEDGER_DATABASE_URL"


class LazyCommand(NamedTuple):
    """A built-in command the root group lists without importing: ``module:attribute`` and the
    short help ``ledger --help`` shows (``test_the_listed_help_is_each_commands_own`` keeps it
    equal to the command's)."""

    target: str
    short_help: str


#: The built-in commands, by name.
COMMANDS: dict[str, LazyCommand] = {
    "bench": LazyCommand(
        "ledger.cli._gateway:bench",
        "Measure appends, head reads and replay against the bare write, on this machine.",
    ),
    "compact": LazyCommand(
        "ledger.cli._maintenance:compact",
        "Archive, purge, compact and vacuum: keep the store small without losing anything.",
    ),
    "db": LazyCommand("ledger.cli._db:db", "Manage the database schema (Alembic migrations)."),
    "demo": LazyCommand(
        "ledger.cli._gateway:demo",
        "Simulate a multi-platform gateway on the ledger and compare the three cache guards.",
    ),
    "erase": LazyCommand(
        "ledger.cli._privacy:erase_command",
        "Erase the content of one --user, --key or --session: log, views, archive, search.",
    ),
    "erasures": LazyCommand(
        "ledger.cli._privacy:erasures_command",
        "The record of every erasure, newest first: who, when, which scope, how much.",
    ),
    "explain": LazyCommand(
        "ledger.cli._replay:explain_command",
        "Show the timeline of SESSION_KEY with every guard's decision and its cause.",
    ),
    "export": LazyCommand(
        "ledger.cli._transfer:export", "Write the log as JSON Lines (stdout, or --output FILE)."
    ),
    "import-hermes": LazyCommand(
        "ledger.cli._transfer:import_hermes_command",
        "Import a Hermes Agent STATE_DB exactly: sessions, messages, prompts, usage.",
    ),
    "import-jsonl": LazyCommand(
        "ledger.cli._transfer:import_jsonl",
        "Append the events of an export, keeping their ids, writers and times (idempotent).",
    ),
    "replay": LazyCommand(
        "ledger.cli._replay:replay_command",
        "Replay the log and total, per guard, the rebuilds, false busts and missed changes.",
    ),
    "scheduler": LazyCommand(
        "ledger.cli._scheduler:scheduler",
        "Run the compaction jobs on a schedule (APScheduler, one run per schedule across hosts).",
    ),
    "sessions": LazyCommand(
        "ledger.cli._gateway:sessions",
        "List sessions, most recent gateway activity first (--json: every head field).",
    ),
    "show": LazyCommand(
        "ledger.cli._gateway:show",
        "Print the transcript of SESSION_ID (retractions applied; --json: every field).",
    ),
    "tail": LazyCommand(
        "ledger.cli._gateway:tail", "Follow the log live, one line per event (Ctrl-C to stop)."
    ),
}

#: click's usage error raised to print a group's help when it is given no command (click 8.2+).
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class OneLineError(click.ClickException):
    """An error as the ledger prints it: ``error: <message>`` on one line of stderr, exit 1."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class OneLineUsageError(OneLineError):
    """A usage error as one ``error:`` line saying where the help is; exit status 2."""

    exit_code = 2


def _one_line_error(exc: Exception) -> OneLineError:
    """``exc`` as one ``error:`` line: a usage error with where to find help (exit 2), any
    other click, ledger or operating-system error with status 1."""
    if isinstance(exc, OneLineError):
        return exc
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx is not None else "ledger"
        return OneLineUsageError(f"{exc.format_message()} Try '{where} --help' for help.")
    if isinstance(exc, click.ClickException):
        return OneLineError(exc.format_message())
    return OneLineError(str(exc) or type(exc).__name__)


def _is_one_line_error(exc: BaseException) -> bool:
    """Whether ``exc`` is reported as an ``error:`` line (not a group's help, a broken pipe
    (click's own handling) or a bug, which keeps its traceback)."""
    if isinstance(exc, _NO_ARGS_IS_HELP):
        return False
    if isinstance(exc, OSError):
        return exc.errno != errno.EPIPE
    return isinstance(exc, click.ClickException | LedgerError)


def _refuse_undecodable(args: list[str]) -> None:
    """Refuse an argument that was not valid UTF-8 (Python hands its bytes over as lone
    surrogates, which no database column can hold): a usage error, before any command runs."""
    for arg in args:
        try:
            arg.encode()
        except UnicodeEncodeError:
            try:
                shown = repr(arg.encode(errors="surrogateescape"))  # the bytes as given
            except UnicodeEncodeError:
                shown = arg.encode(errors="backslashreplace").decode()
            raise click.UsageError(f"argument {shown} is not valid UTF-8") from None


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


class LedgerGroup(click.Group):
    """The root group: commands imported when they run (:data:`COMMANDS`, then the
    ``session_ledger.commands`` entry points), and every error as one ``error:`` line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: Mapping[str, LazyCommand] = COMMANDS
        self._plugins: dict[str, EntryPoint] | None = None

    def plugins(self) -> dict[str, EntryPoint]:
        """The plugged-in commands' entry points by name, not loaded (a built-in name wins)."""
        if self._plugins is None:
            from importlib.metadata import entry_points

            found = entry_points(group=PLUGIN_GROUP)
            self._plugins = {ep.name: ep for ep in sorted(found, key=lambda ep: ep.name)}
        return self._plugins

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands, *self.plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        if cmd_name in self.lazy_commands:
            command = _load(self.lazy_commands[cmd_name].target)
        elif cmd_name in self.plugins():
            command = self.plugins()[cmd_name].load()
        else:
            return None
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``: built-ins from :data:`COMMANDS`, not imported."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.lazy_commands and name not in self.commands:
                listed = click.Command(name, help=self.lazy_commands[name].short_help)
                rows.append((name, listed.get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            if parent is None:
                _refuse_undecodable(args)
            return super().make_context(info_name, args, parent, **extra)
        except Exception as exc:  # a usage error in the root's own options
            if _is_one_line_error(exc):
                raise _one_line_error(exc) from exc
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # the command's, or its options' (parsed in here)
            if _is_one_line_error(exc):
                raise _one_line_error(exc) from exc
            raise


def _json_defaults(command: click.Command, ctx: click.Context) -> dict[str, Any]:
    """``default_map`` entries giving ``--json`` to ``command`` and to every command under it
    that takes it (click looks a subcommand's defaults up under its name)."""
    defaults: dict[str, Any] = {}
    if any(param.name == "as_json" for param in command.params):
        defaults["as_json"] = True
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                defaults[name] = _json_defaults(sub, ctx)
    return defaults


def _merged(base: Mapping[str, Any] | None, over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base or {})
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_for_the_command(ctx: click.Context, variable: str, value: str) -> None:
    """Set the environment ``variable`` while the root context lives, then restore it."""
    before = os.environ.get(variable)
    os.environ[variable] = value

    def restore() -> None:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before

    ctx.call_on_close(restore)


@click.group(name="ledger", cls=LedgerGroup)
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="Database for the command, as LEDGER_DATABASE_URL (the command's own --url wins).",
)
@click.option("--json", "as_json", is_flag=True, help="--json for the command (if it has one).")
@click.version_option(package_name="session-ledger")
@click.pass_context
def cli(ctx: click.Context, url: str | None, as_json: bool) -> None:
    """session-ledger: an event-sourced store for chat-agent gateways."""
    # A command's --url reads LEDGER_DATABASE_URL when not given, so setting it passes the
    # root's --url down to any command at any depth and ranks it above the environment (a
    # default_map value would rank below it). --json has no variable: it goes down through
    # default_map, nested by command name as click looks it up.
    if url is not None:
        _set_for_the_command(ctx, URL_VARIABLE, url)
    name = ctx.invoked_subcommand
    if as_json and name is not None and isinstance(ctx.command, click.Group):
        command = ctx.command.get_command(ctx, name)
        if command is not None:
            ctx.default_map = _merged(ctx.default_map, {name: _json_defaults(command, ctx)})


def __getattr__(name: str) -> Any:
    """``open_store`` and ``progress_bar`` (for plugged-in commands), imported when used: they
    bring the store and rich, which ``ledger --help`` does not need."""
    if name in ("open_store", "progress_bar"):
        from ledger.cli import _common

        return getattr(_common, name)
    raise AttributeError(f"module 'ledger.cli' has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ledger")
