"""An OpenAI Agents SDK ``Session`` on the ledger (optional extra: ``session-ledger[agents]``).

::

    from agents import Agent, Runner
    from ledger import AsyncLedger
    from ledger.integrations.agents import LedgerSession

    ledger = await AsyncLedger.open("postgresql://...")
    session = LedgerSession(ledger, "telegram:bot1:chat42")   # one per chat (session_key)
    result = await Runner.run(agent, "hello", session=session)

The key's active ledger session holds the history (``AsyncLedger.ensure_session``: every
process gets the same one). What maps to what:

====================  =====================================================================
Session               ledger
====================  =====================================================================
``get_items(limit)``  the live transcript as Responses-API items; ``limit``: the latest N,
                      in chronological order (``0``: none, negative: all, as SQLiteSession)
``add_items(items)``  ``append_messages``: one message per item, in order, in one transaction
``pop_item()``        ``retract_messages(count=1)``: a retraction, kept in the log (see
                      ``transcript(..., include_retracted=True)``)
``clear_session()``   ``open_session(key, reason="reset")``: a ``/new``; the old session and
                      its messages stay in the log and the key's history
====================  =====================================================================

Each item is stored as a chat message the rest of the ledger understands (role, text or content
parts, tool calls and results, reasoning), with the item itself in the message's ``metadata``,
so ``get_items`` gives back items equal to those added, whatever their type. Messages written
by other means (a gateway's ``append_message``, an import) are read as the nearest items.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from typing import Any, cast

from agents.items import TResponseInputItem
from agents.memory import SessionSettings

from ledger.aio import AsyncLedger
from ledger.errors import InvalidArgumentError
from ledger.events import MessagesRetracted
from ledger.integrations import RetryIds
from ledger.records import AppendResult
from ledger.streams import session_stream
from ledger.views import SessionHead, TranscriptMessage

__all__ = ["METADATA_KEY", "LedgerSession", "item_to_message", "message_to_items"]

#: The key of a message's ``metadata`` that holds the item it was stored from.
METADATA_KEY = "openai_agents"

_ROLES = frozenset(("user", "assistant", "system", "developer"))
#: The width of the ledger's name columns (tool names, call ids).
_NAME_MAX = 255


def _text_ok(text: Any) -> bool:
    return isinstance(text, str) and bool(text.strip()) and "\x00" not in text


def _content_ok(content: Any) -> bool:
    """Whether ``content`` can be a message's content as it is (else the item keeps it)."""
    if isinstance(content, list):
        return bool(content) and all(
            isinstance(part, dict) and "\x00" not in str(part.get("text", "")) for part in content
        )
    return _text_ok(content)


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _NAME_MAX else None


def item_to_message(item: Mapping[str, Any]) -> dict[str, Any]:
    """The message fields (for ``append_messages``) that store one Responses-API ``item``.

    The role: the item's own for messages; ``assistant`` for a ``function_call`` (as a
    ``tool_calls`` entry), a ``reasoning`` item (its summary as ``reasoning``) and other calls;
    ``tool`` for a ``function_call_output`` (its output as content) and other ``*_output``
    items. The item goes to ``metadata`` (its content, when it is the message's content, only
    once), so nothing of it is lost.
    """
    stored = dict(item)
    kind = item.get("type")
    role = item.get("role")
    fields: dict[str, Any] = {"content": None}
    moved: str | None = None
    if role in _ROLES and kind in (None, "message"):
        fields["role"] = role
        moved = "content"
    elif kind == "function_call":
        fields["role"] = "assistant"
        fields["tool_calls"] = [
            {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments")},
            }
        ]
        fields["tool_name"] = _name(item.get("name"))
    elif kind == "function_call_output":
        fields["role"] = "tool"
        fields["tool_call_id"] = _name(item.get("call_id"))
        moved = "output"
    elif kind == "reasoning":
        fields["role"] = "assistant"
        summary = item.get("summary")
        texts = [p.get("text") for p in summary if isinstance(p, dict)] if summary else []
        reasoning = "\n".join(t for t in texts if isinstance(t, str))
        fields["reasoning"] = reasoning if _text_ok(reasoning) else None
    else:
        fields["role"] = "tool" if str(kind).endswith("_output") else "assistant"
        fields["tool_call_id"] = _name(item.get("call_id"))
    if moved is not None and _content_ok(item.get(moved)):
        fields["content"] = item[moved]
        stored[moved] = None  # a placeholder keeps the item's key order
    else:
        moved = None
    fields["metadata"] = {METADATA_KEY: {"item": stored, "content_key": moved}}
    return fields


def _foreign_items(message: TranscriptMessage) -> list[dict[str, Any]]:
    """The items nearest to a message that no ``LedgerSession`` wrote."""
    content: Any = message.content if message.content is not None else ""
    if message.role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": message.tool_call_id or "",
                "output": content,
            }
        ]
    role = message.role if message.role in _ROLES else "user"
    items: list[dict[str, Any]] = []
    if message.content is not None or not message.tool_calls:
        items.append({"role": role, "content": content})
    for call in message.tool_calls or ():
        function = call.get("function") or {}
        arguments = function.get("arguments", call.get("arguments", ""))
        items.append(
            {
                "type": "function_call",
                "call_id": str(call.get("id", "")),
                "name": str(function.get("name", call.get("name", ""))),
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            }
        )
    return items


