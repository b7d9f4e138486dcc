"""``--url`` and ``--json`` before the command work as after it; the command's own wins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger
from ledger.cli import cli


@pytest.fixture
def url(migrated_url: str) -> str:
    with Ledger.open(migrated_url) as ledger:
        ledger.open_session("agent:main:cli:dm:1", session_id="s1")
    return migrated_url


@pytest.fixture
def empty(tmp_path: Path) -> str:
    """Another database, with no session in it."""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with Ledger.open(other):
        pass
    return other


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


def session_ids(result: Result) -> list[str]:
    return [head["session_id"] for head in json.loads(result.stdout)]


def test_global_url_before_the_subcommand(url: str) -> None:
    assert session_ids(run("--url", url, "sessions", "--json")) == ["s1"]


def test_global_json_before_the_subcommand(url: str) -> None:
    assert session_ids(run("--json", "sessions", "--url", url)) == ["s1"]


def test_global_options_reach_a_nested_command(url: str) -> None:
    current = json.loads(run("--url", url, "--json", "db", "current").stdout)
    assert current["is_head"] is True


def test_global_options_reach_a_plugged_in_command(url: str) -> None:
    rows = json.loads(run("--json", "--url", url, "projections", "status").stdout)
    assert {row["name"] for row in rows} >= {"keys", "sessions"}


def test_the_subcommands_own_url_wins_over_the_global_one(url: str, empty: str) -> None:
    assert session_ids(run("--url", empty, "sessions", "--url", url, "--json")) == ["s1"]


def test_the_global_url_wins_over_the_environment(url: str, empty: str) -> None:
    result = run("--url", url, "sessions", "--json", env={"LEDGER_DATABASE_URL": empty})
    assert session_ids(result) == ["s1"]


def test_the_global_url_is_not_left_in_the_environment(url: str) -> None:
    before = os.environ.get("LEDGER_DATABASE_URL")
    run("--url", url, "sessions")
    assert os.environ.get("LEDGER_DATABASE_URL") == before


def test_without_global_json_a_command_prints_for_people(url: str) -> None:
    assert not run("sessions", "--url", url).stdout.lstrip().startswith("[")
