"""Fixtures of the adapter tests: an :class:`AsyncLedger` on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from ledger import AsyncLedger
from ledger.config import Settings
from tests.helpers import assert_no_connection_leaked


@pytest_asyncio.fixture
async def aledger(migrated_url: str, settings: Settings) -> AsyncIterator[AsyncLedger]:
    """An :class:`AsyncLedger` with writer ``gateway-1`` on a migrated database of each
    backend, closed (with no connection left checked out) when the test ends."""
    opened = await AsyncLedger.open(migrated_url, writer="gateway-1", settings=settings)
    try:
        yield opened
        assert_no_connection_leaked(opened.ledger)
    finally:
        await opened.close()
