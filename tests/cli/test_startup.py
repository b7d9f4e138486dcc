"""A CLI that starts fast: ``--help`` and ``--version`` import no command and no heavy library.

Each check runs the CLI in a fresh interpreter and looks at ``sys.modules`` afterwards (what
was imported, not how long it took: timings are not asserted).
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from ledger.cli import COMMANDS, cli

HEAVY = ["sqlalchemy", "rich", "alembic", "apscheduler", "msgspec", "psycopg", "tenacity"]

_PROBE = """
import json, sys
from ledger.cli import cli
try:
    cli.main({args!r}, prog_name="ledger")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(*args: str) -> set[str]:
    """The modules imported by running ``ledger ARGS`` in a new interpreter."""
    probe = _PROBE.format(args=list(args))
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def roots(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_help_does_not_import_sqlalchemy() -> None:
    assert "sqlalchemy" not in roots(imported_by("--help"))


@pytest.mark.parametrize("args", [["--help"], ["--version"]], ids=["help", "version"])
def test_startup_imports_no_heavy_library(args: list[str]) -> None:
    assert roots(imported_by(*args)) & set(HEAVY) == set()


def test_help_imports_no_command_module() -> None:
    loaded = imported_by("--help")
    assert {name for name in loaded if name.startswith("ledger.cli._")} <= {
        "ledger.cli._options",
        "ledger.cli._output",
    }


def test_a_commands_help_imports_only_its_own_module() -> None:
    loaded = imported_by("sessions", "--help")
    assert "ledger.cli._gateway" in loaded
    assert {
        "ledger.cli._maintenance",
        "ledger.cli._scheduler",
        "ledger.cli._replay",
        "apscheduler",
    } & loaded == set()


def test_importing_ledger_does_not_import_sqlalchemy() -> None:
    probe = "import json, sys, ledger; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "sqlalchemy" not in roots(set(json.loads(out.stdout)))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_help_is_each_commands_own(name: str) -> None:
    """What ``ledger --help`` says of a command without importing it is what it says itself."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.name == name
    assert COMMANDS[name].short_help == command.get_short_help_str(limit=10**6)


def test_help_lists_every_command_and_the_plugged_in_ones() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from ledger.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
    ).stdout
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {*COMMANDS, "projections"}
