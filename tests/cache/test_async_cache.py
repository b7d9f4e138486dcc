"""``AsyncAgentCache``: one build per key across coroutines, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from ledger import AsyncAgentCache, AsyncLedger, BuildTimeoutError, Ledger

KEY = "agent:main:telegram:dm:77"
SIG = ("model", "tools")
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def aledger(ledger: Ledger) -> AsyncIterator[AsyncLedger]:
    yield AsyncLedger(ledger, max_workers=8)


async def test_fifty_coroutines_checking_one_uncached_key_build_once(aledger: AsyncLedger) -> None:
    sid = await aledger.open_session(KEY)
    cache = aledger.cache()
    builds = 0

    async def build() -> str:
        nonlocal builds
        builds += 1
        await asyncio.sleep(0.05)
        return f"agent-{builds}"

    results = await asyncio.gather(*(cache.get_or_build(KEY, sid, SIG, build) for _ in range(50)))
    assert builds == 1
    assert {agent for agent, _ in results} == {"agent-1"}
    assert sorted(d.action for _, d in results).count("reuse") == 49


async def test_waiters_reuse_what_the_builder_stored(aledger: AsyncLedger) -> None:
    sid = await aledger.open_session(KEY)
    cache = aledger.cache()
    first = await cache.check(KEY, sid, SIG)
    assert first.action == "miss"
    waiter = asyncio.create_task(cache.check(KEY, sid, SIG))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await cache.store(KEY, sid, SIG, "A1", ticket=first.ticket)
    decision = await waiter
    assert (decision.action, decision.agent) == ("reuse", "A1")


async def test_a_failed_build_lets_the_next_waiter_build(aledger: AsyncLedger) -> None:
    sid = await aledger.open_session(KEY)
    cache = aledger.cache()
    started = asyncio.Event()

    async def failing() -> str:
        started.set()
        await asyncio.sleep(0.02)
        raise RuntimeError("provider down")

    async def working() -> str:
        return "A2"

    broken = asyncio.create_task(cache.get_or_build(KEY, sid, SIG, failing))
    await started.wait()
    second = asyncio.create_task(cache.get_or_build(KEY, sid, SIG, working))
    with pytest.raises(RuntimeError, match="provider down"):
        await broken
    agent, decision = await second
    assert (agent, decision.action) == ("A2", "miss")


async def test_a_cancelled_build_lets_the_next_waiter_build(aledger: AsyncLedger) -> None:
    sid = await aledger.open_session(KEY)
    cache = aledger.cache()
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    async def quick() -> str:
        return "A3"

    builder = asyncio.create_task(cache.get_or_build(KEY, sid, SIG, slow))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_build(KEY, sid, SIG, quick))
    await asyncio.sleep(0.02)
    builder.cancel()
    agent, _ = await asyncio.wait_for(waiter, 10)
    assert agent == "A3"


async def test_a_builder_whose_task_ends_without_storing_is_abandoned(
    aledger: AsyncLedger,
) -> None:
    """A turn that checked (miss) and then died without store/abandon does not strand waiters."""
    sid = await aledger.open_session(KEY)
    cache = aledger.cache()

    async def forgetful_turn() -> None:
        await cache.check(KEY, sid, SIG)  # a miss, then the task just ends

    await asyncio.create_task(forgetful_turn())
    decision = await asyncio.wait_for(cache.check(KEY, sid, SIG), 10)
    assert decision.action == "miss"


async def test_a_build_longer_than_the_timeout_is_a_typed_error(aledger: AsyncLedger) -> None:
    sid = await aledger.open_session(KEY)
    cache = AsyncAgentCache(aledger.ledger.cache(), build_timeout=0.1)
    first = await cache.check(KEY, sid, SIG)
    assert first.action == "miss"
    with pytest.raises(BuildTimeoutError):
        await asyncio.create_task(cache.check(KEY, sid, SIG))  # another turn's task waits
    await cache.abandon(KEY, ticket=first.ticket)


async def test_a_foreign_write_rebuilds_and_an_own_turn_rebaselines(aledger: AsyncLedger) -> None:
    sid = await aledger.open_session(KEY)
    cache = aledger.cache()
    await cache.get_or_build(KEY, sid, SIG, _const("A1"))
    result = await aledger.append_message(sid, "user", "hi")
    await cache.rebaseline(KEY, sid, result)
    assert (await cache.check(KEY, sid, SIG)).reason == "hit"
    with Ledger.open(aledger.ledger.store.engine.url.render_as_string(False)) as other:
        other.append_message(sid, "assistant", "from elsewhere")
    decision = await cache.check(KEY, sid, SIG)
    assert (decision.action, decision.reason) == ("rebuild", "foreign_write")
    await cache.abandon(KEY, ticket=decision.ticket)


def _const(value: str) -> Callable[[], Awaitable[str]]:
    async def build() -> str:
        return value

    return build
