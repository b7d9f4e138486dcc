"""``ledger.integrations.agents.LedgerSession``: the OpenAI Agents SDK's ``Session`` on the
ledger, on both backends.

The SDK's package ships no tests of its own, so the behaviour its ``SQLiteSession`` tests pin
down is reproduced here (order, ``limit``, ``pop_item``, ``clear_session``, settings), with
``Runner.run`` driving a fake ``Model`` (canned responses, no network) as the SDK's tests do.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

if os.environ.get("CI") == "true":
    import agents
else:  # a developer without the extra installed: say so, rather than failing to import
    agents = pytest.importorskip("agents")

from agents import Agent, ModelResponse, RunConfig, Runner, Usage, function_tool
from agents.memory import Session, SessionSettings
from agents.models.interface import Model, ModelTracing
from agents.testing import ScriptedModel, assistant_message
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from ledger import AsyncLedger, platform_event_id
from ledger.config import Settings
from ledger.integrations.agents import METADATA_KEY, LedgerSession

KEY = "telegram:bot1:chat42"
NO_TRACING = RunConfig(tracing_disabled=True)


class FakeModel(Model):
    """A ``Model`` that answers with canned outputs, one list per call, and records its input."""

    def __init__(self) -> None:
        self.outputs: list[list[Any]] = []
        self.inputs: list[list[Any]] = []

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        self.inputs.append([input] if isinstance(input, str) else list(input))
        return ModelResponse(output=self.outputs.pop(0), usage=Usage(), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the tests run the model without streaming")
        yield  # an async generator, as the interface declares


def text(words: str, item_id: str = "msg_1") -> ResponseOutputMessage:
    """An assistant message as the Responses API returns it."""
    return ResponseOutputMessage(
        id=item_id,
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=words, annotations=[])],
    )


def user(words: str) -> dict[str, Any]:
    return {"role": "user", "content": words}


@function_tool
def city_population(city: str) -> str:
    """The population of a city."""
    return f"{city}: 808,988"


def contents(items: list[Any]) -> list[Any]:
    return [item.get("content") for item in items]


# -- the SDK's runner ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_runner_loads_the_first_turn_from_the_ledger(aledger: AsyncLedger) -> None:
    """Two ``Runner.run`` turns: the second sends the model the first turn's items, read back
    from the ledger (a new ``LedgerSession`` object, as another process would have)."""
    model = FakeModel()
    agent = Agent(name="assistant", model=model)
    model.outputs.append([text("San Francisco", "msg_a")])
    first = await Runner.run(
        agent,
        "What city is the Golden Gate Bridge in?",
        session=LedgerSession(aledger, KEY),
        run_config=NO_TRACING,
    )
    assert first.final_output == "San Francisco"

    model.outputs.append([text("California", "msg_b")])
    second = await Runner.run(
        agent, "What state is it in?", session=LedgerSession(aledger, KEY), run_config=NO_TRACING
    )
    assert second.final_output == "California"

    turn_one = first.to_input_list()
    assert model.inputs[1] == [*turn_one, user("What state is it in?")]
    assert model.inputs[1][1]["type"] == "message"
    assert model.inputs[1][1]["id"] == "msg_a"
    session = LedgerSession(aledger, KEY)
    assert await session.get_items() == second.to_input_list()
    # The ledger's own transcript is the chat, readable by everything else.
    transcript = await aledger.transcript(await aledger.ensure_session(KEY))
    assert [m.role for m in transcript] == ["user", "assistant", "user", "assistant"]
    assert transcript[1].content == turn_one[1]["content"]


async def run(method: str, agent: Agent[Any], text: str, session: LedgerSession) -> Any:
    """One turn through ``Runner.run``, ``run_sync`` (in a thread with its own event loop) or
    ``run_streamed`` (its events consumed)."""
    if method == "run":
        return await Runner.run(agent, text, session=session, run_config=NO_TRACING)
    if method == "run_sync":
        return await asyncio.to_thread(
            Runner.run_sync, agent, text, session=session, run_config=NO_TRACING
        )
    streamed = Runner.run_streamed(agent, text, session=session, run_config=NO_TRACING)
    async for _ in streamed.stream_events():
        pass
    return streamed


@pytest.mark.parametrize("method", ["run", "run_sync", "run_streamed"])
@pytest.mark.asyncio
async def test_every_runner_method_keeps_the_history(aledger: AsyncLedger, method: str) -> None:
    """With the SDK's own scripted model (``agents.testing``), each way of running a turn
    saves it to the ledger and sends it back on the next."""
    model = ScriptedModel(
        [
            [assistant_message("Hello", item_id="msg_1")],
            [assistant_message("I remember you said hi", item_id="msg_2")],
        ]
    )
    agent = Agent(name="assistant", model=model)
    first = await run(method, agent, "Hi there", LedgerSession(aledger, KEY))
    second = await run(method, agent, "Do you remember?", LedgerSession(aledger, KEY))
    assert second.final_output == "I remember you said hi"
    assert model.calls[1].input == [*first.to_input_list(), user("Do you remember?")]
    assert await LedgerSession(aledger, KEY).get_items() == second.to_input_list()


@pytest.mark.asyncio
async def test_a_tool_calling_turn_round_trips_through_the_runner(aledger: AsyncLedger) -> None:
    """A function call, its output and the answer are stored and sent back exactly."""
    model = FakeModel()
    agent = Agent(name="assistant", model=model, tools=[city_population])
    call = ResponseFunctionToolCall(
        type="function_call",
        id="fc_1",
        call_id="call_1",
        name="city_population",
        arguments='{"city": "San Francisco"}',
        status="completed",
    )
    model.outputs += [[call], [text("About 809 thousand.", "msg_c")]]
    session = LedgerSession(aledger, KEY)
    first = await Runner.run(agent, "How many people?", session=session, run_config=NO_TRACING)
    assert first.final_output == "About 809 thousand."

    model.outputs.append([text("You're welcome.", "msg_d")])
    await Runner.run(agent, "Thanks", session=session, run_config=NO_TRACING)
    sent = model.inputs[2]
    assert sent == [*first.to_input_list(), user("Thanks")]
    kinds = [item.get("type") for item in sent]
    assert kinds == [None, "function_call", "function_call_output", "message", None]
    assert sent[2]["output"] == "San Francisco: 808,988"
    # In the ledger: the call is an assistant tool call, its output a tool result, paired.
    rendered = await aledger.transcript_as_messages(await aledger.ensure_session(KEY))
    assert isinstance(rendered, list)
    assert rendered[1]["tool_calls"][0]["id"] == "call_1"
    assert rendered[2] == {
        "role": "tool",
        "content": "San Francisco: 808,988",
        "tool_call_id": "call_1",
    }


@pytest.mark.asyncio
async def test_run_config_session_settings_limit_the_history(aledger: AsyncLedger) -> None:
    """``RunConfig(session_settings=...)`` overrides the session's limit: the latest 2 only."""
    session = LedgerSession(aledger, KEY, session_settings=SessionSettings(limit=100))
    await session.add_items([user(f"Turn {i}") for i in range(10)])
    model = FakeModel()
    model.outputs.append([text("Got it")])
    await Runner.run(
        Agent(name="assistant", model=model),
        "New question",
        session=session,
        run_config=RunConfig(tracing_disabled=True, session_settings=SessionSettings(limit=2)),
    )
    assert model.inputs[0] == [user("Turn 8"), user("Turn 9"), user("New question")]


