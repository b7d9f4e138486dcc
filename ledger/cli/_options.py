"""The options every command shares: ``--url`` and ``--json``.

Kept apart from the store and rich (``ledger.cli._common``) so that a command module, or a
plugged-in one such as ``projections.cli``, can declare its options without importing them:
the root group lists commands without loading what they run on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["json_option", "url_option"]

F = TypeVar("F", bound=Callable[..., Any])


def url_option(func: F) -> F:
    """``--url``: the database to use."""
    return click.option(
        "--url",
        envvar="LEDGER_DATABASE_URL",
        default=None,
        help="SQLAlchemy URL (default: LEDGER_DATABASE_URL, else $LEDGER_HOME/ledger.db).",
    )(func)


def json_option(func: F) -> F:
    """``--json``: print machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)
