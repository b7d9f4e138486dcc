"""Fixtures shared by the archive tests: a second gateway and the history of ``build_history``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import Ledger
from ledger.config import Settings
from tests.maintenance.support import build_history


@pytest.fixture
def other(migrated_url: str, settings: Settings) -> Iterator[Ledger]:
    """A second gateway (writer ``gateway-2``) on the same database."""
    with Ledger.open(migrated_url, writer="gateway-2", settings=settings) as opened:
        yield opened


@pytest.fixture
def sessions(ledger: Ledger, other: Ledger) -> dict[str, str]:
    """The small two-key history of :func:`build_history`."""
    return build_history(ledger, other)
