"""``Ledger``: the storage API a chat gateway calls on every turn.

It speaks the gateway's words (sessions, keys, messages, undo) and turns each call into events
appended in one transaction, checking what must hold first (the session exists, is open, the
messages to retract are live) inside that same transaction, so a check and its write can never
be split by another process. Reads come from the inline views, so a write is visible to the
next read at once; ``search`` first lets the search projection catch up.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec

from ledger import plugins
from ledger._preconditions import (
    LAST_LIVE,
    active_session_in,
    build_message,
    check_reason,
    require_new_message_ids,
    require_open,
    session_state,
)
from ledger.cache import AgentCache
from ledger.config import Settings
from ledger.errors import (
    InvalidArgumentError,
    InvalidEventError,
    SessionClosedError,
    SessionNotFoundError,
)
from ledger.events import (
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionOpened,
    SessionSwitched,
    SessionTitled,
)
from ledger.records import AppendResult, RecordedEvent, StreamAppend
from ledger.store import EventStore, OneShot, has_event
from ledger.streams import key_stream, session_stream
from ledger.views import SearchHit, SessionHead, SessionViews, TranscriptMessage

__all__ = ["Ledger", "key_stream", "new_session_id", "session_stream"]

_MAX_LINEAGE = 1000


def new_session_id() -> str:
    """A new session id that sorts by creation time: ``20261126_051941_3fa2c9d1``."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M%S_") + secrets.token_hex(4)


