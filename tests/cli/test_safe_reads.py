"""Read-only commands never create a database; the embedded default can be forbidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import ConfigurationError, InvalidArgumentError, Ledger
from ledger.cli import cli
from ledger.config import Settings


@pytest.mark.parametrize(
    "command",
    [
        ["sessions"],
        ["show", "some-session"],
        ["tail", "--once"],
        ["replay"],
        ["explain", "some-key"],
        ["projections", "status"],
        ["projections", "verify"],
        ["export"],
        ["db", "current"],
    ],
    ids=lambda c: " ".join(c),
)
def test_a_read_command_on_a_missing_path_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "typo" / "ledger.db"
    result = CliRunner().invoke(cli, [*command, "--url", f"sqlite:///{missing}"])
    assert result.exit_code == 1, result.output
    assert str(missing) in result.output
    assert not missing.exists()
    assert not missing.parent.exists()


def test_a_read_command_on_a_missing_file_uri_creates_nothing(tmp_path: Path) -> None:
    """``sqlite:///file:/path?uri=true`` names the same file as ``sqlite:////path``."""
    missing = tmp_path / "ledger.db"
    result = CliRunner().invoke(cli, ["sessions", "--url", f"sqlite:///file:{missing}?uri=true"])
    assert result.exit_code == 1, result.output
    assert str(missing) in result.output
    assert not missing.exists()


def test_open_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "ledger.db"
    with pytest.raises(InvalidArgumentError, match="nothing was created"):
        Ledger.open(f"sqlite:///{missing}", create=False)
    assert not missing.exists()


def test_open_without_create_reads_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url) as ledger:
        ledger.open_session("k")
    with Ledger.open(url, create=False) as reader:
        assert len(reader.sessions()) == 1


def test_require_url_refuses_the_embedded_default(tmp_path: Path) -> None:
    settings = Settings.from_env({"LEDGER_REQUIRE_URL": "1", "LEDGER_HOME": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="LEDGER_REQUIRE_URL"):
        Ledger.open(settings=settings)
    assert list(tmp_path.iterdir()) == []


def test_require_url_accepts_a_given_url(tmp_path: Path) -> None:
    settings = Settings.from_env({"LEDGER_REQUIRE_URL": "1"})
    with Ledger.open(f"sqlite:///{tmp_path / 'x.db'}", settings=settings) as ledger:
        assert ledger.sessions() == []


def test_a_bad_require_url_value_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_REQUIRE_URL"):
        Settings.from_env({"LEDGER_REQUIRE_URL": "maybe"})
