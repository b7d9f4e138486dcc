"""Idempotent appends: a retried append with caller-given ``event_ids`` returns its first result.

The ``event_id`` is the idempotency key (unique in ``events``). A retry that carries exactly the
stored events, in the same stream and order, gets the original sequences and positions back
with ``duplicate=True`` and writes nothing. A stored id that comes back with DIFFERENT content
(another message under the same platform update id) is an :class:`IdempotencyConflictError`,
never the old result returned as if it were this one; any other reuse of a stored id (another
stream, another order) is a :class:`DuplicateEventError`. Content is compared as decoded
events, so a retry across an upgrade that changed the payload's encoding is still a retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from ledger.errors import DuplicateEventError, IdempotencyConflictError
from ledger.events import Event
from ledger.records import AppendResult, StreamAppend
from ledger.schema import events as events_table

__all__ = ["stored_result"]


def stored_result(
    conn: sa.Connection,
    appends: Sequence[StreamAppend],
    prepared: Sequence[list[dict[str, Any]]],
    decode: Callable[[str, bytes, int], Event],
) -> list[AppendResult] | None:
    """The original results if these caller-given ``event_ids`` are stored already.

    ``decode(type, data, schema_version)`` reads a stored payload back, for the comparison.
    """
    given = [
        row["event_id"]
        for part, rows in zip(appends, prepared, strict=True)
        if part.event_ids is not None
        for row in rows
    ]
    if not given:
        return None
    t = events_table
    found = {
        row.event_id: row
        for row in conn.execute(
            sa.select(
                t.c.event_id,
                t.c.stream,
                t.c.sequence,
                t.c.position,
                t.c.type,
                t.c.data,
                t.c.schema_version,
            ).where(t.c.event_id.in_(given))
        )
    }
    if not found:
        return None
    results: list[AppendResult] = []
    for part, rows in zip(appends, prepared, strict=True):
        stored = [found.get(row["event_id"]) for row in rows]
        for row, old in zip(rows, stored, strict=True):
            if old is None or old.stream != part.stream:
                continue  # not a retry of this append: the checks below refuse it
            if decode(old.type, old.data, old.schema_version) != row["_event"]:
                raise IdempotencyConflictError(part.stream, str(row["event_id"]))
        if (
            part.event_ids is None
            or any(s is None or s.stream != part.stream for s in stored)
            or [s.sequence for s in stored if s is not None]
            != list(range(stored[0].sequence, stored[0].sequence + len(stored)))  # type: ignore[union-attr]
        ):
            clashing = [str(i) for i in given if i in found]
            raise DuplicateEventError(part.stream, clashing)
        results.append(
            AppendResult(
                stream=part.stream,
                sequence=stored[-1].sequence,  # type: ignore[union-attr]
                position=stored[-1].position,  # type: ignore[union-attr]
                sequences=tuple(s.sequence for s in stored),  # type: ignore[union-attr]
                positions=tuple(s.position for s in stored),  # type: ignore[union-attr]
                event_ids=tuple(row["event_id"] for row in rows),
                duplicate=True,
            )
        )
    return results
