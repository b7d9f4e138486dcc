"""Extension points, discovered through package entry points.

The ``projections`` package builds on ``ledger`` and must never be imported by it, yet every
append must update the inline views and the ``ledger`` CLI offers ``ledger projections``. Both
are plugged in by entry points declared in ``pyproject.toml`` (the dependency inversion click
and pytest use for plugins):

* ``session_ledger.inline_projections``: classes instantiated with no arguments and applied by
  :class:`~ledger.store.EventStore` inside each append transaction;
* ``session_ledger.projections``: every projection class, inline and asynchronous;
* ``session_ledger.commands``: click commands added to the ``ledger`` CLI.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from ledger.errors import ConfigurationError

__all__ = ["load"]


@cache
def load(group: str) -> tuple[Any, ...]:
    """The objects registered under ``session_ledger.<group>``, sorted by entry-point name."""
    found = sorted(entry_points(group=f"session_ledger.{group}"), key=lambda ep: ep.name)
    if not found:
        raise ConfigurationError(
            f"entry points session_ledger.{group}",
            None,
            "the session-ledger package to be installed (pip install -e .)",
        )
    return tuple(ep.load() for ep in found)
