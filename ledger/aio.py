"""``AsyncLedger``: the gateway API as coroutines, for asyncio gateways.

Every call runs the synchronous :class:`~ledger.facade.Ledger` method on a bounded pool of worker
threads, so the event loop never blocks on the database. We chose threads over SQLAlchemy's
asyncio engine because the hot path is one short transaction per call: the fsync dominates, a
thread hop costs microseconds, and one implementation (with one set of tests for its semantics)
serves both APIs. ``benchmarks/gateway.py`` measures the hop against the sync API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from ledger.cache import AsyncAgentCache
from ledger.config import Settings
from ledger.facade import Ledger
from ledger.records import AppendResult, RecordedEvent
from ledger.views import SearchHit, SessionHead, SessionUsage, TranscriptMessage

__all__ = ["AsyncLedger"]

P = ParamSpec("P")
T = TypeVar("T")


class AsyncLedger:
    """The :class:`Ledger` API as coroutines over a bounded worker pool."""

    def __init__(self, ledger: Ledger, *, max_workers: int = 8) -> None:
        self.ledger = ledger
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ledger")

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        writer: str | None = None,
        settings: Settings | None = None,
        create: bool = True,
        max_workers: int = 8,
    ) -> AsyncLedger:
        """Open (and on SQLite, create and migrate) the ledger without blocking the loop."""
        ledger = await asyncio.to_thread(
            Ledger.open, url, writer=writer, settings=settings, create=create
        )
        return cls(ledger, max_workers=max_workers)

    async def _run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

    async def close(self) -> None:
        """Close the ledger and stop the worker threads."""
        await self._run(self.ledger.close)
        self._pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def writer(self) -> str:
        """This ledger's writer id."""
        return self.ledger.writer

    async def open_session(
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
        """See :meth:`Ledger.open_session`."""
        return await self._run(
            self.ledger.open_session,
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

    async def ensure_session(self, session_key: str, **open_options: Any) -> str:
        """See :meth:`Ledger.ensure_session`."""
        return await self._run(self.ledger.ensure_session, session_key, **open_options)

    async def switch_session(
        self, session_key: str, session_id: str, *, reason: str = "resume"
    ) -> AppendResult | None:
        """See :meth:`Ledger.switch_session`."""
        return await self._run(self.ledger.switch_session, session_key, session_id, reason=reason)

    async def append_message(
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
        """See :meth:`Ledger.append_message`."""
        return await self._run(
            self.ledger.append_message,
            session_id,
            role,
            content,
            created_at=created_at,
            metadata=metadata,
            expected_sequence=expected_sequence,
            event_id=event_id,
            **fields,
        )

    async def append_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        expected_sequence: int | None = None,
        event_ids: Sequence[uuid.UUID | str] | None = None,
    ) -> AppendResult:
        """See :meth:`Ledger.append_messages`."""
        return await self._run(
            self.ledger.append_messages,
            session_id,
            messages,
            expected_sequence=expected_sequence,
            event_ids=event_ids,
        )

    async def retract_messages(
        self,
        session_id: str,
        count: int = 1,
        *,
        from_message_id: str | None = None,
        reason: str | None = None,
    ) -> AppendResult:
        """See :meth:`Ledger.retract_messages`."""
        return await self._run(
            self.ledger.retract_messages,
            session_id,
            count,
            from_message_id=from_message_id,
            reason=reason,
        )

    async def retract_turn(self, session_id: str, *, reason: str = "undo") -> AppendResult:
        """See :meth:`Ledger.retract_turn`."""
        return await self._run(self.ledger.retract_turn, session_id, reason=reason)

    async def close_session(
        self, session_id: str, *, reason: str = "closed", ended_at: dt.datetime | None = None
    ) -> AppendResult:
        """See :meth:`Ledger.close_session`."""
        return await self._run(
            self.ledger.close_session, session_id, reason=reason, ended_at=ended_at
        )

    async def reopen_session(
        self, session_id: str, *, reason: str = "resume"
    ) -> AppendResult | None:
        """See :meth:`Ledger.reopen_session`."""
        return await self._run(self.ledger.reopen_session, session_id, reason=reason)

    async def set_title(self, session_id: str, title: str | None) -> AppendResult:
        """See :meth:`Ledger.set_title`."""
        return await self._run(self.ledger.set_title, session_id, title)

    async def configure_session(
        self,
        session_id: str,
        *,
        system_prompt: str | None = None,
        model: str | None = None,
        model_config: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """See :meth:`Ledger.configure_session`."""
        return await self._run(
            self.ledger.configure_session,
            session_id,
            system_prompt=system_prompt,
            model=model,
            model_config=model_config,
        )

    async def record_usage(
        self,
        session_id: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        cost_usd: float | None = None,
        model: str | None = None,
    ) -> AppendResult:
        """See :meth:`Ledger.record_usage`."""
        return await self._run(
            self.ledger.record_usage,
            session_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            cost_usd=cost_usd,
            model=model,
        )

    async def usage(self, session_id: str) -> SessionUsage:
        """See :meth:`Ledger.usage`."""
        return await self._run(self.ledger.usage, session_id)

    async def transcript_as_messages(
        self, session_id: str, format: str = "openai"
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """See :meth:`Ledger.transcript_as_messages`."""
        return await self._run(self.ledger.transcript_as_messages, session_id, format)

    async def active_session(self, session_key: str) -> str | None:
        """See :meth:`Ledger.active_session`."""
        return await self._run(self.ledger.active_session, session_key)

    async def head(self, session_id: str) -> SessionHead | None:
        """See :meth:`Ledger.head`."""
        return await self._run(self.ledger.head, session_id)

    async def transcript(
        self, session_id: str, *, include_retracted: bool = False
    ) -> list[TranscriptMessage]:
        """See :meth:`Ledger.transcript`."""
        return await self._run(
            self.ledger.transcript, session_id, include_retracted=include_retracted
        )

    async def sessions(
        self,
        *,
        session_key: str | None = None,
        source: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionHead]:
        """See :meth:`Ledger.sessions`."""
        return await self._run(
            self.ledger.sessions,
            session_key=session_key,
            source=source,
            state=state,
            limit=limit,
            offset=offset,
        )

    async def search(
        self, query: str, *, limit: int = 20, session_id: str | None = None, fresh: bool = True
    ) -> list[SearchHit]:
        """See :meth:`Ledger.search`."""
        return await self._run(
            self.ledger.search, query, limit=limit, session_id=session_id, fresh=fresh
        )

    async def catch_up(self) -> int:
        """See :meth:`Ledger.catch_up`."""
        return await self._run(self.ledger.catch_up)

    async def lineage(self, session_id: str) -> list[str]:
        """See :meth:`Ledger.lineage`."""
        return await self._run(self.ledger.lineage, session_id)

    async def read_stream(self, stream: str, from_sequence: int = 1) -> list[RecordedEvent]:
        """The events of ``stream`` as a list (see :meth:`Ledger.read_stream`)."""
        return await self._run(lambda: list(self.ledger.read_stream(stream, from_sequence)))

    async def read_all(
        self, after_position: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """Events after ``after_position`` as a list; pass ``limit`` to bound memory."""
        return await self._run(lambda: list(self.ledger.read_all(after_position, limit)))

    def cache(self, **options: Any) -> AsyncAgentCache:
        """An :class:`AsyncAgentCache` on this ledger: one build per key across coroutines, its
        database reads on this ledger's worker pool (never on the event loop)."""
        return AsyncAgentCache(self.ledger.cache(**options), run=self._run)
