"""``ledger import-hermes`` as a user runs it: once, and with ``--follow``."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from ledger import Ledger
from ledger.cli import cli
from tests.hermes.fixture import add_message
from tests.hermes.fixture_v30 import T0


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_import_json_reports_what_was_imported(migrated_url: str, v30_path: Path) -> None:
    result = run("import-hermes", "--url", migrated_url, str(v30_path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["sessions"], summary["usage_records"]) == (3, 1)
    assert list(summary["bad_rows"]) == ["v_main/5"]


def test_import_text_names_the_bad_rows(migrated_url: str, v30_path: Path) -> None:
    result = run("import-hermes", "--url", migrated_url, str(v30_path))
    assert result.exit_code == 0, result.output
    assert "3 sessions imported" in result.stdout
    assert "bad row: v_main/5" in result.stderr


def test_follow_prints_a_json_line_for_the_first_round_and_quiet_rounds_say_nothing(
    migrated_url: str, v30_path: Path
) -> None:
    args = ["import-hermes", "--url", migrated_url, str(v30_path), "--follow"]
    result = run(*args, "--rounds", "3", "--interval", "0.1", "--json")
    assert result.exit_code == 0, result.output
    rounds = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["round"], r["sessions"]) for r in rounds] == [(1, 3)]


def test_follow_refuses_an_interval_out_of_bounds(migrated_url: str, v30_path: Path) -> None:
    args = ["import-hermes", "--url", migrated_url, str(v30_path), "--follow"]
    result = run(*args, "--interval", "0")
    assert result.exit_code == 2
    assert "--interval" in result.output


def test_follow_imports_what_hermes_writes_and_stops_on_sigterm(
    migrated_url: str, v30_path: Path
) -> None:
    """A follow process picks up a new Hermes row within a round, and SIGTERM ends it cleanly."""
    command = [str(Path(sys.executable).with_name("ledger")), "import-hermes"]
    command += ["--url", migrated_url, str(v30_path), "--follow", "--interval", "0.2", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["sessions"] == 3
        conn = sqlite3.connect(v30_path)
        add_message(conn, "v_sub", "assistant", "followed", timestamp=T0 + 60)
        conn.commit()
        conn.close()
        deadline = time.monotonic() + 30
        with Ledger.open(migrated_url) as ledger:
            while ledger.transcript("v_sub")[-1].content != "followed":
                assert time.monotonic() < deadline, "the follow never imported the new row"
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
