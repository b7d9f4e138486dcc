"""Output for people shows data as it is: no emoji codes, no markup, no terminal control.

A session key such as ``agent:main:email:thread:42`` holds rich's ``:thread:`` emoji code, a
title may hold ``[bold]`` markup, and chat content may hold escape sequences that retitle or
clear the operator's terminal. Every command that prints for people prints the first two as
they are and each control character as a visible escape (``\\x1b``, ``\\x07``), while
``--json`` keeps the data exact. Each case runs on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger
from ledger.cli import cli, printable
from tests.cli.support import settle
from tests.hermes import fixture as hermes

THREAD_KEY = "agent:main:email:thread:42"
#: A session id with an emoji code in it (``:x:`` would become ❌).
SESSION = "see file:x:y"
TITLE = "[bold]Plans[/bold] for :thread:"
#: An OSC sequence that retitles the terminal window, and a colour code.
HOSTILE = "hi \x1b]0;pwned\x07 there \x1b[31mred\x1b[0m"
HOSTILE_SHOWN = "hi \\x1b]0;pwned\\x07 there \\x1b[31mred\\x1b[0m"
MARKUP = "use [red]this[/red] :thread:"


@pytest.fixture
def url(migrated_url: str) -> str:
    """One session on the thread key with a markup title, a hostile message and markup."""
    with Ledger.open(migrated_url, writer="gateway:thread:1") as ledger:
        ledger.open_session(THREAD_KEY, session_id=SESSION, title=TITLE, source="email")
        ledger.append_message(SESSION, "user", HOSTILE)
        ledger.append_message(SESSION, "assistant", MARKUP)
    settle(migrated_url)
    return migrated_url


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result


#: Each human-facing view of the session's data.
VIEWS = {
    "sessions": lambda url: ["sessions", "--url", url],
    "show": lambda url: ["show", "--url", url, SESSION],
    "explain": lambda url: ["explain", "--url", url, THREAD_KEY],
    "replay": lambda url: ["replay", "--url", url],
    "tail": lambda url: ["tail", "--url", url, "--after", "0", "--once"],
}


@pytest.mark.parametrize("view", ["sessions", "show", "explain", "replay", "tail"])
def test_a_thread_key_prints_as_itself(url: str, view: str) -> None:
    assert THREAD_KEY in run(*VIEWS[view](url)).output


@pytest.mark.parametrize("view", ["sessions", "show", "explain", "tail"])
def test_an_emoji_code_in_a_session_id_prints_as_itself(url: str, view: str) -> None:
    out = run(*VIEWS[view](url)).output
    assert SESSION in out
    assert "❌" not in out


@pytest.mark.parametrize("view", ["sessions", "show"])
def test_markup_in_a_title_prints_as_itself(url: str, view: str) -> None:
    assert TITLE in run(*VIEWS[view](url)).output


@pytest.mark.parametrize("view", ["show", "explain"])
def test_markup_in_a_message_prints_as_itself(url: str, view: str) -> None:
    out = run(*VIEWS[view](url)).output
    assert MARKUP in out
    assert "🧵" not in out


@pytest.mark.parametrize("view", ["show", "explain"])
def test_an_escape_sequence_in_a_message_prints_escaped(url: str, view: str) -> None:
    out = run(*VIEWS[view](url)).output
    assert HOSTILE_SHOWN in out
    assert "\x1b" not in out
    assert "\x07" not in out


def test_the_writer_of_an_event_prints_as_itself_in_explain(url: str) -> None:
    assert "gateway:thread:1" in run(*VIEWS["explain"](url)).output


def test_json_keeps_the_escape_sequence_exact(url: str) -> None:
    messages = json.loads(run("show", "--url", url, SESSION, "--json").output)["messages"]
    assert messages[0]["content"] == HOSTILE


@pytest.fixture
def hostile_ids(migrated_url: str) -> str:
    """A session whose id, key and title hold escape sequences and a bell."""
    with Ledger.open(migrated_url, writer="gw\x1b[2J") as ledger:
        ledger.open_session("key\x1b]0;x\x07", session_id="s\x1b[31m", title="t\x07\x9b\x7f")
    settle(migrated_url)
    return migrated_url


@pytest.mark.parametrize("view", ["sessions", "show", "tail"])
def test_an_escape_sequence_in_an_identifier_prints_escaped(hostile_ids: str, view: str) -> None:
    args = {
        "sessions": ["sessions"],
        "show": ["show", "s\x1b[31m"],
        "tail": ["tail", "--after", "0", "--once"],
    }[view]
    out = run(*args, "--url", hostile_ids).output
    assert "s\\x1b[31m" in out
    assert "\x1b" not in out


def test_a_bell_a_c1_control_and_del_in_a_title_print_escaped(hostile_ids: str) -> None:
    out = run("sessions", "--url", hostile_ids).output
    assert "t\\x07\\x9b\\x7f" in out


def test_an_escape_sequence_in_explains_key_and_writer_prints_escaped(hostile_ids: str) -> None:
    out = run("explain", "--url", hostile_ids, "key\x1b]0;x\x07").output
    assert "key\\x1b]0;x\\x07" in out
    assert "gw\\x1b[2J" in out
    assert "\x1b" not in out


def test_a_compact_report_prints_a_session_id_escaped(hostile_ids: str) -> None:
    out = run("compact", "restore", "--url", hostile_ids, "s\x1b[31m").output
    assert "s\\x1b[31m is not archived" in out
    assert "\x1b" not in out


def test_an_error_line_prints_control_characters_escaped(migrated_url: str) -> None:
    result = CliRunner().invoke(cli, ["show", "--url", migrated_url, "nope\x1b[2J"])
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr
    assert result.stderr.startswith("error: ")


def test_import_hermes_text_prints_a_bad_row_escaped(migrated_url: str, tmp_path: Path) -> None:
    """A Hermes session whose id holds an escape sequence is named escaped in the report."""
    state = tmp_path / "state.db"
    conn = hermes.create(state, hermes.OLD)
    hermes.add_session(conn, "v\x1b]0;x\x07")
    hermes.add_message(conn, "v\x1b]0;x\x07", "user", "\x00json:{broken")
    conn.commit()
    conn.close()
    result = run("import-hermes", "--url", migrated_url, str(state))
    assert "bad row: v\\x1b]0;x\\x07/1" in result.stderr
    assert "\x1b" not in result.output


def test_printable_keeps_newlines_and_tabs_of_a_message_body() -> None:
    assert printable("a\n\tb", multiline=True) == "a\n\tb"


def test_printable_escapes_newlines_and_tabs_of_a_one_line_field() -> None:
    assert printable("a\n\tb\r") == "a\\n\\tb\\r"


def test_printable_escapes_a_carriage_return_in_a_message_body() -> None:
    assert printable("paid\rrefunded", multiline=True) == "paid\\rrefunded"


def test_printable_escapes_c1_controls_and_del() -> None:
    assert printable("\x85\x9b\x7f") == "\\x85\\x9b\\x7f"


def test_printable_escapes_bidi_overrides() -> None:
    assert printable("abc\u202edef\u2066") == "abc\\u202edef\\u2066"


def test_printable_leaves_emoji_scripts_and_backslashes_alone() -> None:
    text = "👩‍👩‍👧 東京 مرحبا C:\\path \\x1b"
    assert printable(text) == text
