"""``ledger.integrations.langchain.LedgerChatMessageHistory``: LangChain's chat message history
on the ledger, on both backends, driven by LangChain's own ``RunnableWithMessageHistory`` and a
fake chat model from ``langchain_core``."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

if os.environ.get("CI") == "true":
    import langchain_core
else:  # a developer without the extra installed: say so, rather than failing to import
    langchain_core = pytest.importorskip("langchain_core")

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from ledger import AsyncLedger, Ledger
from ledger.integrations.langchain import METADATA_KEY, LedgerChatMessageHistory

KEY = "slack:T1:C1"
#: langchain-core 1.x deprecates RunnableWithMessageHistory (for LangGraph) but still ships it,
#: and it is how LangChain code drives a BaseChatMessageHistory today.
LEGACY = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")


def chain_with_history(
    ledger: Ledger | AsyncLedger, replies: list[str]
) -> tuple[RunnableWithMessageHistory, list[list[BaseMessage]]]:
    """A fake chat model behind a recorder of what it was sent, with the ledger's history."""
    seen: list[list[BaseMessage]] = []

    def record(messages: list[BaseMessage]) -> list[BaseMessage]:
        seen.append(list(messages))
        return messages

    model = FakeMessagesListChatModel(responses=[AIMessage(content=r) for r in replies])
    chain = RunnableWithMessageHistory(
        RunnableLambda(record) | model,
        lambda session_id: LedgerChatMessageHistory(ledger, session_id),
    )
    return chain, seen


CONFIG: Any = {"configurable": {"session_id": KEY}}


@LEGACY
@pytest.mark.asyncio
async def test_runnable_with_history_loads_the_first_turn_from_the_ledger(
    aledger: AsyncLedger,
) -> None:
    """Two ``ainvoke`` turns: the model's second input is the first turn, read back from the
    ledger, then the new message; the history holds all four, equal to what was exchanged."""
    chain, seen = chain_with_history(aledger, ["San Francisco", "California"])
    first = await chain.ainvoke([HumanMessage("Where is the Golden Gate Bridge?")], CONFIG)
    assert first.content == "San Francisco"
    second = await chain.ainvoke([HumanMessage("Which state?")], CONFIG)
    assert second.content == "California"

    assert seen[1] == [
        HumanMessage("Where is the Golden Gate Bridge?"),
        first,
        HumanMessage("Which state?"),
    ]
    history = await LedgerChatMessageHistory(aledger, KEY).aget_messages()
    assert history == [*seen[1], second]
    transcript = await aledger.transcript(await aledger.ensure_session(KEY))
    assert [(m.role, m.content) for m in transcript] == [
        ("user", "Where is the Golden Gate Bridge?"),
        ("assistant", "San Francisco"),
        ("user", "Which state?"),
        ("assistant", "California"),
    ]


@LEGACY
def test_the_sync_path_on_a_sync_ledger(ledger: Ledger) -> None:
    """``invoke`` uses ``messages`` and ``add_messages``, on a plain :class:`Ledger`."""
    chain, seen = chain_with_history(ledger, ["Hello!", "You said hi."])
    first = chain.invoke([HumanMessage("hi")], CONFIG)
    chain.invoke([HumanMessage("what did I say?")], CONFIG)
    assert seen[1] == [HumanMessage("hi"), first, HumanMessage("what did I say?")]
    assert len(LedgerChatMessageHistory(ledger, KEY).messages) == 4


EVERY_KIND: list[BaseMessage] = [
    SystemMessage("You are terse.", id="sys-1"),
    HumanMessage(
        content=[
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
        ],
        id="h-1",
        additional_kwargs={"client": "web"},
    ),
    HumanMessage(content=["plain string part", {"type": "text", "text": "and a dict part"}]),
    AIMessage(
        content="",
        tool_calls=[
            {"name": "describe", "args": {"detail": "high"}, "id": "call_1", "type": "tool_call"},
            {"name": "lookup", "args": {"q": "cats", "n": 2}, "id": "call_2", "type": "tool_call"},
        ],
        usage_metadata={"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
        response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
        id="ai-1",
    ),
    ToolMessage("a cat", tool_call_id="call_1", name="describe", artifact={"raw": [1, 2]}),
    ToolMessage("error: no network", tool_call_id="call_2", status="error"),
    AIMessage("It is a cat.", name="assistant-bot"),
    ChatMessage(content="Looks right.", role="critic"),
    ChatMessage(content="Noted.", role="developer"),
    FunctionMessage(content='{"ok": true}', name="legacy_fn"),
    AIMessage(""),  # an empty reply: no content for the ledger, kept in the metadata
]


@pytest.mark.asyncio
async def test_every_message_type_round_trips_exactly(aledger: AsyncLedger) -> None:
    """Human, AI with tool calls and usage, tool results, system, chat and function messages,
    content parts and empty content: each comes back equal, in order."""
    history = LedgerChatMessageHistory(aledger, KEY)
    await history.aadd_messages(EVERY_KIND)
    assert await history.aget_messages() == EVERY_KIND
    assert history.messages == EVERY_KIND

    transcript = await aledger.transcript(await aledger.ensure_session(KEY))
    assert [m.role for m in transcript] == [
        "system",
        "user",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
        "developer",
        "tool",
        "assistant",
    ]
    assert transcript[3].tool_calls == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "describe", "arguments": '{"detail": "high"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"q": "cats", "n": 2}'},
        },
    ]
    assert (transcript[4].tool_call_id, transcript[4].tool_name) == ("call_1", "describe")
    assert all(METADATA_KEY in (m.metadata or {}) for m in transcript)


