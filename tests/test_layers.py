"""The layering of ``ledger/`` is a checked contract, not a hope.

``pyproject.toml`` declares the layers (import-linter): the CLI on top; replay and maintenance;
the Hermes import; the asyncio and sync gateway API; the cache; the read side; the store; the
vocabulary at the bottom. A module may import only the layers below its own, ``ledger`` never
imports ``projections``, and only the CLI imports click and rich.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

from importlinter import cli

import ledger

ROOT = Path(__file__).resolve().parent.parent


def _layers() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layered,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return {name.strip() for layer in layered["layers"] for name in layer.split("|")}


def test_the_import_contracts_hold() -> None:
    """``lint-imports`` finds every contract kept (the store imports no layer above it…)."""
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_every_module_of_ledger_sits_in_a_layer() -> None:
    """A new module or package cannot dodge the layers contract by not being listed."""
    found = {name for _, name, _ in pkgutil.iter_modules(ledger.__path__)}
    assert found - _layers() == set(), "add these to [tool.importlinter] layers in pyproject"
