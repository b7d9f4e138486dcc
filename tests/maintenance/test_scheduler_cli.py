"""``ledger scheduler run|jobs`` on the command line: refused configurations, human output."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ledger.cli import cli


@pytest.mark.parametrize("command", ["run", "jobs"])
@pytest.mark.parametrize(
    "value", ["every 1h older_than=abc", "every 1h olderthan=30d", "every 1h pages=10"]
)
def test_an_invalid_option_stops_the_scheduler_with_one_error_line(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, command: str, value: str
) -> None:
    """A bad option fails at start: exit 1 and one ``error:`` line naming job and option."""
    monkeypatch.setenv("LEDGER_SCHEDULE_ARCHIVE", value)
    args = ["scheduler", command, "--url", migrated_url]
    if command == "run":
        args += ["--exit-after", "0.1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: LEDGER_SCHEDULE_ARCHIVE")
    assert "archive" in lines[0]
    assert value.split()[-1].split("=")[0] in lines[0]
