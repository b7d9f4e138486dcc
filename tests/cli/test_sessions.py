"""``ledger sessions``: the catalog by last activity, with whole identifiers, and full JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from ledger import Ledger
from ledger.cli import cli
from ledger.views import SessionHead

UTC = dt.UTC
DAY = dt.datetime(2024, 5, 1, tzinfo=UTC)
LONG_ID = "0b9c1d4e5f6a4b7c8d9e0f1a2b3c4d5e"
LONG_KEY = "agent:main:discord:guild:123456789012345678:channel:987654321098765432"


@pytest.fixture
def url(migrated_url: str) -> str:
    """``old`` opened first but active last; ``new`` opened later with a long id and key."""
    with Ledger.open(migrated_url, writer="gw") as ledger:
        ledger.open_session(
            "agent:main:slack:dm:1",
            session_id="old",
            source="slack",
            started_at=DAY.replace(hour=8),
            system_prompt="Be brief.",
            model_config={"temperature": 0.5},
        )
        ledger.open_session(LONG_KEY, session_id=LONG_ID, started_at=DAY.replace(hour=9))
        ledger.append_message("old", "user", "back again", created_at=DAY.replace(hour=10))
    return migrated_url


def sessions(url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["sessions", "--url", url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_sessions_lists_the_most_recent_activity_first(url: str) -> None:
    out = sessions(url)
    assert out.index("old") < out.index(LONG_ID)


def test_sessions_table_shows_the_last_activity_time(url: str) -> None:
    (row,) = [line for line in sessions(url).splitlines() if "old" in line]
    assert "2024-05-01 10:00:00" in row


def test_sessions_table_never_truncates_identifiers(url: str) -> None:
    """On a narrow (80-column, non-terminal) console, ids and keys are printed whole."""
    (row,) = [line for line in sessions(url).splitlines() if LONG_ID in line]
    assert LONG_KEY in row


def test_sessions_json_has_every_head_field(url: str) -> None:
    heads = json.loads(sessions(url, "--json"))
    assert [head["session_id"] for head in heads] == ["old", LONG_ID]
    for head in heads:
        assert set(head) == set(SessionHead.__struct_fields__)


def test_sessions_json_gives_gateway_times_in_iso_8601_and_settings(url: str) -> None:
    head = json.loads(sessions(url, "--json"))[0]
    assert dt.datetime.fromisoformat(head["started_at"]) == DAY.replace(hour=8)
    assert dt.datetime.fromisoformat(head["last_activity_at"]) == DAY.replace(hour=10)
    assert head["system_prompt"] == "Be brief."
    assert head["model_config"] == {"temperature": 0.5}
    assert head["ended_at"] is None
    assert head["end_reason"] is None
