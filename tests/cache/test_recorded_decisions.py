"""The live cache's decisions are recorded (``decisions-*`` streams) and counted (``stats()``),
on both backends, in one process and across two; ``replay`` and ``explain`` show them beside the
simulated guards.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from ledger import AgentCache, AsyncLedger, CacheDecided, DatabaseError, Ledger
from ledger.config import Settings
from ledger.replay import replay
from ledger.streams import decisions_stream
from tests.cli.support import settle

KEY = "telegram:1:dm"
SIG = "model-a"
CTX = multiprocessing.get_context("spawn")


def recorded(ledger: Ledger, key: str = KEY) -> list[CacheDecided]:
    """The decisions recorded for ``key`` (after the recorders flushed)."""
    events = [r.event for r in ledger.read_stream(decisions_stream(key))]
    assert all(isinstance(e, CacheDecided) for e in events)
    return events  # type: ignore[return-value]


def turn(ledger: Ledger, cache: AgentCache, session_id: str, text: str = "hi") -> str:
    """One gateway turn: check, build if told, the user's message and the reply, rebaseline."""
    decision = cache.check(KEY, session_id, SIG)
    if not decision.reuse:
        cache.store(KEY, session_id, SIG, f"agent-{session_id}", ticket=decision.ticket)
    ledger.append_message(session_id, "user", text)
    result = ledger.append_message(session_id, "assistant", "ok")
    cache.rebaseline(KEY, session_id, result)
    return decision.reason


@pytest.fixture
def session(ledger: Ledger) -> str:
    """An open session under :data:`KEY`."""
    return ledger.open_session(KEY, session_id="s1")


def test_a_hit_is_never_recorded(ledger: Ledger, session: str) -> None:
    """After the first build, plain hits leave the decisions stream as it was."""
    cache = ledger.cache()
    turn(ledger, cache, session)
    assert cache.flush()
    before = recorded(ledger)
    assert [turn(ledger, cache, session) for _ in range(3)] == ["hit"] * 3
    assert cache.flush()
    assert recorded(ledger) == before


def test_a_miss_is_recorded_after_its_store_with_the_build_time(
    ledger: Ledger, session: str
) -> None:
    """The miss lands once its build is stored: built, with a duration and the decision time."""
    cache = ledger.cache()
    turn(ledger, cache, session)
    assert cache.flush()
    (miss,) = recorded(ledger)
    assert (miss.action, miss.reason, miss.session_id, miss.built) == ("miss", "miss", "s1", True)
    assert miss.build_seconds is not None
    assert miss.build_seconds >= 0
    assert miss.decided_at is not None


def test_a_foreign_write_rebuild_is_recorded_with_its_reason_and_heads(
    ledger: Ledger, session: str, migrated_url: str, settings: Settings
) -> None:
    """Another writer's message makes a ``rebuild``/``foreign_write`` with baseline and live."""
    cache = ledger.cache()
    turn(ledger, cache, session)
    with Ledger.open(migrated_url, writer="gateway-2", settings=settings) as other:
        other.append_message(session, "user", "from elsewhere")
    assert turn(ledger, cache, session) == "foreign_write"
    assert cache.flush()
    rebuild = recorded(ledger)[-1]
    assert (rebuild.action, rebuild.reason) == ("rebuild", "foreign_write")
    assert rebuild.baseline is not None
    assert rebuild.live == rebuild.baseline + 1


def test_a_switch_is_recorded_at_once(ledger: Ledger, session: str) -> None:
    """A reuse that is not a hit (the first check of another session) needs no build."""
    cache = ledger.cache()
    turn(ledger, cache, session)
    second = ledger.open_session(KEY, session_id="s2")
    assert turn(ledger, cache, second) == "switch"
    assert cache.flush()
    assert [(d.action, d.reason, d.session_id) for d in recorded(ledger)][-1] == (
        "reuse",
        "switch",
        "s2",
    )


def test_an_abandoned_build_is_recorded_as_not_built(ledger: Ledger, session: str) -> None:
    """A build that failed: the miss is recorded with ``built`` False and no duration."""
    cache = ledger.cache()
    decision = cache.check(KEY, session, SIG)
    cache.abandon(KEY, ticket=decision.ticket)
    assert cache.flush()
    (miss,) = recorded(ledger)
    assert (miss.reason, miss.built, miss.build_seconds) == ("miss", False, None)


