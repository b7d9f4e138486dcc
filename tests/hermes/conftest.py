"""Fixtures shared by the Hermes importer tests: a ``state.db`` of each Hermes column set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hermes import fixture as hermes_fixture


@pytest.fixture
def old_path(tmp_path: Path) -> Path:
    """A state.db with the old Hermes column set."""
    return hermes_fixture.old_db(tmp_path / "old-state.db")


@pytest.fixture
def new_path(tmp_path: Path) -> Path:
    """A state.db with the new Hermes column set."""
    return hermes_fixture.new_db(tmp_path / "new-state.db")


@pytest.fixture
def v30_path(tmp_path: Path) -> Path:
    """A state.db shaped like Hermes v30 (see ``tests.hermes.fixture_v30``)."""
    from tests.hermes.fixture_v30 import v30_db

    return v30_db(tmp_path / "v30-state.db")
