"""What must hold before the gateway API writes, checked inside the write's own transaction.

Each check reads the inline views on the append transaction's connection, so a check and the
write it guards can never be split by another process: the session exists and is open, message
ids are new, a switch reason is one the key stream knows. ``build_message`` validates a
message's fields before any transaction starts.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.errors import (
    InvalidArgumentError,
    InvalidEventError,
    SessionClosedError,
    SessionNotFoundError,
)
from ledger.events import MessageAppended
from ledger.schema import session_heads, session_keys, transcript_messages

__all__ = [
    "LAST_LIVE",
    "LAST_USER",
    "MESSAGE_FIELDS",
    "REASONS",
    "active_session_in",
    "build_message",
    "check_reason",
    "live_from",
    "message_id_for",
    "require_new_message_ids",
    "require_open",
    "session_state",
]

# Statements built once: constructing a Core statement per call costs more than running it.
STATE = sa.select(session_heads.c.state).where(session_heads.c.session_id == sa.bindparam("sid"))
ACTIVE = sa.select(session_keys.c.session_id).where(
    session_keys.c.session_key == sa.bindparam("key")
)
TAKEN = sa.select(transcript_messages.c.message_id).where(
    transcript_messages.c.session_id == sa.bindparam("sid"),
    transcript_messages.c.message_id.in_(sa.bindparam("ids", expanding=True)),
)
LAST_LIVE = (
    sa.select(transcript_messages.c.message_id)
    .where(
        transcript_messages.c.session_id == sa.bindparam("sid"),
        transcript_messages.c.retracted_position.is_(None),
    )
    .order_by(transcript_messages.c.sequence.desc())
    .limit(sa.bindparam("n"))
)


#: The keyword fields a message may carry (besides ``role`` and ``content``).
MESSAGE_FIELDS = frozenset(MessageAppended.__struct_fields__) - {"session_id"}


def build_message(
    session_id: str, fields: Mapping[str, Any], *, message_id: str | None = None
) -> MessageAppended:
    """Build and validate a message from keyword fields; errors name the field or ``$.path``.

    A field the ledger does not know is refused (:class:`InvalidArgumentError` naming it), never
    dropped: gateway data that has no field of its own goes in ``metadata``. ``message_id``
    defaults to the given one, else a fresh id.
    """
    unknown = sorted(set(fields) - MESSAGE_FIELDS)
    if unknown:
        raise InvalidArgumentError(
            unknown[0],
            fields[unknown[0]],
            "a message field (" + ", ".join(sorted(MESSAGE_FIELDS)) + "), or put it in metadata",
        )
    data = {"message_id": message_id or uuid.uuid4().hex, **fields, "session_id": session_id}
    content = data.get("content")
    if isinstance(content, str) and not content.strip() and not data.get("tool_calls"):
        raise InvalidArgumentError("content", content, "non-empty text (or tool_calls)")
    if isinstance(content, list) and not content:
        raise InvalidArgumentError("content", content, "at least one content part, or None")
    # NUL and lone surrogates (which PostgreSQL cannot store) are refused by the codec, in
    # one scan of the encoded payload, for every field at once.
    try:
        return msgspec.convert(data, MessageAppended)
    except msgspec.ValidationError as exc:
        raise InvalidEventError("MessageAppended", str(exc)) from exc


_LIVE = transcript_messages.c.retracted_position.is_(None)
LAST_USER = (
    sa.select(transcript_messages.c.message_id)
    .where(
        transcript_messages.c.session_id == sa.bindparam("sid"),
        transcript_messages.c.role == "user",
        _LIVE,
    )
    .order_by(transcript_messages.c.sequence.desc())
    .limit(1)
)
FROM_MESSAGE = sa.select(transcript_messages.c.sequence).where(
    transcript_messages.c.session_id == sa.bindparam("sid"),
    transcript_messages.c.message_id == sa.bindparam("mid"),
    _LIVE,
)
LIVE_FROM = (
    sa.select(transcript_messages.c.message_id)
    .where(
        transcript_messages.c.session_id == sa.bindparam("sid"),
        transcript_messages.c.sequence >= sa.bindparam("from_sequence"),
        _LIVE,
    )
    .order_by(transcript_messages.c.sequence)
)


def live_from(conn: sa.Connection, session_id: str, message_id: str) -> list[str]:
    """The live messages from ``message_id`` (inclusive) to the end, in order (a rewind)."""
    start = conn.execute(FROM_MESSAGE, {"sid": session_id, "mid": message_id}).scalar()
    if start is None:
        raise InvalidArgumentError(
            "from_message_id", message_id, f"a live message of {session_id!r}"
        )
    return list(conn.execute(LIVE_FROM, {"sid": session_id, "from_sequence": start}).scalars())


def message_id_for(event_id: uuid.UUID | str | None) -> str | None:
    """A message's id derived from its idempotency key, so a retry encodes the same event."""
    if event_id is None:
        return None
    try:
        return (event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id))).hex
    except ValueError as exc:
        raise InvalidArgumentError("event_id", event_id, "a UUID") from exc


def session_state(conn: sa.Connection, session_id: str) -> str:
    state = conn.execute(STATE, {"sid": session_id}).scalar()
    if state is None:
        raise SessionNotFoundError(session_id)
    return str(state)


def require_open(conn: sa.Connection, session_id: str) -> None:
    if session_state(conn, session_id) != "open":
        raise SessionClosedError(session_id)


def active_session_in(conn: sa.Connection, session_key: str) -> str | None:
    value = conn.execute(ACTIVE, {"key": session_key}).scalar()
    return None if value is None else str(value)


def require_new_message_ids(conn: sa.Connection, session_id: str, message_ids: list[str]) -> None:
    """Refuse message ids that repeat in the batch or already exist in the session."""
    if not message_ids:
        return
    taken = set(conn.execute(TAKEN, {"sid": session_id, "ids": message_ids}).scalars())
    repeated = {m for m, n in Counter(message_ids).items() if n > 1}
    if taken or repeated:
        raise InvalidArgumentError(
            "message_id", sorted(taken | repeated)[0], f"an id not yet used in {session_id!r}"
        )


REASONS = ("new", "reset", "resume", "branch", "compress", "delegate")


def check_reason(reason: str) -> None:
    if reason not in REASONS:
        raise InvalidArgumentError("reason", reason, " | ".join(REASONS))
