"""``ledger replay``/``explain`` on a real database and on its JSONL export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import Ledger
from ledger.cli import cli

KEY = "agent:main:telegram:dm:1"
GUARD_TOTALS = {"turns", "rebuilds", "false_busts", "missed_changes"}


@pytest.fixture
def url(migrated_url: str) -> str:
    """A database holding switch traffic, an undo-then-append and a foreign write."""
    with (
        Ledger.open(migrated_url, writer="gw") as ledger,
        Ledger.open(migrated_url, writer="other") as other,
    ):
        a = ledger.open_session(KEY, session_id="a", model="m")
        for _ in range(3):
            ledger.append_message(a, "user", "q")
            ledger.append_message(a, "assistant", "r")
        b = ledger.open_session(KEY, session_id="b", model="m")
        ledger.append_message(b, "user", "q")
        ledger.append_message(b, "assistant", "r <script>alert(1)</script>")
        ledger.switch_session(KEY, a)
        ledger.append_message(a, "user", "q")
        ledger.append_message(a, "assistant", "r")
        other.append_message(b, "assistant", "reminder")
        ledger.retract_messages(a, 1, reason="retry")
        ledger.append_message(a, "assistant", "again")
        ledger.switch_session(KEY, b)
        ledger.append_message(b, "user", "q")
        ledger.switch_session(KEY, a)
        ledger.append_message(a, "user", "q")
    return migrated_url


def replay_json(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["replay", "--json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


def test_replay_json_has_the_documented_schema(url: str) -> None:
    """``guards`` maps each guard to its totals; per-key detail sits under ``keys``."""
    data = replay_json("--url", url)
    guards = data["guards"]
    assert isinstance(guards, dict)
    assert set(guards) == {"legacy", "hermes", "ledger"}
    assert all(set(totals) == GUARD_TOTALS for totals in guards.values())
    keys = data["keys"]
    assert isinstance(keys, dict)
    assert set(keys[KEY]["guards"]) == {"legacy", "hermes", "ledger"}


def test_replay_finds_the_known_mistakes_of_each_guard(url: str) -> None:
    """The counter false-busts on switches; counters miss the retry and the foreign write."""
    guards = replay_json("--url", url)["guards"]
    assert isinstance(guards, dict)
    assert guards["ledger"]["false_busts"] == guards["ledger"]["missed_changes"] == 0
    assert guards["ledger"]["rebuilds"] == 2
    assert guards["legacy"]["false_busts"] >= 1
    assert guards["hermes"]["missed_changes"] >= 1


def test_replay_of_the_export_equals_replay_of_the_database(url: str, tmp_path: Path) -> None:
    """An export replayed on another machine gives the same totals."""
    export = tmp_path / "log.jsonl"
    result = CliRunner().invoke(cli, ["export", "--url", url, "-o", str(export)])
    assert result.exit_code == 0, result.output
    assert replay_json("--from-jsonl", str(export)) == replay_json("--url", url)


def test_import_jsonl_into_an_empty_database_reproduces_the_replay(
    url: str, tmp_path: Path
) -> None:
    """Export, import elsewhere (twice: idempotent), replay: the same answers."""
    export = tmp_path / "log.jsonl"
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["export", "--url", url, "-o", str(export)]).exit_code == 0
    first = runner.invoke(cli, ["import-jsonl", "--url", target, str(export), "--json"])
    again = runner.invoke(cli, ["import-jsonl", "--url", target, str(export), "--json"])
    assert json.loads(again.output)["written"] == 0
    assert json.loads(first.output)["written"] == json.loads(again.output)["already_present"]
    assert replay_json("--url", target)["guards"] == replay_json("--url", url)["guards"]


def test_explain_shows_each_decision_with_its_reason(url: str) -> None:
    """The key's timeline lists turns with the three guards' decisions."""
    result = CliRunner().invoke(cli, ["explain", "--url", url, KEY, "--json"])
    assert result.exit_code == 0, result.output
    timeline = json.loads(result.output)["timeline"]
    reasons = [t["decisions"]["ledger"]["reason"] for t in timeline if t["kind"] == "turn"]
    assert "retracted" in reasons
    assert "foreign_write" in reasons
    assert "switch" in reasons


def test_explain_of_an_unknown_key_is_an_error(url: str) -> None:
    """A key without events gets a one-line error and exit status 1."""
    result = CliRunner().invoke(cli, ["explain", "--url", url, "nope"])
    assert result.exit_code == 1
    assert "session_key" in result.output


def test_html_timeline_escapes_log_content(url: str, tmp_path: Path) -> None:
    """Message text from the log never becomes markup in the page."""
    page = tmp_path / "t.html"
    result = CliRunner().invoke(cli, ["explain", "--url", url, KEY, "--html", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'class="decision missed_change"' in text or 'class="decision false_bust"' in text


def test_replay_rejects_an_unknown_guard(url: str) -> None:
    """``--guard`` accepts only legacy, hermes and ledger."""
    result = CliRunner().invoke(cli, ["replay", "--url", url, "--guard", "magic"])
    assert result.exit_code == 1
    assert "--guard" in result.output
