"""The installed projections by name (from the ``session_ledger.projections`` entry points)."""

from __future__ import annotations

from ledger import plugins
from ledger.errors import InvalidArgumentError
from projections.base import Projection

__all__ = ["all_projections", "select"]


def all_projections() -> list[Projection]:
    """One fresh instance of every installed projection, inline ones first."""
    instances = [cls() for cls in plugins.load("projections")]
    return sorted(instances, key=lambda p: (not p.inline, p.name))


def select(name: str | None) -> list[Projection]:
    """Every projection, or just the one called ``name``."""
    found = all_projections()
    if name is None:
        return found
    chosen = [p for p in found if p.name == name]
    if not chosen:
        raise InvalidArgumentError("projection", name, ", ".join(p.name for p in found))
    return chosen