def test_an_eviction_and_an_expiry_are_recorded(ledger: Ledger, session: str) -> None:
    """``evict`` and the LRU bound record ``evicted``; the idle TTL records ``expired``."""
    cache = ledger.cache(max_entries=1)
    turn(ledger, cache, session)
    other = ledger.open_session("telegram:2:dm", session_id="t1")
    decision = cache.check("telegram:2:dm", other, SIG)
    cache.store("telegram:2:dm", other, SIG, "agent-t", ticket=decision.ticket)  # evicts KEY
    assert cache.evict("telegram:2:dm")
    expiring = ledger.cache(idle_ttl=0.001)
    turn(ledger, expiring, session)
    expiring.sweep() or expiring.sweep()
    assert cache.flush()
    assert expiring.flush()
    reasons = [(d.action, d.reason) for d in recorded(ledger)]
    assert ("evict", "evicted") in reasons
    assert ("evict", "expired") in reasons
    assert [(d.action, d.reason) for d in recorded(ledger, "telegram:2:dm")][-1] == (
        "evict",
        "evicted",
    )


def test_recording_never_moves_a_sessions_sequence(ledger: Ledger, session: str) -> None:
    """Decisions live in their own stream: the session's head is what the messages made it."""
    cache = ledger.cache()
    turn(ledger, cache, session)
    head = ledger.head(session)
    assert cache.check(KEY, "s1", "another-signature").action == "rebuild"
    cache.store(KEY, "s1", "another-signature", "agent-2")
    assert cache.flush()
    assert ledger.head(session) == head
    assert len(recorded(ledger)) == 2


def test_recorded_decisions_equal_the_decisions_returned(ledger: Ledger, session: str) -> None:
    """Every returned decision that is not a hit is in the stream, in order, and no other."""
    cache = ledger.cache()
    returned = []
    for sid, signature in [("s1", SIG), ("s1", SIG), ("s2", SIG), ("s1", "b"), ("s2", "b")]:
        if ledger.head(sid) is None:
            ledger.open_session(KEY, session_id=sid)
        decision = cache.check(KEY, sid, signature)
        if not decision.reuse:
            cache.store(KEY, sid, signature, "agent", ticket=decision.ticket)
        returned.append((decision.action, decision.reason, sid))
    assert cache.flush()
    assert [(d.action, d.reason, d.session_id) for d in recorded(ledger)] == [
        r for r in returned if r[1] != "hit"
    ]


def test_a_cache_without_recording_writes_nothing(ledger: Ledger, session: str) -> None:
    """``record_decisions=False``: the log holds no decisions stream."""
    cache = ledger.cache(record_decisions=False)
    turn(ledger, cache, session)
    assert cache.flush()
    assert recorded(ledger) == []
    assert cache.stats().decisions == {"miss": 1}


def test_stats_count_decisions_builds_and_hit_rate(ledger: Ledger, session: str) -> None:
    """Decisions by reason, one build with its time, three reuses out of four turns."""
    cache = ledger.cache()
    reasons = [turn(ledger, cache, session) for _ in range(4)]
    assert reasons == ["miss", "hit", "hit", "hit"]
    assert cache.flush()
    stats = cache.stats()
    assert stats.decisions == {"hit": 3, "miss": 1}
    assert (stats.builds, stats.entries, stats.hit_rate) == (1, 1, 0.75)
    assert stats.build_seconds >= 0
    assert (stats.recorded, stats.queued, stats.dropped) == (1, 0, 0)


