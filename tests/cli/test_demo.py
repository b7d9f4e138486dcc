"""``ledger demo``: the gateway simulation runs end to end and the ledger guard makes no mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import Ledger
from ledger.cli import cli
from ledger.cli._demo import run_demo

pytestmark = pytest.mark.slow


def test_demo_reports_no_false_busts_and_no_missed_changes_for_the_ledger(
    migrated_url: str,
) -> None:
    """A short run with the foreign scheduler process: the ledger guard is never wrong."""
    with Ledger.open(migrated_url, writer="gateway") as ledger:
        result = run_demo(ledger, turns=120, keys=4, seed=3, log=lambda _: None)
    assert result.report is not None
    ledger_totals = result.report.guards["ledger"]
    assert ledger_totals.turns == result.turns == 120
    assert ledger_totals.false_busts == 0
    assert ledger_totals.missed_changes == 0
    assert result.report.guards["legacy"].false_busts > 0


def test_live_cache_and_replayed_ledger_guard_build_the_same_number_of_agents(
    migrated_url: str,
) -> None:
    """The replay of the ledger guard agrees with the AgentCache that ran live."""
    with Ledger.open(migrated_url, writer="gateway") as ledger:
        result = run_demo(ledger, turns=80, keys=3, seed=5, foreign_process=False, log=print)
    assert result.report is not None
    assert result.report.guards["ledger"].builds == result.agents_built


def test_demo_command_prints_json_summary_on_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ledger demo --quick --json`` on LEDGER_HOME needs no setup and leaves data to explore."""
    monkeypatch.delenv("LEDGER_DATABASE_URL", raising=False)
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["guards"]["ledger"]["missed_changes"] == 0
    assert summary["guards"]["ledger"]["false_busts"] == 0
    listed = runner.invoke(cli, ["sessions", "--json"])
    assert listed.exit_code == 0
    assert len(json.loads(listed.output)) >= 4
