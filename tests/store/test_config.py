"""Settings from ``LEDGER_`` variables: defaults, refused values, and which database URL wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import ConfigurationError, EventStore
from ledger.config import Settings
from ledger.store import migration

LEDGER_VARIABLES = (
    "LEDGER_DATABASE_URL",
    "LEDGER_HOME",
    "LEDGER_SQLITE_SYNCHRONOUS",
    "LEDGER_BUSY_TIMEOUT_MS",
    "LEDGER_MAX_EVENT_BYTES",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """``os.environ`` without any of the developer's own ``LEDGER_`` variables."""
    for name in LEDGER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_when_no_variable_is_set() -> None:
    """An empty environment gives the documented defaults."""
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.home == Path("~/.ledger").expanduser()
    assert settings.sqlite_synchronous == "FULL"
    assert settings.busy_timeout_ms == 30_000
    assert settings.max_event_bytes == 64 * 1024 * 1024
    assert settings == Settings()


def test_values_are_read_from_the_variables(tmp_path: Path) -> None:
    """Every variable, when set, lands in its field (synchronous is case-insensitive)."""
    settings = Settings.from_env(
        {
            "LEDGER_DATABASE_URL": "sqlite:///x.db",
            "LEDGER_HOME": str(tmp_path),
            "LEDGER_SQLITE_SYNCHRONOUS": "normal",
            "LEDGER_BUSY_TIMEOUT_MS": "250",
            "LEDGER_MAX_EVENT_BYTES": "4096",
        }
    )
    assert settings == Settings(
        database_url="sqlite:///x.db",
        home=tmp_path,
        sqlite_synchronous="NORMAL",
        busy_timeout_ms=250,
        max_event_bytes=4096,
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LEDGER_SQLITE_SYNCHRONOUS", "off", "FULL or NORMAL or EXTRA"),
        ("LEDGER_BUSY_TIMEOUT_MS", "abc", "a positive integer"),
        ("LEDGER_BUSY_TIMEOUT_MS", "0", "a positive integer"),
        ("LEDGER_MAX_EVENT_BYTES", "-1", "a positive integer"),
    ],
)
def test_bad_value_raises_configuration_error_naming_variable_and_value(
    variable: str, value: str, expected: str
) -> None:
    """A value the ledger cannot use is refused with the variable, the value and what it wants."""
    with pytest.raises(
        ConfigurationError, match=rf"^{variable}='{value}' is not valid: expected {expected}$"
    ) as info:
        Settings.from_env({variable: value})
    assert (info.value.variable, info.value.value) == (variable, value)


def test_resolve_url_prefers_the_argument(tmp_path: Path) -> None:
    """An explicit URL beats LEDGER_DATABASE_URL and LEDGER_HOME."""
    settings = Settings.from_env(
        {"LEDGER_DATABASE_URL": "sqlite:///env.db", "LEDGER_HOME": str(tmp_path)}
    )
    assert settings.resolve_url("sqlite:///arg.db") == "sqlite:///arg.db"


def test_resolve_url_falls_back_to_ledger_database_url(tmp_path: Path) -> None:
    """Without an argument, LEDGER_DATABASE_URL beats LEDGER_HOME."""
    settings = Settings.from_env(
        {"LEDGER_DATABASE_URL": "sqlite:///env.db", "LEDGER_HOME": str(tmp_path)}
    )
    assert settings.resolve_url(None) == "sqlite:///env.db"


def test_resolve_url_falls_back_to_ledger_db_under_ledger_home(tmp_path: Path) -> None:
    """Without an argument or LEDGER_DATABASE_URL, the URL is ``$LEDGER_HOME/ledger.db``."""
    settings = Settings.from_env({"LEDGER_HOME": str(tmp_path)})
    assert settings.resolve_url(None) == f"sqlite:///{tmp_path / 'ledger.db'}"


def test_open_without_url_creates_ledger_db_under_ledger_home(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``EventStore.open()`` with no URL creates and migrates ``ledger.db`` in LEDGER_HOME."""
    home = tmp_path / "home"
    clean_env.setenv("LEDGER_HOME", str(home))
    with EventStore.open() as store:
        assert store.engine.url.database == str(home / "ledger.db")
        assert migration.current_revision(store.engine) == migration.head_revision()
    assert (home / "ledger.db").is_file()


@pytest.mark.parametrize("url", ["mysql://user@localhost/db", "not a url"])
def test_unsupported_database_url_raises_configuration_error(url: str) -> None:
    """A URL that is not sqlite or postgresql is refused before any connection is tried."""
    with pytest.raises(ConfigurationError, match=rf"^database URL='{url}' is not valid: expected "):
        EventStore.open(url, settings=Settings.from_env({}))