# -- the Session protocol, as SQLiteSession behaves ----------------------------------------


@pytest.mark.asyncio
async def test_it_is_a_session(aledger: AsyncLedger) -> None:
    """The SDK's runtime protocol check accepts it; ``session_id`` is the chat's key."""
    session = LedgerSession(aledger, KEY)
    assert isinstance(session, Session)
    assert session.session_id == KEY
    assert session.session_settings == SessionSettings()


@pytest.mark.asyncio
async def test_items_come_back_in_order_and_limit_is_the_latest_n(aledger: AsyncLedger) -> None:
    """Several ``add_items`` keep their order; ``limit`` = the latest N, oldest first."""
    session = LedgerSession(aledger, KEY)
    assert await session.get_items() == []
    words = ["Message 1", "Response 1", "Message 2", "Response 2", "Message 3", "Response 3"]
    items = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": w} for i, w in enumerate(words)
    ]
    await session.add_items(items[:4])
    await session.add_items(items[4:])
    assert await session.get_items() == items
    assert contents(await session.get_items(limit=2)) == ["Message 3", "Response 3"]
    assert contents(await session.get_items(limit=4)) == words[2:]
    assert await session.get_items(limit=10) == items
    assert await session.get_items(limit=0) == []
    assert await session.get_items(limit=-1) == items  # SQLiteSession: a negative LIMIT is all
    await session.add_items([])  # nothing to add: nothing written
    assert len(await session.get_items()) == 6


