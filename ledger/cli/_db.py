"""``ledger db upgrade|downgrade|current``: the schema, managed by Alembic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ledger.cli._common import emit_json, json_option, url_option
from ledger.config import Settings
from ledger.store import migration
from ledger.store.database import create_engine, require_existing

__all__ = ["db"]


@click.group()
def db() -> None:
    """Manage the database schema (Alembic migrations)."""


def _engine(url: str | None) -> Any:
    settings = Settings.from_env()
    return create_engine(settings.resolve_url(url), settings)


def _existing_revision(url: str | None) -> str | None:
    """The revision of the database at ``url``, which must exist (nothing is created)."""
    settings = Settings.from_env()
    resolved = settings.resolve_url(url)
    require_existing(resolved)
    engine = create_engine(resolved, settings)
    try:
        return migration.current_revision(engine)
    finally:
        engine.dispose()


def _migrate(
    url: str | None, step: Callable[[Any, str], None], revision: str, verb: str, as_json: bool
) -> None:
    """Run one migration ``step`` and report the revision before and after."""
    engine = _engine(url)
    try:
        before = migration.current_revision(engine)
        step(engine, revision)
        after = migration.current_revision(engine)
    finally:
        engine.dispose()
    if as_json:
        emit_json({"from": before, "to": after, "head": migration.head_revision()})
    else:
        click.echo(f"{verb} {before or '<empty>'} -> {after or '<empty>'}")


@db.command("upgrade")
@url_option
@click.argument("revision", default="head")
@json_option
def db_upgrade(url: str | None, revision: str, as_json: bool) -> None:
    """Migrate the database up to REVISION (default: head)."""
    _migrate(url, migration.upgrade, revision, "upgraded", as_json)


@db.command("downgrade")
@url_option
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Really remove what the downgrade removes.")
@json_option
def db_downgrade(url: str | None, revision: str, yes: bool, as_json: bool) -> None:
    """Migrate the database down to REVISION (``base`` removes every table, the whole log).

    Without --yes nothing happens: the command says what the downgrade would remove, then
    exits 1.
    """
    if not yes:
        current = _existing_revision(url)
        what = (
            "EVERY ledger table, the whole log and its views"
            if revision == "base"
            else f"the schema changes after revision {revision}"
        )
        raise click.ClickException(
            f"downgrading {current or '<empty>'} -> {revision} would remove {what}; "
            "nothing was changed (pass --yes to do it)"
        )
    _migrate(url, migration.downgrade, revision, "downgraded", as_json)


@db.command("current")
@url_option
@json_option
def db_current(url: str | None, as_json: bool) -> None:
    """Show the database's revision and whether it is the head (creates nothing)."""
    current = _existing_revision(url)
    head = migration.head_revision()
    if as_json:
        emit_json({"current": current, "head": head, "is_head": current == head})
    else:
        state = "(head)" if current == head else f"(head is {head}: run `ledger db upgrade`)"
        click.echo(f"{current or '<empty>'} {state}")
