"""The options every command shares: ``--url``, ``--json``, the scope of a privacy request, and
the confirmation destructive commands ask for.

Kept apart from the store and rich (``ledger.cli._common``) so that a command module, or a
plugged-in one such as ``projections.cli``, can declare its options without importing them:
the root group lists commands without loading what they run on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["MAX_POSITION", "confirm", "json_option", "scope_options", "url_option"]

F = TypeVar("F", bound=Callable[..., Any])

#: The largest log position or offset an option takes (a BIGINT on either backend).
MAX_POSITION = 2**63 - 1


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


def scope_options(func: F) -> F:
    """``--user`` / ``--key`` / ``--session``: whose data (exactly one, checked by the command)."""
    for name, what in (
        ("session", "One session id."),
        ("key", "Every session opened under this session key."),
        ("user", "Every session opened with this user id."),
    ):
        func = click.option(f"--{name}", default=None, help=what)(func)
    return func


def confirm(yes: bool, what: str, token: str) -> None:
    """Go ahead with a destructive step only when told so.

    ``--yes`` goes ahead; on a terminal the operator is shown ``what`` and must type ``token``;
    anywhere else nothing happens and the command ends with ``error: <what>; nothing was
    changed (pass --yes to do it)``, exit 1.
    """
    if yes:
        return
    if sys.stdin.isatty() and sys.stderr.isatty():
        click.echo(f"{what}.", err=True)
        typed = click.prompt(
            f"type {token!r} to go ahead", default="", show_default=False, err=True
        )
        if typed == token:
            return
        raise click.ClickException("not confirmed; nothing was changed")
    raise click.ClickException(f"{what}; nothing was changed (pass --yes to do it)")
