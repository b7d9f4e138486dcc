"""A LangChain chat message history on the ledger (optional extra: ``session-ledger[langchain]``).

::

    from langchain_core.runnables.history import RunnableWithMessageHistory
    from ledger import AsyncLedger
    from ledger.integrations.langchain import LedgerChatMessageHistory

    ledger = await AsyncLedger.open("postgresql://...")
    chain = RunnableWithMessageHistory(model, lambda key: LedgerChatMessageHistory(ledger, key))
    await chain.ainvoke([HumanMessage("hi")], {"configurable": {"session_id": "slack:T1:C1"}})

LangChain's ``session_id`` is the ledger's ``session_key`` (a chat); the key's active ledger
session holds the messages. ``add_messages`` appends them in one transaction; ``clear`` opens a
new session under the key (a ``/new``: the old one stays in the log). Each message is stored as
a chat message the rest of the ledger understands (role, content, tool calls, tool results) with
LangChain's own ``messages_to_dict`` form in ``metadata``, so every message type comes back
equal. The async methods never block the event loop: on an :class:`AsyncLedger` they are its
coroutines, on a :class:`Ledger` they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from ledger.aio import AsyncLedger
from ledger.errors import InvalidArgumentError
from ledger.facade import Ledger
from ledger.integrations import Memo, RetryIds
from ledger.records import AppendResult
from ledger.views import SessionHead, TranscriptMessage

__all__ = [
    "METADATA_KEY",
    "LedgerChatMessageHistory",
    "message_to_fields",
    "transcript_to_message",
]

#: The key of a message's ``metadata`` that holds LangChain's dict of the message.
METADATA_KEY = "langchain"

#: LangChain message types by the ledger role they are stored under.
_ROLES = {
    "human": "user",
    "HumanMessageChunk": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "SystemMessageChunk": "system",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "tool",
    "FunctionMessageChunk": "tool",
}
_LEDGER_ROLES = frozenset(("user", "assistant", "tool", "system", "developer"))
_NAME_MAX = 255


def _content_ok(content: Any) -> bool:
    """Whether ``content`` can be a ledger message's content as it is."""
    if isinstance(content, list):
        return bool(content) and all(
            isinstance(part, dict) and "\x00" not in str(part.get("text", "")) for part in content
        )
    return isinstance(content, str) and bool(content.strip()) and "\x00" not in content


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _NAME_MAX else None


def _json(value: Any, what: str) -> Any:
    """``value`` as its JSON reads back (what the ledger will return), or a clear error."""
    try:
        return json.loads(json.dumps(copy.deepcopy(value)))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(what, repr(value)[:80], "JSON-serialisable values") from exc


def message_to_fields(message: BaseMessage) -> dict[str, Any]:
    """The ledger message fields (for ``append_messages``) that store a LangChain message.

    Human: ``user``; AI: ``assistant`` with its ``tool_calls`` in the OpenAI shape; tool and
    function results: ``tool`` with ``tool_call_id``; system: ``system``; a ``ChatMessage``:
    its role when the ledger has it, else ``user``. LangChain's ``message_to_dict`` goes to
    ``metadata`` (its content only once, when it is the message's content).
    """
    data = _json(message_to_dict(message), "message")
    body: dict[str, Any] = data["data"]
    kind = str(data["type"])
    role = _ROLES.get(kind)
    if role is None:
        given = body.get("role")
        role = given if given in _LEDGER_ROLES else "user"
    fields: dict[str, Any] = {"role": role, "content": None, "name": _name(body.get("name"))}
    if role == "tool":
        fields["tool_call_id"] = _name(body.get("tool_call_id"))
        fields["tool_name"] = _name(body.get("name"))
    calls = body.get("tool_calls") or []
    if role == "assistant" and calls:
        fields["tool_calls"] = [
            {
                "id": call.get("id"),
                "type": "function",
                "function": {"name": call.get("name"), "arguments": json.dumps(call.get("args"))},
            }
            for call in calls
        ]
    content_key = None
    if _content_ok(body.get("content")):
        fields["content"] = body["content"]
        body["content"] = None  # a placeholder keeps the dict's key order
        content_key = "content"
    fields["metadata"] = {METADATA_KEY: {"message": data, "content_key": content_key}}
    return fields


