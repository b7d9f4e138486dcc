"""Every error is one ``error: …`` line on stderr: exit 1, or 2 for a usage error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from ledger.cli import cli

#: Nothing listens on port 1: the connection is refused at once.
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/x"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_error_line(result: Result, exit_code: int) -> None:
    assert (result.exit_code, result.stdout) == (exit_code, ""), result.output
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_connection_error_is_one_error_line_and_exit_1() -> None:
    result = run("sessions", "--url", UNREACHABLE)
    assert_one_error_line(result, 1)
    assert "connection" in result.stderr.lower()


def test_a_ledger_error_is_one_error_line_and_exit_1(migrated_url: str) -> None:
    result = run("show", "--url", migrated_url, "nope")
    assert_one_error_line(result, 1)
    assert result.stderr == "error: Session 'nope' does not exist\n"


def test_an_invalid_argument_is_one_error_line_and_exit_1(migrated_url: str) -> None:
    assert_one_error_line(run("replay", "--url", migrated_url, "--guard", "magic"), 1)


def test_an_unknown_option_is_one_error_line_and_exit_2() -> None:
    result = run("sessions", "--bogus")
    assert_one_error_line(result, 2)
    assert "--bogus" in result.stderr
    assert "ledger sessions --help" in result.stderr


def test_an_unknown_command_is_one_error_line_and_exit_2() -> None:
    result = run("nope")
    assert_one_error_line(result, 2)
    assert "'nope'" in result.stderr


def test_an_unknown_root_option_is_one_error_line_and_exit_2() -> None:
    assert_one_error_line(run("--bogus", "sessions"), 2)


def test_a_bad_option_value_is_one_error_line_and_exit_2() -> None:
    result = run("sessions", "--limit", "many")
    assert_one_error_line(result, 2)
    assert "--limit" in result.stderr


def test_a_missing_argument_of_a_nested_command_is_one_error_line_and_exit_2() -> None:
    result = run("compact", "restore")
    assert_one_error_line(result, 2)
    assert "ledger compact restore --help" in result.stderr


def test_an_unwritable_html_file_is_one_error_line_and_exit_1(migrated_url: str) -> None:
    from ledger import Ledger

    with Ledger.open(migrated_url) as ledger:
        ledger.open_session("k")
    result = run("replay", "--url", migrated_url, "--html", "/nonexistent/dir/page.html")
    assert_one_error_line(result, 1)


@pytest.mark.parametrize("group", [[], ["compact"], ["db"]], ids=["ledger", "compact", "db"])
def test_a_group_without_a_command_still_prints_its_help(group: list[str]) -> None:
    assert "Usage:" in run(*group).output
