"""``ledger db upgrade|downgrade|current`` through click's CliRunner, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ledger.cli import cli
from ledger.store import migration


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def current_json(url: str) -> Any:
    result = run("db", "current", "--url", url, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_db_upgrade_brings_the_database_to_head(database_url: str) -> None:
    """``db upgrade`` migrates an empty database and ``db current --json`` reports the head."""
    head = migration.head_revision()
    result = run("db", "upgrade", "--url", database_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"upgraded <empty> -> {head}\n"
    assert current_json(database_url) == {"current": head, "head": head, "is_head": True}


def test_db_downgrade_base_empties_the_database(database_url: str) -> None:
    """``db downgrade base`` after an upgrade leaves ``db current --json`` at null."""
    head = migration.head_revision()
    assert run("db", "upgrade", "--url", database_url).exit_code == 0
    result = run("db", "downgrade", "base", "--url", database_url, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"downgraded {head} -> <empty>\n"
    assert current_json(database_url) == {"current": None, "head": head, "is_head": False}


def test_db_error_prints_one_line_on_stderr_and_exits_1() -> None:
    """A ledger error is one ``error:`` line on stderr, exit status 1, and no traceback."""
    result = run("db", "current", "--url", "mysql://user@localhost/db")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: database URL='mysql://user@localhost/db' is not valid: "
        "expected a sqlite:/// or postgresql:// URL\n"
    )
    assert "Traceback" not in result.output


def test_db_downgrade_without_yes_says_what_it_would_remove_and_changes_nothing(
    database_url: str,
) -> None:
    head = migration.head_revision()
    assert run("db", "upgrade", "--url", database_url).exit_code == 0
    result = run("db", "downgrade", "base", "--url", database_url)
    assert result.exit_code == 1
    assert "would remove EVERY ledger table" in result.stderr
    assert "--yes" in result.stderr
    assert current_json(database_url)["current"] == head


def test_db_current_on_a_missing_sqlite_path_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "ledger.db"
    result = run("db", "current", "--url", f"sqlite:///{missing}")
    assert result.exit_code == 1
    assert str(missing) in result.stderr
    assert not missing.parent.exists()