class Ledger:
    """A gateway's storage backend over an :class:`EventStore`."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.views = SessionViews(store.engine)

    @classmethod
    def open(
        cls, url: str | None = None, *, writer: str | None = None, settings: Settings | None = None
    ) -> Ledger:
        """Open the ledger at ``url`` (same rules as :meth:`EventStore.open`)."""
        return cls(EventStore.open(url, writer=writer, settings=settings))

    def close(self) -> None:
        """Close the underlying store."""
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def writer(self) -> str:
        """This ledger's writer id (``<hostname>:<pid>`` unless given)."""
        return self.store.writer

    # -- writes ------------------------------------------------------------------------------

    def open_session(
        self,
        session_key: str,
        *,
        session_id: str | None = None,
        source: str = "cli",
        reason: str = "new",
        parent_session_id: str | None = None,
        user_id: str | None = None,
        model: str | None = None,
        title: str | None = None,
    ) -> str:
        """Open a session under ``session_key`` and make it the key's active one.

        ``SessionOpened`` goes to the session stream and ``SessionSwitched`` to the key stream
        in one transaction. ``reason="compress"`` or ``"branch"`` with ``parent_session_id``
        links a child session to its parent. Returns the session id.
        """
        check_reason(reason)
        session_id = session_id or new_session_id()
        fields = {
            "session_id": session_id,
            "session_key": session_key,
            "source": source,
            "reason": reason,
            "parent_session_id": parent_session_id,
            "user_id": user_id,
            "model": model,
            "title": title,
        }
        try:
            opened = msgspec.convert(fields, SessionOpened)
        except msgspec.ValidationError as exc:
            raise InvalidEventError("SessionOpened", str(exc)) from exc
        locked = [key_stream(session_key), session_stream(session_id)]
        if parent_session_id is not None:
            locked.append(session_stream(parent_session_id))
        with self.store.transaction(streams=locked) as conn:
            if parent_session_id is not None:
                session_state(conn, parent_session_id)
            previous = active_session_in(conn, session_key)
            switched = SessionSwitched(
                session_key=session_key,
                session_id=session_id,
                previous_session_id=previous,
                reason=opened.reason,
            )
            self.store.append_in(
                conn,
                [
                    StreamAppend(
                        stream=session_stream(session_id), events=[opened], expected_sequence=0
                    ),
                    StreamAppend(stream=key_stream(session_key), events=[switched]),
                ],
            )
        return session_id

    def switch_session(
        self, session_key: str, session_id: str, *, reason: str = "resume"
    ) -> AppendResult | None:
        """Make ``session_id`` the key's active session; a no-op (None) if it already is.

        A session purged by retention cannot become active again (its transcript is gone).
        """
        check_reason(reason)
        locked = [session_stream(session_id), key_stream(session_key)]
        with self.store.transaction(streams=locked) as conn:
            if session_state(conn, session_id) == "purged":
                raise SessionClosedError(session_id)
            previous = active_session_in(conn, session_key)
            if previous == session_id:
                return None
            event = SessionSwitched(
                session_key=session_key,
                session_id=session_id,
                previous_session_id=previous,
                reason=reason,  # type: ignore[arg-type]
            )
            part = StreamAppend(stream=key_stream(session_key), events=[event])
            return self.store.append_in(conn, [part])[0]

    def append_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        expected_sequence: int | None = None,
        event_id: uuid.UUID | str | None = None,
        **fields: Any,
    ) -> AppendResult:
        """Append one message (role user/assistant/tool/system) to an open session."""
        message = build_message(session_id, {"role": role, "content": content, **fields})
        ids = None if event_id is None else [event_id]
        given = [message.message_id] if "message_id" in fields else []
        return self._append(session_id, [message], expected_sequence, ids, given)

    def append_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        expected_sequence: int | None = None,
        event_ids: Sequence[uuid.UUID | str] | None = None,
    ) -> AppendResult:
        """Append several messages (mappings of message fields) in one transaction."""
        if not messages:
            raise InvalidArgumentError("messages", list(messages), "at least one message")
        built = [build_message(session_id, fields) for fields in messages]
        given = [m.message_id for m, f in zip(built, messages, strict=True) if "message_id" in f]
        return self._append(session_id, built, expected_sequence, event_ids, given)

    def _append(
        self,
        session_id: str,
        events: Sequence[MessageAppended | SessionTitled | SessionClosed | MessagesRetracted],
        expected_sequence: int | None,
        event_ids: Sequence[uuid.UUID | str] | None,
        given_message_ids: list[str] | None = None,
    ) -> AppendResult:
        """Append to an open session; message ids the caller chose are checked for reuse
        (generated ones are fresh UUIDs and need no lookup)."""
        part = StreamAppend(
            stream=session_stream(session_id),
            events=events,
            expected_sequence=expected_sequence,
            event_ids=event_ids,
        )
        rows = self.store.prepare(part)
        first = events[0] if events else None
        if not given_message_ids and isinstance(first, MessageAppended) and OneShot.eligible(part):
            done = self.store.one_shot.append(rows[0], first)
            if done is not None:  # None: archived, or not PostgreSQL with the known views
                return done
        with self.store.transaction(streams=[part.stream]) as conn:
            if event_ids is not None:
                self.store.restore_archived(conn, {part.stream})
            if event_ids is None or not has_event(conn, rows[0]["event_id"]):
                require_open(conn, session_id)
                require_new_message_ids(conn, session_id, given_message_ids or [])
            return self.store.append_in(conn, [part], [rows])[0]

    def retract_messages(
        self, session_id: str, count: int = 1, *, reason: str = "undo"
    ) -> AppendResult:
        """Take back the last ``count`` live messages (``/undo``, ``/retry``)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgumentError("count", count, "an integer >= 1")
        if reason not in ("undo", "retry"):
            raise InvalidArgumentError("reason", reason, "undo or retry")
        with self.store.transaction(streams=[session_stream(session_id)]) as conn:
            require_open(conn, session_id)
            ids = list(conn.execute(LAST_LIVE, {"sid": session_id, "n": count}).scalars())
            if len(ids) < count:
                raise InvalidArgumentError(
                    "count", count, f"at most {len(ids)} (the live messages of {session_id!r})"
                )
            event = MessagesRetracted(
                session_id=session_id,
                message_ids=list(reversed(ids)),
                reason=reason,  # type: ignore[arg-type]
            )
            part = StreamAppend(stream=session_stream(session_id), events=[event])
            return self.store.append_in(conn, [part])[0]

    def close_session(self, session_id: str, *, reason: str = "closed") -> AppendResult:
        """Close the session; it takes no more messages."""
        return self._append(
            session_id, [SessionClosed(session_id=session_id, reason=reason)], None, None
        )

    def set_title(self, session_id: str, title: str) -> AppendResult:
        """Give the session a (new) title."""
        try:
            event = msgspec.convert({"session_id": session_id, "title": title}, SessionTitled)
        except msgspec.ValidationError as exc:
            raise InvalidEventError("SessionTitled", str(exc)) from exc
        with self.store.transaction(streams=[session_stream(session_id)]) as conn:
            if session_state(conn, session_id) == "purged":
                raise SessionClosedError(session_id)
            part = StreamAppend(stream=session_stream(session_id), events=[event])
            return self.store.append_in(conn, [part])[0]

    # -- reads -------------------------------------------------------------------------------

    def active_session(self, session_key: str) -> str | None:
        """The key's active session, ``None`` for a new key."""
        return self.views.active_session(session_key)

    def head(self, session_id: str) -> SessionHead | None:
        """The session's head (sequence, message_count, position, writer, state…)."""
        return self.views.head(session_id)

    def transcript(
        self, session_id: str, *, include_retracted: bool = False
    ) -> list[TranscriptMessage]:
        """The live transcript (retractions applied) of ``session_id``."""
        if self.views.head_sequence(session_id) is None:
            raise SessionNotFoundError(session_id)
        return self.views.transcript(session_id, include_retracted=include_retracted)

    def sessions(
        self,
        *,
        session_key: str | None = None,
        source: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionHead]:
        """The session catalog, most recently updated first."""
        return self.views.sessions(
            session_key=session_key, source=source, state=state, limit=limit, offset=offset
        )

    def search(
        self, query: str, *, limit: int = 20, session_id: str | None = None, fresh: bool = True
    ) -> list[SearchHit]:
        """Full-text search; ``fresh`` first lets the asynchronous projections catch up."""
        if fresh:
            self.catch_up()
        return self.views.search(query, limit=limit, session_id=session_id)

    def catch_up(self) -> int:
        """Apply pending events to the asynchronous projections; returns how many."""
        total = 0
        for runner in plugins.load("runners"):
            total += int(runner(self.store))
        return total

    def lineage(self, session_id: str) -> list[str]:
        """The chain of sessions from the root ancestor down to ``session_id``."""
        chain = [session_id]
        head = self.views.head(session_id)
        if head is None:
            raise SessionNotFoundError(session_id)
        while head is not None and head.parent_session_id and len(chain) < _MAX_LINEAGE:
            if head.parent_session_id in chain:
                break
            chain.append(head.parent_session_id)
            head = self.views.head(head.parent_session_id)
        return list(reversed(chain))

    def read_stream(self, stream: str, from_sequence: int = 1) -> Iterator[RecordedEvent]:
        """The events of ``stream`` (``session-<id>`` or ``key-<key>``), lazily."""
        return self.store.read_stream(stream, from_sequence)

    def read_all(
        self, after_position: int = 0, limit: int | None = None
    ) -> Iterator[RecordedEvent]:
        """The whole log after ``after_position``, lazily."""
        return self.store.read_all(after_position, limit)

    def cache(self, **options: Any) -> AgentCache:
        """An :class:`AgentCache` bound to this ledger (options as for ``AgentCache``)."""
        return AgentCache(self.store, **options)