@pytest.mark.asyncio
async def test_session_settings_limit_is_the_default(aledger: AsyncLedger) -> None:
    """``session_settings.limit`` applies when ``get_items`` is given none; an explicit limit
    wins."""
    session = LedgerSession(aledger, KEY, session_settings=SessionSettings(limit=3))
    await session.add_items([user(f"Message {i}") for i in range(10)])
    assert contents(await session.get_items()) == ["Message 7", "Message 8", "Message 9"]
    assert contents(await session.get_items(limit=2)) == ["Message 8", "Message 9"]


@pytest.mark.asyncio
async def test_pop_item_returns_the_latest_and_retracts_it(aledger: AsyncLedger) -> None:
    """Pop returns the latest item and removes it from the history; the log keeps it as a
    retraction (``include_retracted``); an empty session pops None."""
    session = LedgerSession(aledger, KEY)
    assert await session.pop_item() is None
    items = [user("Hello"), {"role": "assistant", "content": "Hi there!"}, user("How are you?")]
    await session.add_items(items)
    assert await session.pop_item() == items[2]
    assert await session.get_items() == items[:2]
    assert await session.pop_item() == items[1]
    assert await session.pop_item() == items[0]
    assert await session.pop_item() is None
    assert await session.get_items() == []

    session_id = await session.ledger_session_id()
    assert session_id is not None
    kept = await aledger.transcript(session_id, include_retracted=True)
    assert [(m.content, m.retracted) for m in kept] == [
        ("Hello", True),
        ("Hi there!", True),
        ("How are you?", True),
    ]


@pytest.mark.asyncio
async def test_pop_item_touches_only_its_own_chat(aledger: AsyncLedger) -> None:
    """Two keys are two histories: popping one leaves the other."""
    one, two = LedgerSession(aledger, "chat:1"), LedgerSession(aledger, "chat:2")
    await one.add_items([user("Session 1 message")])
    await two.add_items([user("Session 2 message 1"), user("Session 2 message 2")])
    assert await two.pop_item() == user("Session 2 message 2")
    assert await one.get_items() == [user("Session 1 message")]
    assert await two.get_items() == [user("Session 2 message 1")]


@pytest.mark.asyncio
async def test_clear_session_is_a_new_session_and_keeps_the_old(aledger: AsyncLedger) -> None:
    """``clear_session`` empties the history by opening a new session under the key; the old
    one keeps its messages and stays in the key's history."""
    session = LedgerSession(aledger, KEY)
    await session.clear_session()  # nothing to clear: no session is opened
    assert await aledger.sessions(session_key=KEY) == []

    await session.add_items([user("Hello"), {"role": "assistant", "content": "Hi there!"}])
    old = await session.ledger_session_id()
    await session.clear_session()
    assert await session.get_items() == []
    new = await session.ledger_session_id()
    assert new is not None
    assert new != old
    assert session.session_id == KEY

    assert old is not None
    assert [m.content for m in await aledger.transcript(old)] == ["Hello", "Hi there!"]
    assert {h.session_id for h in await aledger.sessions(session_key=KEY)} == {old, new}
    await session.add_items([user("Fresh start")])
    assert await session.get_items() == [user("Fresh start")]


