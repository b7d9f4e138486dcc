"""The agent cache for asyncio gateways: one build per key across coroutines, never blocking.

:class:`AsyncAgentCache` wraps an :class:`~ledger.cache.AgentCache` (the same decision table,
entries and baselines, so threads and coroutines share one cache) and runs its database reads
on a worker thread, off the event loop. What the synchronous cache does with a thread's
identity, this one does per key with an :class:`asyncio.Future`:

* the first coroutine whose check misses (or must rebuild) becomes the key's builder; others
  checking that key meanwhile await the build and then reuse the agent it stored;
* the builder ends the build with :meth:`AsyncAgentCache.store` or :meth:`abandon` (the
  decision's ``ticket`` says which build); if its task ends without either (cancelled, or an
  exception it did not catch), waiters notice, the build is abandoned, and the next waiter
  builds;
* a build that takes longer than ``build_timeout`` raises :class:`BuildTimeoutError` in the
  waiters (the builder itself is not interrupted).

:meth:`AsyncAgentCache.get_or_build` wraps the whole protocol around a ``build`` coroutine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from ledger.cache._agent_cache import AgentCache, CacheDecision
from ledger.cache._recorder import CacheStats
from ledger.errors import BuildTimeoutError
from ledger.records import AppendResult

__all__ = ["AsyncAgentCache"]

P = ParamSpec("P")
T = TypeVar("T")
Runner = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class _Build:
    """A key's agent being built: who builds it, and the future its waiters await."""

    future: asyncio.Future[None]
    task: asyncio.Task[Any] | None
    ticket: int | None = None


class AsyncAgentCache:
    """:class:`AgentCache` as coroutines; builds are shared between coroutines of one loop.

    ``run(func, *args, **kwargs)`` runs a blocking call off the loop (default
    :func:`asyncio.to_thread`; ``AsyncLedger`` passes its own worker pool).
    """

    def __init__(
        self,
        cache: AgentCache,
        *,
        run: Runner | None = None,
        build_timeout: float | None = None,
    ) -> None:
        self.sync = cache
        self.build_timeout = cache.build_timeout if build_timeout is None else build_timeout
        self._run: Runner = run or asyncio.to_thread
        self._builds: dict[str, _Build] = {}

    async def check(self, session_key: str, session_id: str, signature: Any) -> CacheDecision:
        """Decide whether the key's agent may serve ``session_id`` (see :meth:`AgentCache.check`).

        ``miss``/``rebuild`` make the calling coroutine the key's builder: it must call
        :meth:`store` (or :meth:`abandon`) with the decision's ticket. Coroutines checking the
        key meanwhile await that build.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.build_timeout
        me = asyncio.current_task()
        while True:
            build = self._builds.get(session_key)
            if build is None or (build.task is me and me is not None):
                break
            await self._await_build(session_key, build, deadline - loop.time())
        mine = _Build(future=loop.create_future(), task=me)
        self._builds[session_key] = mine
        try:
            decision: CacheDecision = await self._run(
                self.sync.check, session_key, session_id, signature
            )
        except BaseException:
            self._finish(session_key, mine)
            raise
        if decision.action == "reuse":
            self._finish(session_key, mine)
        else:
            mine.ticket = decision.ticket
        return decision

    async def _await_build(self, session_key: str, build: _Build, timeout: float) -> None:
        """Wait for ``build`` to end; abandon it for its builder if the builder's task died."""
        waiting: set[asyncio.Future[Any]] = {build.future}
        if build.task is not None:
            waiting.add(build.task)
        if timeout <= 0:
            raise BuildTimeoutError(session_key, self.build_timeout)
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise BuildTimeoutError(session_key, self.build_timeout)
        if not build.future.done():  # the builder's task ended without store/abandon
            await self._run(self.sync.abandon, session_key, ticket=build.ticket)
            self._finish(session_key, build)

    async def store(
        self,
        session_key: str,
        session_id: str,
        signature: Any,
        agent: Any,
        *,
        ticket: int | None = None,
    ) -> None:
        """Cache the built ``agent`` and let the key's waiters reuse it."""
        try:
            await self._run(
                self.sync.store, session_key, session_id, signature, agent, ticket=ticket
            )
        finally:
            self._finish_ticket(session_key, ticket)

    async def abandon(self, session_key: str, *, ticket: int | None = None) -> None:
        """Give up the key's build (it failed); the next waiter builds."""
        try:
            await self._run(self.sync.abandon, session_key, ticket=ticket)
        finally:
            self._finish_ticket(session_key, ticket)

    async def rebaseline(
        self,
        session_key: str,
        session_id: str,
        result: AppendResult | Sequence[AppendResult],
    ) -> None:
        """See :meth:`AgentCache.rebaseline` (never raises into a turn)."""
        await self._run(self.sync.rebaseline, session_key, session_id, result)

    async def get_or_build(
        self,
        session_key: str,
        session_id: str,
        signature: Any,
        build: Callable[[], Awaitable[T]],
    ) -> tuple[T, CacheDecision]:
        """The key's agent for this turn: the cached one if it may serve, else ``await build()``.

        A failed or cancelled build is abandoned (the next caller builds) and its exception
        propagates. Returns the agent and the decision that chose it.
        """
        decision = await self.check(session_key, session_id, signature)
        if decision.reuse:
            cached: T = decision.agent  # what an earlier ``build`` of this key returned
            return cached, decision
        try:
            agent = await build()
        except BaseException:
            await asyncio.shield(self.abandon(session_key, ticket=decision.ticket))
            raise
        await self.store(session_key, session_id, signature, agent, ticket=decision.ticket)
        return agent, decision

    def stats(self) -> CacheStats:
        """See :meth:`AgentCache.stats` (in memory: safe on the loop)."""
        return self.sync.stats()

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait, off the loop, until every recorded decision is in the log."""
        return bool(await self._run(self.sync.flush, timeout))

    @property
    def writer(self) -> str:
        """The writer whose appends count as this cache's own (see :class:`AgentCache`)."""
        return self.sync.writer

    def evict(self, session_key: str) -> bool:
        """Drop the key's entry (no database work: safe on the loop)."""
        return self.sync.evict(session_key)

    def baselines(self, session_key: str) -> dict[str, int]:
        """A copy of the key's baselines."""
        return self.sync.baselines(session_key)

    def __len__(self) -> int:
        return len(self.sync)

    def __contains__(self, session_key: object) -> bool:
        return session_key in self.sync

    def _finish_ticket(self, session_key: str, ticket: int | None) -> None:
        build = self._builds.get(session_key)
        if build is not None and (ticket is None or build.ticket in (None, ticket)):
            self._finish(session_key, build)

    def _finish(self, session_key: str, build: _Build) -> None:
        if self._builds.get(session_key) is build:
            del self._builds[session_key]
        if not build.future.done():
            build.future.set_result(None)