def _arguments(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except json.JSONDecodeError:
        return {"arguments": text}
    return value if isinstance(value, dict) else {"arguments": value}


def transcript_to_message(message: TranscriptMessage) -> BaseMessage:
    """The LangChain message a transcript message stands for: exactly the one it was stored
    from, or, for a message written by other means, the nearest (by role)."""
    meta = (message.metadata or {}).get(METADATA_KEY)
    if isinstance(meta, dict) and isinstance(meta.get("message"), dict):
        data = copy.deepcopy(meta["message"])
        if meta.get("content_key") == "content":
            data["data"]["content"] = message.content
        return messages_from_dict([data])[0]
    content: Any = message.content if message.content is not None else ""
    if message.role == "tool":
        return ToolMessage(content=content, tool_call_id=message.tool_call_id or "")
    if message.role in ("system", "developer"):
        return SystemMessage(content=content)
    if message.role == "assistant":
        calls = [
            {
                "id": str(call.get("id", "")),
                "name": str((call.get("function") or {}).get("name", call.get("name", ""))),
                "args": _arguments((call.get("function") or {}).get("arguments")),
                "type": "tool_call",
            }
            for call in message.tool_calls or ()
        ]
        return AIMessage(content=content, tool_calls=calls)
    return HumanMessage(content=content)


class LedgerChatMessageHistory(BaseChatMessageHistory):
    """LangChain's ``BaseChatMessageHistory`` whose messages are a chat's ledger session.

    ``ledger``: a :class:`Ledger` or an :class:`AsyncLedger` (the sync methods use its
    ``ledger``, the async ones its coroutines). ``session_key`` names the chat; its active
    session is opened on the first write with ``open_options`` (as for ``open_session``;
    ``source`` defaults to ``langchain``).

    Appends are idempotent: an ``add_messages`` retried after it raised writes its messages
    once. :meth:`head` / :meth:`ahead` expose the ledger's change detection (the session's
    ``sequence`` moves on every write, by any process); ``last_result`` is this object's latest
    append, for an agent cache's ``rebaseline``.
    """

    def __init__(
        self,
        ledger: Ledger | AsyncLedger,
        session_key: str,
        *,
        source: str = "langchain",
        **open_options: Any,
    ) -> None:
        super().__init__()
        if "session_id" in open_options or "reason" in open_options:
            raise InvalidArgumentError(
                "open_options", sorted(open_options), "no session_id or reason (chosen here)"
            )
        self.sync_ledger = ledger.ledger if isinstance(ledger, AsyncLedger) else ledger
        self.async_ledger = ledger if isinstance(ledger, AsyncLedger) else None
        self.session_key = session_key
        self.open_options: dict[str, Any] = {"source": source, **open_options}
        #: The result of this object's latest append, or None.
        self.last_result: AppendResult | None = None
        self._ids = RetryIds("langchain")

    # -- reads -------------------------------------------------------------------------------

    def _read(self) -> list[BaseMessage]:
        session_id = self.sync_ledger.active_session(self.session_key)
        if session_id is None:
            return []
        return [transcript_to_message(m) for m in self.sync_ledger.transcript(session_id)]

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # a property, as documented
        """The chat's live messages, oldest first (none before the first write)."""
        return self._read()

    async def aget_messages(self) -> list[BaseMessage]:
        """:attr:`messages`, without blocking the event loop."""
        if self.async_ledger is None:
            return await asyncio.to_thread(self._read)
        session_id = await self.async_ledger.active_session(self.session_key)
        if session_id is None:
            return []
        return [transcript_to_message(m) for m in await self.async_ledger.transcript(session_id)]

    def head(self) -> SessionHead | None:
        """The current ledger session's head (``session_id``, ``sequence``, ``writer``…)."""
        session_id = self.sync_ledger.active_session(self.session_key)
        return None if session_id is None else self.sync_ledger.head(session_id)

    async def ahead(self) -> SessionHead | None:
        """:meth:`head`, without blocking the event loop."""
        if self.async_ledger is None:
            return await asyncio.to_thread(self.head)
        session_id = await self.async_ledger.active_session(self.session_key)
        return None if session_id is None else await self.async_ledger.head(session_id)

    # -- writes ------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
        return [message_to_fields(m) for m in messages]

    def _append(
        self, session_id: str, fields: list[dict[str, Any]], key: str | uuid.UUID | None
    ) -> tuple[Memo | None, list[uuid.UUID]]:
        if key is not None:
            return None, self._ids.derived(session_id, key, len(fields))
        return self._ids.take(session_id, fields)

    def add_messages(
        self, messages: Sequence[BaseMessage], *, idempotency_key: str | uuid.UUID | None = None
    ) -> None:
        """Append ``messages`` in order, in one transaction; retried after it raised, the same
        call writes nothing twice (``idempotency_key``: across processes too)."""
        if not messages:
            return
        fields = self._prepare(messages)
        session_id = self.sync_ledger.ensure_session(self.session_key, **self.open_options)
        memo, ids = self._append(session_id, fields, idempotency_key)
        try:
            self.last_result = self.sync_ledger.append_messages(session_id, fields, event_ids=ids)
        except BaseException:
            if memo is not None:
                self._ids.failed(memo, ids)
            raise

    async def aadd_messages(
        self, messages: Sequence[BaseMessage], *, idempotency_key: str | uuid.UUID | None = None
    ) -> None:
        """:meth:`add_messages`, without blocking the event loop."""
        if self.async_ledger is None:
            await asyncio.to_thread(self.add_messages, messages, idempotency_key=idempotency_key)
            return
        if not messages:
            return
        fields = self._prepare(messages)
        session_id = await self.async_ledger.ensure_session(self.session_key, **self.open_options)
        memo, ids = self._append(session_id, fields, idempotency_key)
        try:
            self.last_result = await self.async_ledger.append_messages(
                session_id, fields, event_ids=ids
            )
        except BaseException:
            if memo is not None:
                self._ids.failed(memo, ids)
            raise

    def clear(self) -> None:
        """Start the chat afresh: a new ledger session under the key (the old one is kept)."""
        self._ids.forget()
        if self.sync_ledger.active_session(self.session_key) is not None:
            self.sync_ledger.open_session(self.session_key, reason="reset", **self.open_options)

    async def aclear(self) -> None:
        """:meth:`clear`, without blocking the event loop."""
        if self.async_ledger is None:
            await asyncio.to_thread(self.clear)
            return
        self._ids.forget()
        if await self.async_ledger.active_session(self.session_key) is not None:
            await self.async_ledger.open_session(
                self.session_key, reason="reset", **self.open_options
            )
