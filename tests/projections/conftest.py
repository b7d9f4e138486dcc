"""Fixtures shared by the runner, search and usage tests: the views and a runner of both."""

from __future__ import annotations

import pytest

from ledger import EventStore
from ledger.views import SessionViews
from projections.runner import ProjectionRunner
from projections.search import SearchProjection
from projections.usage import UsageProjection


@pytest.fixture
def views(store: EventStore) -> SessionViews:
    """Read access to the views of the ``store`` under test."""
    return SessionViews(store.engine)


@pytest.fixture
def runner(store: EventStore) -> ProjectionRunner:
    """A runner of both asynchronous projections on ``store``."""
    return ProjectionRunner(store, [SearchProjection(), UsageProjection()])
