"""``AsyncLedger`` offers the ``Ledger`` API as coroutines, parameter for parameter.

A gateway moving from the sync API to the asyncio one changes ``ledger.x(...)`` into
``await ledger.x(...)`` and nothing else, so every public method of both takes the same
parameters (names, kinds, defaults); no ``**options`` hides one.
"""

from __future__ import annotations

import inspect

import pytest

from ledger import AsyncLedger, Ledger

#: ``open`` differs on purpose: it adds the worker-pool size.
_DIFFERENT = {"open"}
_METHODS = sorted(
    name
    for name, member in vars(Ledger).items()
    if callable(member) and not name.startswith("_") and name not in _DIFFERENT
)


def _parameters(func: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(func)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", _METHODS)
def test_async_ledger_method_takes_the_same_parameters(name: str) -> None:
    """The coroutine twin of ``Ledger.<name>`` has the same parameters."""
    twin = getattr(AsyncLedger, name, None)
    assert twin is not None, f"AsyncLedger has no {name}"
    assert _parameters(twin) == _parameters(getattr(Ledger, name))


def test_async_ledger_methods_are_coroutines() -> None:
    """Every twin that talks to the database is a coroutine function."""
    sync_only = {"cache"}  # returns the cache object; the cache's own methods are the I/O
    for name in _METHODS:
        if name not in sync_only:
            assert inspect.iscoroutinefunction(getattr(AsyncLedger, name)), name
