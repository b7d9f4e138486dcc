"""Helpers shared by the runner, search and usage tests: a seeded log and the views' totals."""

from __future__ import annotations

import sqlalchemy as sa

from ledger import EventStore
from ledger.schema import search_documents, usage_daily
from tests import controls

Usage = dict[str, tuple[int, int, int, int]]
"""Usage per source summed over days: (sessions, messages, retractions, tokens)."""


def _seed(store: EventStore) -> dict[str, str]:
    """Two sessions on two sources: user, assistant and tool messages; returns message ids."""
    fox = controls.message("a", "the quick brown fox jumps", token_count=7)
    dogs = controls.message("a", "lazy dogs sleep all day", role="assistant", token_count=11)
    tool = controls.message("a", "grep tool output", role="tool", tool_name="grep")
    bread = controls.message("b", "brown bread recipe", token_count=3)
    store.append("session-a", [controls.opened("a", "k1", source="cli"), fox, dogs, tool])
    store.append("session-b", [controls.opened("b", "k2", source="telegram"), bread])
    return {
        "fox": fox.message_id,
        "dogs": dogs.message_id,
        "tool": tool.message_id,
        "bread": bread.message_id,
    }


def _usage(store: EventStore) -> Usage:
    """The usage view summed over days, per source."""
    t = usage_daily
    query = sa.select(
        t.c.source,
        sa.func.sum(t.c.sessions),
        sa.func.sum(t.c.messages),
        sa.func.sum(t.c.retractions),
        sa.func.sum(t.c.tokens),
    ).group_by(t.c.source)
    with store.engine.connect() as conn:
        return {row[0]: tuple(int(v) for v in row[1:]) for row in conn.execute(query)}  # type: ignore[misc]


def _documents(store: EventStore) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(search_documents)).scalar_one()
        )
