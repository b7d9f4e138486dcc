"""The asynchronous ``usage`` projection, as ``ProjectionRunner`` applies it.

``usage_daily`` counts sessions, messages, retractions and tokens per source and UTC day,
exactly; a stream nobody opened counts under ``unknown``. Every test runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ledger import EventStore
from ledger.schema import usage_daily
from projections.runner import ProjectionRunner
from tests import controls
from tests.projections.support import _seed, _usage


def test_usage_counts_sessions_messages_retractions_and_tokens_per_source_and_day(
    store: EventStore, runner: ProjectionRunner
) -> None:
    """usage_daily holds, per source and UTC day, the exact counts of what was appended."""
    ids = _seed(store)
    store.append("session-b", [controls.retracted("b", ids["bread"])])
    runner.catch_up()
    days = {r.recorded_at.date() for r in store.read_all()}
    t = usage_daily
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.source)).mappings().all()
    assert {row["day"] for row in rows} <= days
    assert all(isinstance(row["day"], dt.date) for row in rows)
    assert _usage(store) == {"cli": (1, 3, 0, 18), "telegram": (1, 1, 1, 3)}


def test_usage_counts_a_session_without_a_head_under_unknown(
    store: EventStore, runner: ProjectionRunner
) -> None:
    """Messages of a stream nobody opened are counted under the source ``unknown``."""
    store.append("session-x", controls.messages(2, "x"))
    runner.catch_up()
    assert _usage(store) == {"unknown": (0, 2, 0, 0)}
