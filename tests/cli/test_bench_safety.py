"""``ledger bench`` never damages a database: it runs on a throwaway one."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from ledger import Ledger
from ledger.cli import cli
from projections.rebuild import verify
from projections.sessions import SessionsProjection
from tests.helpers import count_events

FAST = ["--singles", "20", "--batches", "1", "--json"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["bench", *args, *FAST])


def test_bench_without_a_url_runs_on_a_temporary_file() -> None:
    result = run()
    assert result.exit_code == 0, result.output


def test_bench_refuses_a_sqlite_ledger_and_leaves_it_verify_clean(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url) as ledger:
        ledger.append_message(ledger.open_session("k"), "user", "real chat")
        before = count_events(ledger)
    result = run("--url", url, "--scratch-ok")
    assert result.exit_code == 1
    assert "holds a ledger" in result.output
    with Ledger.open(url) as ledger:
        assert count_events(ledger) == before
        assert verify(ledger.store, SessionsProjection()) == []


def test_bench_needs_scratch_ok_for_a_sqlite_url(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch.db"
    refused = run("--url", f"sqlite:///{scratch}")
    assert refused.exit_code == 1
    assert "--scratch-ok" in refused.output
    assert not scratch.exists()
    assert run("--url", f"sqlite:///{scratch}", "--scratch-ok").exit_code == 0


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_bench_on_postgresql_uses_a_schema_it_drops_and_leaves_the_ledger_alone(
    ledger: Ledger, migrated_url: str
) -> None:
    ledger.append_message(ledger.open_session("k"), "user", "real chat")
    before = count_events(ledger)
    result = run("--url", migrated_url)
    assert result.exit_code == 0, result.output
    assert count_events(ledger) == before
    assert verify(ledger.store, SessionsProjection()) == []
    with ledger.store.engine.connect() as conn:
        leftover = conn.execute(
            sa.text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'ledger_bench_%'")
        ).scalar()
    assert leftover == 0
