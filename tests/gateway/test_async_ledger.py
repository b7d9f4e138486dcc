"""Tests of ``AsyncLedger``, the asyncio twin of ``Ledger``, on SQLite and PostgreSQL.

pytest-asyncio is deliberately not a dependency: each test is a plain function that drives its
scenario with ``asyncio.run``, so the event loop's lifetime is exactly the test's.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading

import pytest

from ledger import (
    AsyncAgentCache,
    AsyncLedger,
    InvalidEventError,
    Ledger,
    SessionClosedError,
    SessionNotFoundError,
    WrongExpectedVersionError,
)
from ledger.config import Settings
from ledger.facade import session_stream
from ledger.records import RecordedEvent
from ledger.views import SessionHead, TranscriptMessage

KEY = "discord:guild-1:channel-2"
SESSIONS = 10
TASKS = 100
MESSAGES_PER_TASK = 3


async def _open(url: str, settings: Settings) -> AsyncLedger:
    return await AsyncLedger.open(url, writer="async-gateway", settings=settings)


async def _appender(ledger: AsyncLedger, session_id: str, task: int) -> list[int]:
    """Append this task's messages one call at a time; return the sequences it was given."""
    sequences = []
    for i in range(MESSAGES_PER_TASK):
        role = "user" if i % 2 == 0 else "assistant"
        result = await ledger.append_message(session_id, role, f"task {task} message {i}")
        sequences.append(result.sequence)
    return sequences


@dataclasses.dataclass
class Seen:
    """What the concurrent run acknowledged and then read back through ``AsyncLedger``."""

    session_ids: list[str]
    acked: dict[str, list[int]]
    transcripts: dict[str, list[TranscriptMessage]]
    heads: dict[str, SessionHead | None]
    streams: dict[str, list[RecordedEvent]]


async def _concurrent_appends(url: str, settings: Settings) -> Seen:
    """Open ten sessions, run a hundred appending tasks at once, and collect what they saw."""
    async with await _open(url, settings) as ledger:
        session_ids = [
            await ledger.open_session(f"{KEY}:{n}", session_id=f"s{n:02d}") for n in range(SESSIONS)
        ]
        targets = [session_ids[task % SESSIONS] for task in range(TASKS)]
        results = await asyncio.gather(
            *(_appender(ledger, sid, task) for task, sid in enumerate(targets))
        )
        acked: dict[str, list[int]] = collections.defaultdict(list)
        for sid, sequences in zip(targets, results, strict=True):
            acked[sid].extend(sequences)
        return Seen(
            session_ids=session_ids,
            acked=dict(acked),
            transcripts={sid: await ledger.transcript(sid) for sid in session_ids},
            heads={sid: await ledger.head(sid) for sid in session_ids},
            streams={sid: await ledger.read_stream(session_stream(sid)) for sid in session_ids},
        )


def test_concurrent_tasks_give_every_session_gap_free_sequences(
    migrated_url: str, settings: Settings
) -> None:
    """A hundred tasks appending at once to ten sessions leave each stream numbered 1..n."""
    seen = asyncio.run(_concurrent_appends(migrated_url, settings))
    per_session = TASKS // SESSIONS * MESSAGES_PER_TASK
    for sid in seen.session_ids:
        assert [r.sequence for r in seen.streams[sid]] == list(range(1, per_session + 2))
        assert sorted(seen.acked[sid]) == list(range(2, per_session + 2)), sid


def test_concurrent_tasks_leave_each_head_with_the_right_message_count(
    migrated_url: str, settings: Settings
) -> None:
    """After the concurrent appends each head counts exactly the messages its tasks wrote."""
    seen = asyncio.run(_concurrent_appends(migrated_url, settings))
    per_session = TASKS // SESSIONS * MESSAGES_PER_TASK
    for sid in seen.session_ids:
        head = seen.heads[sid]
        assert head is not None
        assert (head.sequence, head.message_count) == (per_session + 1, per_session)
        expected = {
            f"task {task} message {i}"
            for task in range(TASKS)
            if task % SESSIONS == seen.session_ids.index(sid)
            for i in range(MESSAGES_PER_TASK)
        }
        contents = [m.content for m in seen.transcripts[sid]]
        assert sorted(contents) == sorted(expected)


def test_async_reads_equal_what_the_sync_ledger_reports(
    migrated_url: str, settings: Settings
) -> None:
    """Transcripts and heads read through ``AsyncLedger`` match ``Ledger`` on the same data."""
    seen = asyncio.run(_concurrent_appends(migrated_url, settings))
    with Ledger.open(migrated_url, writer="sync-reader", settings=settings) as sync:
        for sid in seen.session_ids:
            assert sync.transcript(sid) == seen.transcripts[sid]
            assert sync.head(sid) == seen.heads[sid]
            assert list(sync.read_stream(session_stream(sid))) == seen.streams[sid]


def test_errors_propagate_as_the_same_typed_exceptions(
    migrated_url: str, settings: Settings
) -> None:
    """An awaited call raises the ledger's own exception types, not wrapped ones."""

    async def scenario() -> None:
        async with await _open(migrated_url, settings) as ledger:
            with pytest.raises(SessionNotFoundError, match="'ghost' does not exist"):
                await ledger.append_message("ghost", "user", "hello")
            sid = await ledger.open_session(KEY)
            with pytest.raises(InvalidEventError) as caught:
                await ledger.append_message(sid, "robot", "hello")
            assert caught.value.path == "$.role"
            with pytest.raises(WrongExpectedVersionError, match="expected 5, actual 1"):
                await ledger.append_message(sid, "user", "hello", expected_sequence=5)
            await ledger.close_session(sid)
            with pytest.raises(SessionClosedError):
                await ledger.append_messages(sid, [{"role": "user", "content": "late"}])
            assert await ledger.read_all() != []
            assert len(await ledger.read_stream(session_stream(sid))) == 2

    asyncio.run(scenario())


def test_the_event_loop_keeps_running_during_a_batch_of_appends(
    migrated_url: str, settings: Settings
) -> None:
    """A ``sleep(0)`` ticker keeps ticking while appends run, so database work never blocks."""

    async def scenario() -> int:
        async with await _open(migrated_url, settings) as ledger:
            sid = await ledger.open_session(KEY)
            batch = asyncio.gather(
                *(ledger.append_message(sid, "user", f"message {i}") for i in range(40))
            )
            ticks = 0
            # A blocking implementation would finish the whole batch within one or two ticks.
            while not batch.done():
                ticks += 1
                await asyncio.sleep(0)
            await batch
            head = await ledger.head(sid)
            assert head is not None
            assert head.message_count == 40
            return ticks

    assert asyncio.run(scenario()) > 40


def test_async_with_opens_and_closes_cleanly(migrated_url: str) -> None:
    """``async with await AsyncLedger.open(url)`` works; exit stops its threads, keeps the data."""

    async def scenario() -> str:
        async with await AsyncLedger.open(migrated_url) as ledger:
            sid = await ledger.open_session(KEY)
            await ledger.append_message(sid, "user", "persisted")
            assert isinstance(ledger.cache(), AsyncAgentCache)
            assert ledger.cache().writer == ledger.writer
        return sid

    before = {t.ident for t in threading.enumerate()}
    sid = asyncio.run(scenario())
    leftover = [
        t.name
        for t in threading.enumerate()
        if t.ident not in before and t.name.startswith("ledger")
    ]
    assert leftover == [], f"worker threads still running: {leftover}"
    with Ledger.open(migrated_url, settings=Settings.from_env({})) as sync:
        assert [m.content for m in sync.transcript(sid)] == ["persisted"]
