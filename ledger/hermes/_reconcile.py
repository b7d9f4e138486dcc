"""A re-import: what the ledger must append so an imported session matches Hermes again.

Content decides, never counts. The ledger's side of a session (its head, and which of its
transcript's messages are live) is compared with Hermes' rows by id:

* a row the ledger does not have is appended (and retracted at once when Hermes undid or
  compacted it); a row Hermes undid or compacted since is retracted;
* a live imported message whose row Hermes no longer has (deleted, rewound) is retracted with
  reason ``rewind``; messages the gateway wrote on the ledger are not Hermes' and stay;
* a session the ledger has closed is reopened when Hermes reopened it (``/resume``) or has new
  rows for it, and closed again when Hermes has ended it again;
* a changed title (a cleared one too), a changed system prompt and grown usage counters arrive
  as ``SessionTitled``, ``SessionConfigured`` and ``UsageRecorded``.

Every event id is derived from what it records and the head it follows, so running the same
re-import twice appends nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.events import (
    MessagesRetracted,
    SessionConfigured,
    SessionReopened,
    SessionTitled,
    UsageRecorded,
)
from ledger.hermes._mapping import USAGE_COLUMNS, Planned, RowMapper, cut, event_id
from ledger.hermes._source import number
from ledger.schema import session_heads, session_usage, transcript_messages
from ledger.views import SessionUsage

__all__ = ["LedgerSide", "ledger_sides", "reconcile", "retracted", "unchanged", "usage_delta"]


class LedgerSide(msgspec.Struct, kw_only=True):
    """What the ledger holds of one imported session."""

    sequence: int
    state: str
    title: str | None
    system_prompt: str | None
    started_at: dt.datetime | None
    #: Transcript message id → live (not retracted).
    messages: dict[str, bool]
    usage: SessionUsage


def ledger_sides(engine: sa.Engine, session_ids: list[str]) -> dict[str, LedgerSide]:
    """What the ledger holds of those sessions that it has (heads, transcript, usage)."""
    h, t, u = session_heads, transcript_messages, session_usage
    heads = sa.select(
        h.c.session_id, h.c.sequence, h.c.state, h.c.title, h.c.system_prompt, h.c.started_at
    ).where(h.c.session_id.in_(session_ids))
    sides: dict[str, LedgerSide] = {}
    with engine.connect() as conn:
        for row in conn.execute(heads):
            sides[row.session_id] = LedgerSide(
                sequence=int(row.sequence),
                state=row.state,
                title=row.title,
                system_prompt=row.system_prompt,
                started_at=row.started_at,
                messages={},
                usage=SessionUsage(session_id=row.session_id),
            )
        if not sides:
            return sides
        found = list(sides)
        live = t.c.retracted_position.is_(None)
        rows = sa.select(t.c.session_id, t.c.message_id, live).where(t.c.session_id.in_(found))
        for sid, mid, is_live in conn.execute(rows):
            sides[sid].messages[mid] = bool(is_live)
        usage = sa.select(u).where(u.c.session_id.in_(found))
        for totals in conn.execute(usage).mappings():
            fields = {name: totals[name] for name in SessionUsage.__struct_fields__}
            sides[totals["session_id"]].usage = SessionUsage(**fields)
    return sides


def _cost(row: Mapping[str, Any]) -> float | None:
    for column in ("actual_cost_usd", "estimated_cost_usd"):
        value = row.get(column)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def usage_delta(sid: str, row: Mapping[str, Any], usage: SessionUsage) -> Planned | None:
    """A ``UsageRecorded`` of what Hermes' counters grew by since the ledger's totals."""
    counts = {
        field: max(0, int(number(row.get(column))) - getattr(usage, field))
        for column, field in USAGE_COLUMNS.items()
    }
    cost = _cost(row)
    extra = None if cost is None else round(cost - (usage.cost_usd or 0.0), 9)
    if not any(counts.values()) and not (extra and extra > 0):
        return None
    model = row.get("model")
    event = UsageRecorded(
        session_id=sid,
        **counts,
        cost_usd=extra if extra and extra > 0 else None,
        model=str(model)[:255] if model else None,
    )
    totals = ",".join(str(row.get(column)) for column in (*USAGE_COLUMNS, "actual_cost_usd"))
    return event_id(sid, f"usage:{totals}:{row.get('estimated_cost_usd')}", "usage"), event


def unchanged(row: Mapping[str, Any], side: LedgerSide, rows: dict[str, bool]) -> bool:
    """Whether nothing a re-import compares differs (it may then skip reading the session)."""
    closed = row.get("ended_at") is not None
    return (
        side.messages == rows
        and cut(row.get("title"), "title") == side.title
        and (side.state == "closed") == closed
        and usage_delta(str(row["id"]), row, side.usage) is None
    )


def reconcile(
    mapper: RowMapper, row: Mapping[str, Any], side: LedgerSide, stored: set[Any]
) -> list[Planned]:
    """The events that bring the ledger's session in line with Hermes' rows (see the module)."""
    sid = str(row["id"])
    at = side.sequence
    imported = {m: live for m, live in side.messages.items() if _has(stored, sid, m, "message")}
    planned: list[Planned] = []
    retract: list[Planned] = []
    seen: set[str] = set()
    for mid, message, live, why in mapper.messages(row["id"]):
        seen.add(mid)
        if mid not in imported:
            if not _has(stored, sid, mid, "message"):
                planned.append((event_id(sid, mid, "message"), message))
                if not live:
                    planned.append((event_id(sid, mid, "retracted"), retracted(sid, [mid], why)))
        elif imported[mid] and not live and not _has(stored, sid, mid, "retracted"):
            retract.append((event_id(sid, mid, "retracted"), retracted(sid, [mid], why)))
    gone = sorted((m for m, live in imported.items() if live and m not in seen), key=_row_order)
    if gone:
        rewound = retracted(sid, gone, "rewind")
        retract.insert(0, (event_id(sid, f"{at}:{','.join(gone)}", "rewound"), rewound))
    events = retract + planned
    closed = mapper.closed(dict(row))
    reopen = side.state == "closed" and (closed is None or bool(planned))
    if reopen:
        events.insert(0, (event_id(sid, str(at), "reopened"), SessionReopened(session_id=sid)))
    title = cut(row.get("title"), "title")
    if title != side.title:
        titled = SessionTitled(session_id=sid, title=title)
        events.append((event_id(sid, f"{at}:{title}", "titled"), titled))
    prompt = mapper.system_prompt(mapper.source.session(row["id"]))
    if prompt is not None and prompt != side.system_prompt:
        configured = SessionConfigured(session_id=sid, system_prompt=prompt)
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        events.append((event_id(sid, f"{at}:{digest}", "configured"), configured))
    if closed is not None and (side.state != "closed" or reopen):
        events.append((event_id(sid, f"{at}:{row.get('ended_at')}", "closed"), closed))
    return events


def _has(stored: set[Any], sid: str, mid: str, kind: str) -> bool:
    return event_id(sid, mid, kind) in stored


def retracted(sid: str, ids: list[str], why: str) -> MessagesRetracted:
    """The retraction of Hermes rows ``ids`` (``why``: undo, compact or rewind)."""
    return MessagesRetracted(session_id=sid, message_ids=ids, reason=why)  # type: ignore[arg-type]


def _row_order(message_id: str) -> tuple[int, str]:
    """Hermes row ids are integers: order them numerically (others after, by text)."""
    return (int(message_id), "") if message_id.isdigit() else (1 << 62, message_id)