@pytest.mark.asyncio
async def test_messages_written_by_other_means_read_by_role(aledger: AsyncLedger) -> None:
    """A gateway's own messages (no LangChain dict in their metadata) read as the nearest."""
    session_id = await aledger.ensure_session(KEY)
    await aledger.append_message(session_id, "system", "Be kind.")
    await aledger.append_message(session_id, "user", "6 x 7?")
    call = {"id": "call_9", "type": "function", "function": {"name": "mul", "arguments": "[6]"}}
    await aledger.append_message(session_id, "assistant", None, tool_calls=[call])
    await aledger.append_message(session_id, "tool", "42", tool_call_id="call_9")
    assert await LedgerChatMessageHistory(aledger, KEY).aget_messages() == [
        SystemMessage("Be kind."),
        HumanMessage("6 x 7?"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "mul", "args": {"arguments": [6]}, "id": "call_9", "type": "tool_call"}
            ],
        ),
        ToolMessage("42", tool_call_id="call_9"),
    ]


@pytest.mark.asyncio
async def test_clear_opens_a_new_session_and_keeps_the_old(aledger: AsyncLedger) -> None:
    """``aclear``/``clear`` empty the history by opening a new session under the key; the old
    one keeps its messages."""
    history = LedgerChatMessageHistory(aledger, KEY)
    await history.aclear()  # nothing to clear: no session is opened
    assert await aledger.sessions(session_key=KEY) == []
    await history.aadd_messages([HumanMessage("hi"), AIMessage("hello")])
    old = await aledger.active_session(KEY)
    await history.aclear()
    assert await history.aget_messages() == []
    history.add_messages([HumanMessage("again")])
    history.clear()
    assert history.messages == []
    assert old is not None
    assert [m.content for m in await aledger.transcript(old)] == ["hi", "hello"]
    assert len(await aledger.sessions(session_key=KEY)) == 3


@pytest.mark.asyncio
async def test_async_methods_on_a_sync_ledger_run_off_the_loop(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a plain :class:`Ledger`, ``aadd_messages`` and ``aget_messages`` do their database
    work in a worker thread, never on the event loop's."""
    threads: list[threading.Thread] = []
    real = ledger.append_messages

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "append_messages", spy)
    history = LedgerChatMessageHistory(ledger, KEY)
    await history.aadd_messages([HumanMessage("hi")])
    assert threads
    assert threading.current_thread() not in threads
    assert await history.aget_messages() == [HumanMessage("hi")]
    head = await history.ahead()
    assert head is not None
    assert history.last_result is not None
    assert head.sequence == history.last_result.sequence


@pytest.mark.asyncio
async def test_a_retried_add_messages_writes_once(
    aledger: AsyncLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append that committed but raised, retried, stores its messages once; the same
    messages after a success are new ones."""
    calls = 0
    real = aledger.append_messages

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = await real(*args, **kwargs)
        if calls == 1:
            raise ConnectionError("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(aledger, "append_messages", flaky)
    history = LedgerChatMessageHistory(aledger, KEY)
    turn = [HumanMessage("yes"), AIMessage("Done.")]
    with pytest.raises(ConnectionError):
        await history.aadd_messages(turn)
    await history.aadd_messages(turn)
    assert history.last_result is not None
    assert history.last_result.duplicate
    assert await history.aget_messages() == turn
    await history.aadd_messages(turn)
    assert await history.aget_messages() == turn + turn


def test_it_is_a_chat_message_history(ledger: Ledger) -> None:
    """It is LangChain's base class, so anything that takes a history takes it."""
    assert isinstance(LedgerChatMessageHistory(ledger, KEY), BaseChatMessageHistory)
