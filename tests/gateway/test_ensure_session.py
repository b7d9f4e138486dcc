"""``ensure_session``: one open session per chat, however many processes race for a new key."""

from __future__ import annotations

import asyncio
import multiprocessing
import re

import pytest

from ledger import AsyncLedger, InvalidArgumentError, Ledger
from ledger.store import default_writer

CTX = multiprocessing.get_context("spawn")
KEYS = [f"agent:main:telegram:dm:{n}" for n in range(20)]


def _ensure_all(url: str, start: object, out: object) -> None:
    with Ledger.open(url) as ledger:
        start.wait(60)  # type: ignore[attr-defined]
        out.put({key: ledger.ensure_session(key, source="telegram") for key in KEYS})  # type: ignore[attr-defined]


@pytest.mark.slow
def test_two_processes_ensuring_twenty_new_keys_get_one_session_per_key(
    migrated_url: str,
) -> None:
    start, out = CTX.Event(), CTX.Queue()
    workers = [CTX.Process(target=_ensure_all, args=(migrated_url, start, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    first, second = out.get(timeout=120), out.get(timeout=120)
    for worker in workers:
        worker.join(60)
    assert first == second
    with Ledger.open(migrated_url) as ledger:
        assert len(ledger.sessions(limit=100)) == len(KEYS)


@pytest.mark.asyncio
async def test_coroutines_ensuring_one_new_key_get_one_session(ledger: Ledger) -> None:
    aledger = AsyncLedger(ledger, max_workers=8)
    ids = await asyncio.gather(*(aledger.ensure_session(KEYS[0]) for _ in range(20)))
    assert len(set(ids)) == 1
    assert len(ledger.sessions()) == 1


def test_an_open_active_session_is_returned(ledger: Ledger) -> None:
    sid = ledger.open_session(KEYS[0])
    assert ledger.ensure_session(KEYS[0]) == sid


def test_a_closed_session_is_no_longer_the_keys_active_one(ledger: Ledger) -> None:
    sid = ledger.open_session(KEYS[0])
    ledger.close_session(sid)
    assert ledger.active_session(KEYS[0]) is None


def test_a_closed_active_session_gets_a_successor(ledger: Ledger) -> None:
    sid = ledger.open_session(KEYS[0])
    ledger.close_session(sid)
    successor = ledger.ensure_session(KEYS[0], model="m2")
    assert successor != sid
    assert ledger.active_session(KEYS[0]) == successor
    head = ledger.head(successor)
    assert head is not None
    assert head.model == "m2"


def test_an_unknown_open_option_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidArgumentError, match="colour"):
        ledger.ensure_session(KEYS[0], colour="blue")
    assert ledger.active_session(KEYS[0]) is None


def test_retract_turn_takes_back_from_the_last_user_message(ledger: Ledger) -> None:
    """/undo of a turn with a tool call: the call and its result go together."""
    sid = ledger.open_session(KEYS[0])
    ledger.append_message(sid, "user", "first")
    ledger.append_message(sid, "assistant", "one")
    ledger.append_message(sid, "user", "list files")
    calls = [{"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]
    ledger.append_message(sid, "assistant", None, tool_calls=calls)
    ledger.append_message(sid, "tool", "a.txt", tool_call_id="c1")
    ledger.retract_turn(sid)
    assert [m.content for m in ledger.transcript(sid)] == ["first", "one"]


def test_retract_turn_without_a_user_message_is_refused(ledger: Ledger) -> None:
    sid = ledger.open_session(KEYS[0])
    with pytest.raises(InvalidArgumentError):
        ledger.retract_turn(sid)


def test_the_default_writer_is_unique_per_process_lifetime() -> None:
    """host:pid:random: containers with PID 1 on same-named hosts do not collide."""
    writer = default_writer()
    assert re.fullmatch(r".+:\d+:[0-9a-f]{8}", writer)
    assert default_writer() == writer  # stable within the process


def _writer(out: object) -> None:
    out.put(default_writer())  # type: ignore[attr-defined]


def test_two_processes_have_different_default_writers() -> None:
    out = CTX.Queue()
    workers = [CTX.Process(target=_writer, args=(out,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    first, second = out.get(timeout=60), out.get(timeout=60)
    for worker in workers:
        worker.join(30)
    assert first != second