@pytest.mark.asyncio
async def test_unicode_and_sql_look_alikes_are_kept(aledger: AsyncLedger) -> None:
    """Non-ASCII text and text that looks like SQL come back as given."""
    session = LedgerSession(aledger, KEY)
    items = [
        user("こんにちは"),
        {"role": "assistant", "content": "😊👍"},
        user("O'Reilly"),
        {"role": "assistant", "content": "Robert'); DROP TABLE students;--"},
        user('"SELECT * FROM users WHERE name = "admin";"'),
    ]
    await session.add_items(items)
    assert await session.get_items() == items


# -- what the ledger adds: exact items, idempotency, change detection ----------------------

EVERY_KIND: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "developer", "content": [{"type": "input_text", "text": "Use metric units."}]},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is in this picture?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "auto"},
        ],
    },
    {"role": "user", "content": ""},  # empty text: no content for the ledger, kept in the item
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "The user wants a caption."}],
        "encrypted_content": "gAAAAB...",
    },
    {"type": "reasoning", "id": "rs_2", "summary": []},
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "describe",
        "arguments": '{"detail": "high"}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "a cat on a sofa"},
    {
        "type": "function_call_output",
        "call_id": "call_2",
        "output": [
            {"type": "input_text", "text": "two parts"},
            {"type": "input_text", "text": "!"},
        ],
    },
    {"type": "function_call_output", "call_id": "call_3", "output": ""},
    {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {"type": "search", "query": "cats"},
    },
    {
        "type": "computer_call_output",
        "call_id": "cc_1",
        "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AA"},
    },
    {"type": "item_reference", "id": "msg_0"},
    {"type": "made_up_by_a_future_sdk", "payload": [1, 2.5, None, True, {"nested": "ok"}]},
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [
            {
                "type": "output_text",
                "text": "A cat.",
                "annotations": [{"type": "url_citation", "url": "https://x", "title": "x"}],
            }
        ],
    },
]


@pytest.mark.asyncio
async def test_every_item_type_round_trips_exactly(aledger: AsyncLedger) -> None:
    """Messages with content parts, reasoning, calls and their outputs, hosted tool calls, a
    reference and a type the ledger has never heard of: each comes back equal, in order, and
    each pops back equal."""
    session = LedgerSession(aledger, KEY)
    await session.add_items(EVERY_KIND)
    assert await session.get_items() == EVERY_KIND
    assert await LedgerSession(aledger, KEY).get_items(limit=3) == EVERY_KIND[-3:]

    session_id = await session.ledger_session_id()
    assert session_id is not None
    transcript = await aledger.transcript(session_id)
    assert [m.role for m in transcript] == [
        "system",
        "developer",
        "user",
        "user",
        "assistant",
        "assistant",
        "assistant",
        "tool",
        "tool",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "assistant",
        "assistant",
    ]
    assert transcript[2].content == EVERY_KIND[2]["content"]  # the parts, searchable
    assert transcript[4].reasoning == "The user wants a caption."
    assert transcript[6].tool_calls == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "describe", "arguments": '{"detail": "high"}'},
        }
    ]
    assert transcript[7].tool_call_id == "call_1"
    assert all(METADATA_KEY in (m.metadata or {}) for m in transcript)

    for expected in reversed(EVERY_KIND):
        assert await session.pop_item() == expected
    assert await session.get_items() == []


