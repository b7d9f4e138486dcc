"""The people-facing CLI: sessions, show, tail, bench, and errors as one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ledger import Ledger
from ledger.cli import cli

KEY = "agent:main:discord:dm:7"


@pytest.fixture
def url(migrated_url: str) -> str:
    """A database with one session, two messages and one retraction."""
    with Ledger.open(migrated_url, writer="gw") as ledger:
        sid = ledger.open_session(KEY, session_id="s1", source="discord", title="Plans")
        ledger.append_message(sid, "user", "hello [bold]not markup[/bold]")
        ledger.append_message(sid, "assistant", "hi")
        ledger.retract_messages(sid, 1, reason="retry")
    return migrated_url


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_sessions_json_lists_heads_filtered_by_source(url: str) -> None:
    """``sessions --json`` prints head rows; ``--source`` filters them."""
    code, out = invoke("sessions", "--url", url, "--json", "--source", "discord")
    assert code == 0
    (head,) = json.loads(out)
    assert (head["session_id"], head["message_count"], head["sequence"]) == ("s1", 1, 4)
    code, out = invoke("sessions", "--url", url, "--json", "--source", "slack")
    assert json.loads(out) == []


def test_show_prints_the_live_transcript_and_all_with_retracted(url: str) -> None:
    """``show`` hides retracted messages unless ``--all``; content is printed verbatim."""
    code, out = invoke("show", "--url", url, "s1")
    assert code == 0
    assert "hello [bold]not markup[/bold]" in out
    assert "hi" not in out.split("not markup")[1]
    code, out = invoke("show", "--url", url, "s1", "--all", "--json")
    messages = json.loads(out)["messages"]
    assert [m["retracted"] for m in messages] == [False, True]


def test_show_of_an_unknown_session_is_one_error_line(url: str) -> None:
    """A missing session exits 1 with a message naming it."""
    code, out = invoke("show", "--url", url, "nope")
    assert code == 1
    assert "Session 'nope' does not exist" in out


def test_tail_once_prints_every_event_after_a_position(url: str) -> None:
    """``tail --after 0 --once --json`` prints the whole log as JSON lines and exits."""
    code, out = invoke("tail", "--url", url, "--after", "0", "--once", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["type"] for line in lines] == [
        "SessionOpened",
        "SessionSwitched",
        "MessageAppended",
        "MessageAppended",
        "MessagesRetracted",
    ]


def test_bench_json_reports_ratios() -> None:
    """``ledger bench --json`` measures on a scratch file and reports every figure."""
    code, out = invoke("bench", "--singles", "20", "--batches", "1", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["single_ratio"] > 0
    assert report["replay_events_per_s"] > 0
