"""Identifiers are never cut: ids, keys and writers appear whole at 80 columns in every view,
and ``sessions --plain`` gives scripts tab-separated rows with a header."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger
from ledger.cli import cli
from tests.cli.support import settle

#: 60 characters each: wider than any column rich would give them at 80 columns.
LONG_ID = "session-" + "0123456789abcdef" * 3 + "0123"
LONG_KEY = "agent:main:discord:guild:123456789012345678:channel:98765432"
LONG_WRITER = "gateway-" + "w" * 52


@pytest.fixture
def url(migrated_url: str) -> str:
    with Ledger.open(migrated_url, writer=LONG_WRITER) as ledger:
        ledger.open_session(LONG_KEY, session_id=LONG_ID, source="discord", title="Plans\tand")
        ledger.append_message(LONG_ID, "user", "hello")
        ledger.append_message(LONG_ID, "assistant", "hi")
    settle(migrated_url)
    return migrated_url


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result


def test_the_identifiers_are_60_characters() -> None:
    assert len(LONG_ID) == len(LONG_KEY) == len(LONG_WRITER) == 60


VIEWS = {
    "sessions": lambda url: ["sessions", "--url", url],
    "show": lambda url: ["show", "--url", url, LONG_ID],
    "explain": lambda url: ["explain", "--url", url, LONG_KEY],
    "tail": lambda url: ["tail", "--url", url, "--after", "0", "--once"],
}


@pytest.mark.parametrize("view", ["sessions", "show", "explain", "tail"])
def test_a_60_character_session_id_appears_whole_at_80_columns(url: str, view: str) -> None:
    assert LONG_ID in run(*VIEWS[view](url)).output


@pytest.mark.parametrize("view", ["sessions", "show", "explain", "replay", "tail"])
def test_a_60_character_key_appears_whole_at_80_columns(url: str, view: str) -> None:
    args = ["replay", "--url", url] if view == "replay" else VIEWS[view](url)
    assert LONG_KEY in run(*args).output


@pytest.mark.parametrize("view", ["explain", "tail"])
def test_a_60_character_writer_appears_whole_at_80_columns(url: str, view: str) -> None:
    assert LONG_WRITER in run(*VIEWS[view](url)).output


def test_explain_shows_each_event_position_and_time_whole(url: str) -> None:
    out = run(*VIEWS["explain"](url)).output
    assert "position" in out
    assert "…" not in out


def test_compact_history_shows_the_runner_whole(url: str) -> None:
    run("compact", "vacuum", "--url", url)
    (runner,) = {entry["runner"] for entry in json.loads(history(url, "--json"))}
    assert runner in history(url)


def history(url: str, *args: str) -> str:
    return run("compact", "history", "--url", url, *args).output


def plain(url: str) -> list[list[str]]:
    return [
        line.split("\t") for line in run("sessions", "--url", url, "--plain").stdout.splitlines()
    ]


def test_plain_prints_a_header_row_then_one_tab_separated_row_per_session(url: str) -> None:
    header, *rows = plain(url)
    assert header == [
        "session_id",
        "session_key",
        "source",
        "state",
        "message_count",
        "sequence",
        "last_activity_at",
        "title",
    ]
    assert [row[:5] for row in rows] == [[LONG_ID, LONG_KEY, "discord", "open", "2"]]


def test_plain_draws_no_table(url: str) -> None:
    out = run("sessions", "--url", url, "--plain").stdout
    assert not set(out) & set("│┃━─┏┗╇")


def test_plain_escapes_a_tab_inside_a_value(url: str) -> None:
    (_, row) = plain(url)
    assert row[-1] == "Plans\\tand"


def test_plain_gives_times_as_json_does(url: str) -> None:
    (head,) = json.loads(run("sessions", "--url", url, "--json").stdout)
    (_, row) = plain(url)
    assert row[6] == head["last_activity_at"]


def test_plain_and_json_together_are_a_usage_error(url: str) -> None:
    result = CliRunner().invoke(cli, ["sessions", "--url", url, "--plain", "--json"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
