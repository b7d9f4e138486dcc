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

import sqlalchemy as sa

from ledger import plugins
from ledger._preconditions import (
    active_session_in,
    build_message,
    check_reason,
    message_id_for,
    require_new_message_ids,
    require_open,
    session_state,
)
from ledger._sessions import SessionWrites, convert
from ledger.cache import AgentCache
from ledger.codec import check_text
from ledger.config import Settings
from ledger.errors import (
    InvalidArgumentError,
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
from ledger.formats import render
from ledger.records import AppendResult, RecordedEvent, StreamAppend
from ledger.store import EventStore, OneShot, has_event
from ledger.streams import key_stream, session_stream
from ledger.views import SearchHit, SessionHead, SessionUsage, SessionViews, TranscriptMessage

__all__ = ["Ledger", "key_stream", "new_session_id", "session_stream"]

_MAX_LINEAGE = 1000


def new_session_id() -> str:
    """A new session id that sorts by creation time: ``20261126_051941_3fa2c9d1``."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M%S_") + secrets.token_hex(4)


def _opened(
    session_key: str,
    *,
    session_id: str | None = None,
    source: str = "cli",
    reason: str = "new",
    model_config: Mapping[str, Any] | None = None,
    **fields: Any,
) -> SessionOpened:
    """A validated ``SessionOpened`` from :meth:`Ledger.open_session`'s arguments."""
    check_reason(reason)
    check_text("session_key", session_key)
    check_text("session_id", session_id)
    check_text("parent_session_id", fields.get("parent_session_id"))
    unknown = sorted(set(fields) - _OPEN_FIELDS)
    if unknown:
        raise InvalidArgumentError(unknown[0], fields[unknown[0]], "an open_session option")
    return convert(
        SessionOpened,
        session_id=session_id or new_session_id(),
        session_key=session_key,
        source=source,
        reason=reason,
        model_config=None if model_config is None else dict(model_config),
        **fields,
    )


#: The other keyword options of ``open_session``.
_OPEN_FIELDS = frozenset(
    ("parent_session_id", "user_id", "model", "title", "started_at", "system_prompt")
)


def _opening_locks(opened: SessionOpened) -> list[str]:
    """The streams an opening locks: the key's first, so openings of one key queue."""
    locked = [key_stream(opened.session_key), session_stream(opened.session_id)]
    if opened.parent_session_id is not None:
        locked.append(session_stream(opened.parent_session_id))
    return locked


class Ledger(SessionWrites):
    """A gateway's storage backend over an :class:`EventStore`."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.views = SessionViews(store.engine)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        writer: str | None = None,
        settings: Settings | None = None,
        create: bool = True,
    ) -> Ledger:
        """Open the ledger at ``url`` (same rules as :meth:`EventStore.open`; ``create=False``
        never creates or migrates a database)."""
        return cls(EventStore.open(url, writer=writer, settings=settings, create=create))

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
        started_at: dt.datetime | None = None,
        system_prompt: str | None = None,
        model_config: Mapping[str, Any] | None = None,
    ) -> str:
        """Open a session under ``session_key`` and make it the key's active one.

        ``SessionOpened`` goes to the session stream and ``SessionSwitched`` to the key stream
        in one transaction. ``reason="compress"``, ``"branch"`` or ``"delegate"`` with
        ``parent_session_id`` links a child session to its parent. ``started_at`` is the
        gateway's own time (timezone-aware; default: the log's). Returns the session id.
        """
        opened = _opened(
            session_key,
            session_id=session_id,
            source=source,
            reason=reason,
            parent_session_id=parent_session_id,
            user_id=user_id,
            model=model,
            title=title,
            started_at=started_at,
            system_prompt=system_prompt,
            model_config=model_config,
        )
        with self.store.transaction(streams=_opening_locks(opened)) as conn:
            self._open_in(conn, opened)
        return opened.session_id

    def ensure_session(self, session_key: str, **open_options: Any) -> str:
        """The key's active OPEN session, or a new one opened atomically (``open_options`` as
        for :meth:`open_session`).

        Two processes or coroutines calling this for a new key get the same session: the check
        and the open run in one transaction holding the key stream's lock. A closed active
        session gets a successor.
        """
        opened = _opened(session_key, **open_options)
        with self.store.transaction(streams=_opening_locks(opened)) as conn:
            active = active_session_in(conn, session_key)
            if active is not None and session_state(conn, active) == "open":
                return active
            self._open_in(conn, opened)
        return opened.session_id

    def _open_in(self, conn: sa.Connection, opened: SessionOpened) -> None:
        """Append ``opened`` and the key's switch to it, in the caller's transaction."""
        if opened.parent_session_id is not None:
            session_state(conn, opened.parent_session_id)
        switched = SessionSwitched(
            session_key=opened.session_key,
            session_id=opened.session_id,
            previous_session_id=active_session_in(conn, opened.session_key),
            reason=opened.reason,
        )
        self.store.append_in(
            conn,
            [
                StreamAppend(
                    stream=session_stream(opened.session_id), events=[opened], expected_sequence=0
                ),
                StreamAppend(stream=key_stream(opened.session_key), events=[switched]),
            ],
        )

    def append_message(
        self,
        session_id: str,
        role: str,
        content: str | list[dict[str, Any]] | None,
        *,
        created_at: dt.datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        expected_sequence: int | None = None,
        event_id: uuid.UUID | str | None = None,
        **fields: Any,
    ) -> AppendResult:
        """Append one message to an open session.

        ``role``: user, assistant, tool, system or developer. ``content``: text, ``None`` (an
        assistant turn that only calls tools) or a list of content parts, kept exactly.
        ``created_at`` is the gateway's time (timezone-aware; default: the log's). ``fields``
        are the known message fields (``tool_calls``, ``tool_call_id``, ``tool_name``, ``name``,
        ``token_count``, ``finish_reason``, ``reasoning``, ``reasoning_content``,
        ``reasoning_details``, ``message_id``); anything else is refused with
        :class:`InvalidArgumentError` and nothing is written: put it in ``metadata``.
        ``event_id`` makes the call idempotent (see :func:`ledger.platform_event_id`).
        """
        given = {"role": role, "content": content, **fields}
        if created_at is not None:
            given["created_at"] = created_at
        if metadata is not None:
            given["metadata"] = dict(metadata)
        message = build_message(session_id, given, message_id=message_id_for(event_id))
        ids = None if event_id is None else [event_id]
        chosen = [message.message_id] if "message_id" in fields else []
        return self._append(session_id, [message], expected_sequence, ids, chosen)

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
        if event_ids is not None and len(event_ids) != len(messages):
            raise InvalidArgumentError(
                "event_ids", f"{len(event_ids)} ids", f"one per message ({len(messages)})"
            )
        derived = [message_id_for(i) for i in event_ids] if event_ids else [None] * len(messages)
        built = [
            build_message(session_id, fields, message_id=message_id)
            for fields, message_id in zip(messages, derived, strict=True)
        ]
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
        check_text("session_id", session_id)
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

    # -- reads -------------------------------------------------------------------------------

    def active_session(self, session_key: str) -> str | None:
        """The key's active open session; ``None`` for a new key or a closed session."""
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

    def transcript_as_messages(
        self, session_id: str, format: str = "openai"
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """The live transcript ready to send to the model, with the system prompt.

        ``openai``: the chat-completions ``messages`` list. ``anthropic``: ``{"system": ...,
        "messages": [...]}`` for the Messages API. Tool calls and results are paired (an
        unanswered call or an orphan result, e.g. after an undo, is left out); content parts are
        kept (OpenAI image parts become Anthropic image blocks).
        """
        head = self.views.head(session_id)
        if head is None:
            raise SessionNotFoundError(session_id)
        return render(self.views.transcript(session_id), head.system_prompt, format)

    def usage(self, session_id: str) -> SessionUsage:
        """The session's usage totals, from its ``usage-*`` stream."""
        if self.views.head_sequence(session_id) is None:
            raise SessionNotFoundError(session_id)
        return self.views.usage(session_id)

    def sessions(
        self,
        *,
        session_key: str | None = None,
        source: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionHead]:
        """The session catalog, most recent gateway activity first."""
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