def message_to_items(message: TranscriptMessage) -> list[dict[str, Any]]:
    """The item(s) a transcript message stands for: exactly the item it was stored from, or,
    for a message written by other means, the nearest items (an assistant message with tool
    calls is its text and one ``function_call`` per call)."""
    meta = (message.metadata or {}).get(METADATA_KEY)
    if isinstance(meta, dict) and isinstance(meta.get("item"), dict):
        item = dict(meta["item"])
        key = meta.get("content_key")
        if isinstance(key, str):
            item[key] = message.content
        return [item]
    return _foreign_items(message)


class LedgerSession:
    """An OpenAI Agents SDK ``Session`` whose history is a chat's ledger session.

    ``session_key`` names the chat; the key's active session holds the items, opened on the
    first write (``open_options``, e.g. ``user_id``, ``model``, ``system_prompt``, as for
    :meth:`AsyncLedger.open_session`; ``source`` defaults to ``openai-agents``).
    ``session_id`` is the key: it stays the same across :meth:`clear_session`, which opens a new
    ledger session (see :meth:`ledger_session_id` for the current one).

    Appends are idempotent: an ``add_items`` retried after it raised writes its items once
    (its event ids are reused), and ``idempotency_key`` makes that hold across processes.
    :meth:`head` is the ledger's change detection: its ``sequence`` moves on every write by any
    process, and ``last_result`` is this object's latest write, for an agent cache's
    ``rebaseline``.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(
        self,
        ledger: AsyncLedger,
        session_key: str,
        *,
        session_settings: SessionSettings | None = None,
        source: str = "openai-agents",
        **open_options: Any,
    ) -> None:
        if "session_id" in open_options or "reason" in open_options:
            raise InvalidArgumentError(
                "open_options", sorted(open_options), "no session_id or reason (chosen here)"
            )
        self.ledger = ledger
        self.session_key = session_key
        self.session_id = session_key
        self.session_settings = session_settings or SessionSettings()
        self.open_options: dict[str, Any] = {"source": source, **open_options}
        #: The result of this object's latest write (an append, a retraction), or None.
        self.last_result: AppendResult | None = None
        self._ids = RetryIds("openai-agents")

    async def ledger_session_id(self) -> str | None:
        """The ledger session holding the history now (None before the first write)."""
        return await self.ledger.active_session(self.session_key)

    async def head(self) -> SessionHead | None:
        """The current ledger session's head: ``session_id``, ``sequence`` (moves on every
        write, by any process), ``writer`` of the latest event… None before the first write."""
        session_id = await self.ledger_session_id()
        return None if session_id is None else await self.ledger.head(session_id)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history as items, oldest first; ``limit`` (else ``session_settings.limit``):
        the latest ``limit`` items, in chronological order."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        if limit == 0:
            return []
        session_id = await self.ledger_session_id()
        if session_id is None:
            return []
        items = [i for m in await self.ledger.transcript(session_id) for i in message_to_items(m)]
        if limit is not None and limit > 0:
            items = items[-limit:]
        return cast(list[TResponseInputItem], items)

    async def add_items(
        self, items: list[TResponseInputItem], *, idempotency_key: str | uuid.UUID | None = None
    ) -> None:
        """Append ``items`` in order, in one transaction (nothing is written if one is refused).

        Retried after it raised, the same call writes nothing twice. ``idempotency_key`` (e.g.
        ``ledger.platform_event_id(...)`` of the update that started the turn) derives the
        items' ids from the key, so a retry from another process is recognised as well.
        """
        if not items:
            return
        # Stored as SQLiteSession stores them: their JSON, so what comes back compares equal.
        batch = json.loads(json.dumps(copy.deepcopy(list(items))))
        messages = [item_to_message(item) for item in batch]
        session_id = await self.ledger.ensure_session(self.session_key, **self.open_options)
        if idempotency_key is not None:
            memo, ids = None, self._ids.derived(session_id, idempotency_key, len(batch))
        else:
            memo, ids = self._ids.take(session_id, batch)
        try:
            self.last_result = await self.ledger.append_messages(
                session_id, messages, event_ids=ids
            )
        except BaseException:
            if memo is not None:
                self._ids.failed(memo, ids)
            raise

    async def pop_item(self) -> TResponseInputItem | None:
        """Retract the latest item and return it; None if there is none.

        The retraction is an event: the item leaves the live history but stays in the log.
        """
        session_id = await self.ledger_session_id()
        if session_id is None:
            return None
        try:
            result = await self.ledger.retract_messages(session_id, 1, reason="undo")
        except InvalidArgumentError:
            return None  # no live message to take back
        self._ids.forget()
        self.last_result = result
        records = await self.ledger.read_stream(session_stream(session_id), result.sequence)
        event = records[0].event
        if not isinstance(event, MessagesRetracted):  # pragma: no cover - the ledger's contract
            raise TypeError(f"expected the retraction at {result.sequence}, got {event!r}")
        retracted = event.message_ids[-1]
        every = await self.ledger.transcript(session_id, include_retracted=True)
        message = next(m for m in reversed(every) if m.message_id == retracted)
        return cast(TResponseInputItem, message_to_items(message)[-1])

    async def clear_session(self) -> None:
        """Start the chat afresh: a new ledger session under the key (a ``/new``).

        The old session keeps its messages, in the log and in the key's history.
        """
        self._ids.forget()
        if await self.ledger_session_id() is None:
            return
        await self.ledger.open_session(self.session_key, reason="reset", **self.open_options)