@pytest.mark.asyncio
async def test_messages_written_by_other_means_read_as_items(aledger: AsyncLedger) -> None:
    """A gateway's own messages (no item in their metadata) read as the nearest items."""
    session_id = await aledger.ensure_session(KEY)
    await aledger.append_message(session_id, "user", "What's 6 x 7?")
    call = {"id": "call_9", "type": "function", "function": {"name": "mul", "arguments": "[6,7]"}}
    await aledger.append_message(session_id, "assistant", "Let me compute.", tool_calls=[call])
    await aledger.append_message(session_id, "tool", "42", tool_call_id="call_9")
    assert await LedgerSession(aledger, KEY).get_items() == [
        {"role": "user", "content": "What's 6 x 7?"},
        {"role": "assistant", "content": "Let me compute."},
        {"type": "function_call", "call_id": "call_9", "name": "mul", "arguments": "[6,7]"},
        {"type": "function_call_output", "call_id": "call_9", "output": "42"},
    ]


class Flaky:
    """Wraps ``append_messages``: the first call commits, then raises as a lost connection
    would (the caller cannot tell whether it was written)."""

    def __init__(self, ledger: AsyncLedger) -> None:
        self.real = ledger.append_messages
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        result = await self.real(*args, **kwargs)
        if self.calls == 1:
            raise ConnectionError("server closed the connection unexpectedly")
        return result


@pytest.mark.asyncio
async def test_a_retried_add_items_writes_once(
    aledger: AsyncLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``add_items`` that committed but raised, retried, stores its items once; the same
    items added again after a success are new items (a user may say "yes" twice)."""
    session = LedgerSession(aledger, KEY)
    flaky = Flaky(aledger)
    monkeypatch.setattr(aledger, "append_messages", flaky)
    turn = [user("yes"), {"role": "assistant", "content": "Done."}]
    with pytest.raises(ConnectionError):
        await session.add_items(turn)
    await session.add_items(turn)
    assert session.last_result is not None
    assert session.last_result.duplicate
    assert await session.get_items() == turn

    await session.add_items(turn)
    assert await session.get_items() == turn + turn


@pytest.mark.asyncio
async def test_an_idempotency_key_holds_across_processes(aledger: AsyncLedger) -> None:
    """With ``idempotency_key`` (a platform update's id), a retry by ANOTHER session object, as
    after a crash, is recognised too."""
    update = platform_event_id("telegram", 1001, scope="bot1")
    turn = [user("hello")]
    await LedgerSession(aledger, KEY).add_items(turn, idempotency_key=update)
    again = LedgerSession(aledger, KEY)
    await again.add_items(turn, idempotency_key=update)
    assert again.last_result is not None
    assert again.last_result.duplicate
    assert await again.get_items() == turn


@pytest.mark.asyncio
async def test_head_detects_another_processes_write(
    aledger: AsyncLedger, migrated_url: str, settings: Settings
) -> None:
    """``head()`` is the ledger's change detection: this gateway's own append keeps an agent
    cache's entry (``own_write``); another writer's moves the sequence and the cache checked
    with the session's key and id rebuilds."""
    session = LedgerSession(aledger, KEY)
    assert await session.head() is None
    await session.add_items([user("hello")])
    head = await session.head()
    assert head is not None
    assert head.session_id == await session.ledger_session_id()
    assert session.last_result is not None
    assert head.sequence == session.last_result.sequence

    cache = aledger.cache()
    decision = await cache.check(KEY, head.session_id, "sig")
    await cache.store(KEY, head.session_id, "sig", "agent", ticket=decision.ticket)
    assert (await cache.check(KEY, head.session_id, "sig")).reason == "hit"
    await session.add_items([{"role": "assistant", "content": "hi"}])  # this gateway's turn
    assert (await cache.check(KEY, head.session_id, "sig")).reason == "own_write"
    head = await session.head()
    assert head is not None

    other = await AsyncLedger.open(migrated_url, writer="gateway-2", settings=settings)
    try:
        await LedgerSession(other, KEY).add_items([user("from elsewhere")])
    finally:
        await other.close()
    moved = await session.head()
    assert moved is not None
    assert moved.sequence > head.sequence
    assert moved.writer == "gateway-2"
    assert (await cache.check(KEY, head.session_id, "sig")).reason == "foreign_write"
    await cache.flush()
