"""The public surface: ``ledger.__all__`` and ``ledger.errors.__all__`` are sorted and complete.

"Sorted" is ruff's RUF022 isort-style order: SCREAMING_CASE constants, then CamelCase, then
the rest, each group alphabetical.
"""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import ledger
from ledger import errors


def isort_key(name: str) -> tuple[int, str]:
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


def public_classes(module: ModuleType, *, defined_in: str) -> set[str]:
    """Public class names bound in ``module`` whose class comes from ``defined_in``."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isclass(value)
        and (value.__module__ == defined_in or value.__module__.startswith(f"{defined_in}."))
    }


@pytest.mark.parametrize("module", [ledger, errors], ids=["ledger", "ledger.errors"])
def test_all_is_sorted(module: ModuleType) -> None:
    """``__all__`` is in isort-style order with no duplicates."""
    assert module.__all__ == sorted(set(module.__all__), key=isort_key)


@pytest.mark.parametrize("module", [ledger, errors], ids=["ledger", "ledger.errors"])
def test_all_names_resolve(module: ModuleType) -> None:
    """Every name in ``__all__`` is bound in the module."""
    assert [name for name in module.__all__ if not hasattr(module, name)] == []


def test_ledger_all_lists_every_public_class() -> None:
    """Every class from ``ledger.*`` bound in the package namespace is exported."""
    assert public_classes(ledger, defined_in="ledger") - set(ledger.__all__) == set()


def test_errors_all_lists_every_error_class() -> None:
    """Every class defined in ``ledger.errors`` is in its ``__all__``."""
    assert public_classes(errors, defined_in="ledger.errors") == set(errors.__all__)


def test_every_error_is_exported_from_the_package() -> None:
    """``from ledger import <AnyError>`` works for every error in ``ledger.errors``."""
    assert set(errors.__all__) - set(ledger.__all__) == set()
