"""Settings read from ``LEDGER_``-prefixed environment variables.

Every bad value raises :class:`~ledger.errors.ConfigurationError` naming the variable, the value
and what was expected, at open time rather than deep inside a write.

=============================  ===============================================================
variable                       meaning (default)
=============================  ===============================================================
``LEDGER_DATABASE_URL``        SQLAlchemy URL of the store (embedded SQLite under LEDGER_HOME)
``LEDGER_HOME``                folder of the embedded database (``~/.ledger``), created 0700
``LEDGER_SQLITE_SYNCHRONOUS``  ``FULL`` (survives power loss) or ``NORMAL`` (faster, WAL-safe)
``LEDGER_BUSY_TIMEOUT_MS``     how long a SQLite writer waits for the lock (``30000``)
``LEDGER_MAX_EVENT_BYTES``     largest encoded event accepted by ``append`` (``67108864``, 64 MiB)
``LEDGER_REQUIRE_URL``         ``1``: refuse the embedded default; a URL must be given (``0``)
=============================  ===============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ledger.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "Settings"]

#: 64 MiB: room for a 16 MiB message (tool output, an encoded image) after JSON escaping.
DEFAULT_MAX_EVENT_BYTES = 64 * 1024 * 1024

_SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, raw, "a positive integer") from None
    if value <= 0:
        raise ConfigurationError(name, raw, "a positive integer")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ConfigurationError(name, env[name], "1 or 0")


@dataclass(frozen=True, slots=True)
class Settings:
    """The ledger's configuration; build with :meth:`from_env`."""

    database_url: str | None = None
    home: Path = field(default_factory=lambda: Path("~/.ledger").expanduser())
    sqlite_synchronous: str = "FULL"
    busy_timeout_ms: int = 30_000
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    #: ``LEDGER_REQUIRE_URL=1``: refuse to fall back to the embedded file (a container whose
    #: URL is missing must fail, not write chats to an ephemeral disk).
    require_url: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the ``LEDGER_`` variables from ``env`` (``os.environ`` when omitted)."""
        env = os.environ if env is None else env
        synchronous = env.get("LEDGER_SQLITE_SYNCHRONOUS", "FULL").upper() or "FULL"
        if synchronous not in _SYNCHRONOUS:
            raise ConfigurationError(
                "LEDGER_SQLITE_SYNCHRONOUS",
                env["LEDGER_SQLITE_SYNCHRONOUS"],
                " or ".join(_SYNCHRONOUS),
            )
        home_raw = env.get("LEDGER_HOME") or "~/.ledger"
        return cls(
            database_url=env.get("LEDGER_DATABASE_URL") or None,
            home=Path(home_raw).expanduser(),
            sqlite_synchronous=synchronous,
            busy_timeout_ms=_positive_int(env, "LEDGER_BUSY_TIMEOUT_MS", 30_000),
            max_event_bytes=_positive_int(env, "LEDGER_MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES),
            require_url=_flag(env, "LEDGER_REQUIRE_URL"),
        )

    def resolve_url(self, url: str | None) -> str:
        """The URL to open: ``url``, else ``LEDGER_DATABASE_URL``, else the embedded file."""
        if url:
            return url
        if self.database_url:
            return self.database_url
        if self.require_url:
            raise ConfigurationError(
                "LEDGER_DATABASE_URL", "", "a database URL (LEDGER_REQUIRE_URL=1 is set)"
            )
        return f"sqlite:///{self.home / 'ledger.db'}"