def test_an_unreachable_database_never_fails_a_turn_and_recording_catches_up(
    ledger: Ledger, session: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording fails while the database refuses it; the turn goes on; it lands afterwards."""
    cache = ledger.cache()
    real = ledger.store.append_streams

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("down for the test")

    monkeypatch.setattr(ledger.store, "append_streams", refuse)
    decision = cache.check(KEY, session, SIG)
    cache.store(KEY, session, SIG, "agent", ticket=decision.ticket)
    assert not cache.flush(timeout=0.3)
    assert cache.stats().record_failures >= 1
    monkeypatch.setattr(ledger.store, "append_streams", real)
    cache.check(KEY, session, "other-signature")  # wakes the recorder
    assert cache.flush(timeout=10)
    assert [d.reason for d in recorded(ledger)][:1] == ["miss"]


@pytest.mark.asyncio
async def test_async_cache_records_and_counts(migrated_url: str, settings: Settings) -> None:
    """``AsyncAgentCache`` records through the same recorder; ``stats`` and ``flush`` mirror."""
    async with await AsyncLedger.open(migrated_url, writer="gw-a", settings=settings) as ledger:
        sid = await ledger.open_session(KEY, session_id="a1")
        cache = ledger.cache()
        agent, decision = await cache.get_or_build(KEY, sid, SIG, _build)
        assert (agent, decision.reason) == ("built", "miss")
        assert await cache.flush()
        assert cache.stats().decisions == {"miss": 1}
        events = [r.event for r in await ledger.read_stream(decisions_stream(KEY))]
        assert [(e.action, e.built) for e in events] == [("miss", True)]  # type: ignore[attr-defined]


async def _build() -> str:
    return "built"


def _process(url: str, writer: str, out: str, start: Any) -> None:
    """A second gateway process: ten turns on its own session, returned decisions to ``out``."""
    from ledger import Ledger as ChildLedger

    start.wait(30)
    returned = []
    with ChildLedger.open(url, writer=writer) as child:
        sid = child.ensure_session(f"{KEY}:{writer}")
        cache = child.cache()
        for n in range(10):
            decision = cache.check(KEY, sid, SIG if n < 5 else "v2")
            if not decision.reuse:
                cache.store(KEY, sid, SIG if n < 5 else "v2", "agent", ticket=decision.ticket)
            returned.append([decision.action, decision.reason, sid])
            cache.rebaseline(KEY, sid, child.append_message(sid, "user", f"turn {n}"))
        assert cache.flush()
    Path(out).write_text(json.dumps(returned))


def test_recorded_decisions_across_two_processes_equal_what_each_cache_returned(
    ledger: Ledger, migrated_url: str, tmp_path: Path
) -> None:
    """Two OS processes share one key's decisions stream; each writer's part is its returns."""
    start = CTX.Event()
    outs = [tmp_path / f"p{n}.json" for n in range(2)]
    children = [
        CTX.Process(target=_process, args=(migrated_url, f"proc-{n}", str(outs[n]), start))
        for n in range(2)
    ]
    for child in children:
        child.start()
    start.set()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    stream = list(ledger.read_stream(decisions_stream(KEY)))
    for n, out in enumerate(outs):
        returned = [tuple(r) for r in json.loads(out.read_text()) if r[1] != "hit"]
        mine = [r.event for r in stream if r.writer == f"proc-{n}"]
        assert [(e.action, e.reason, e.session_id) for e in mine] == returned  # type: ignore[attr-defined]


def test_replay_counts_recorded_decisions_without_disagreement(
    ledger: Ledger, session: str, migrated_url: str, settings: Settings
) -> None:
    """A faithful cache (turns, a foreign write, a rebuild): replay agrees with every decision."""
    cache = ledger.cache()
    turn(ledger, cache, session)
    turn(ledger, cache, session)
    with Ledger.open(migrated_url, writer="gateway-2", settings=settings) as other:
        other.append_message(session, "user", "from elsewhere")
    turn(ledger, cache, session)
    turn(ledger, cache, session)
    assert cache.flush()
    settle(migrated_url)
    report = replay(ledger.read_all(), keys=[KEY], timeline=True)
    assert report.recorded.decisions == 2
    assert report.recorded.builds == 2
    assert report.recorded.disagreements == 0
    turns = [e for e in report.keys[KEY].timeline if e.kind == "turn" and e.writer == "gateway-1"]
    assert [None if e.recorded is None else e.recorded.reason for e in turns] == [
        "miss",
        None,
        "foreign_write",
        None,
    ]


def test_replay_counts_an_eviction_the_simulation_cannot_know_as_a_disagreement(
    ledger: Ledger, session: str, migrated_url: str
) -> None:
    """After ``evict`` the live cache misses where the simulated ``ledger`` guard reuses."""
    cache = ledger.cache()
    turn(ledger, cache, session)
    cache.evict(KEY)
    assert turn(ledger, cache, session) == "miss"
    assert cache.flush()
    settle(migrated_url)
    report = replay(ledger.read_all(), keys=[KEY], timeline=True)
    assert report.recorded.disagreements == 1
    kinds = [e.kind for e in report.keys[KEY].timeline]
    assert kinds.count("decision") == 3  # miss, evicted, miss


def test_explain_shows_the_recorded_decision_beside_the_simulated_ones(
    ledger: Ledger, session: str, migrated_url: str
) -> None:
    """``ledger explain`` has a live column and marks the turn where it differs."""
    from click.testing import CliRunner

    from ledger.cli import cli

    cache = ledger.cache()
    turn(ledger, cache, session)
    cache.evict(KEY)
    turn(ledger, cache, session)
    assert cache.flush()
    settle(migrated_url)
    result = CliRunner().invoke(cli, ["explain", KEY, "--url", migrated_url], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "live (recorded)" in result.output
    assert "miss (miss) ≠ simulated" in result.output
    result = CliRunner().invoke(cli, ["replay", "--url", migrated_url], terminal_width=300)
    assert "1 turns where the live cache and the simulated ledger guard disagree" in result.output
