"""The agent cache's decision table, row by row, on both backends.

Each test drives the log through a store (this gateway's writes) and, where a foreign write is
needed, through a second store with another ``writer`` on the same database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import AgentCache, EventStore, MessagesRetracted
from ledger.config import Settings
from tests import controls

KEY = "telegram:1:thread-9"
SIG = ("gpt-x", "tools-v1")


@pytest.fixture
def other(migrated_url: str, settings: Settings) -> Iterator[EventStore]:
    """A second process's store on the same database, writing as ``other-writer``."""
    with EventStore.open(migrated_url, writer="other-writer", settings=settings) as opened:
        yield opened


@pytest.fixture
def cache(store: EventStore) -> AgentCache:
    """A cache whose writer is the ``store`` fixture's writer."""
    return AgentCache(store)


def open_session(store: EventStore, session_id: str, messages: int = 1) -> None:
    store.append(f"session-{session_id}", [controls.opened(session_id, KEY)])
    if messages:
        store.append(f"session-{session_id}", controls.messages(messages, session_id))


def build(cache: AgentCache, session_id: str, agent: object = "agent", sig: object = SIG) -> None:
    """Check (a miss) and store a freshly built agent, as a gateway does on its first turn."""
    assert cache.check(KEY, session_id, sig).action in ("miss", "rebuild")
    cache.store(KEY, session_id, sig, agent)


def test_no_entry_for_the_key_is_a_miss(store: EventStore, cache: AgentCache) -> None:
    """The first check of a key finds nothing to reuse."""
    open_session(store, "a")
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason, decision.agent) == ("miss", "miss", None)
    assert decision.live == 2


def test_same_sequence_is_a_hit(store: EventStore, cache: AgentCache) -> None:
    """Nothing written since the baseline: reuse the agent."""
    open_session(store, "a")
    build(cache, "a", agent="A1")
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason, decision.agent) == ("reuse", "hit", "A1")
    assert decision.baseline == decision.live == 2


def test_signature_change_rebuilds(store: EventStore, cache: AgentCache) -> None:
    """A new config fingerprint always rebuilds."""
    open_session(store, "a")
    build(cache, "a")
    decision = cache.check(KEY, "a", ("gpt-y", "tools-v1"))
    assert (decision.action, decision.reason) == ("rebuild", "signature_changed")


def test_first_switch_to_a_session_reuses_and_records_a_baseline(
    store: EventStore, cache: AgentCache
) -> None:
    """The first time the key is on session b, the agent is reused and b's head recorded."""
    open_session(store, "a")
    open_session(store, "b", messages=3)
    build(cache, "a")
    decision = cache.check(KEY, "b", SIG)
    assert (decision.action, decision.reason, decision.baseline) == ("reuse", "switch", None)
    assert cache.baselines(KEY) == {"a": 2, "b": 4}


def test_own_write_without_rebaseline_fast_forwards(store: EventStore, cache: AgentCache) -> None:
    """Events written by this cache's writer since the baseline: reuse and move the baseline."""
    open_session(store, "a")
    build(cache, "a")
    store.append("session-a", controls.messages(2))
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason) == ("reuse", "own_write")
    assert cache.baselines(KEY)["a"] == 4
    assert cache.check(KEY, "a", SIG).reason == "hit"


def test_foreign_write_rebuilds(store: EventStore, other: EventStore, cache: AgentCache) -> None:
    """Any event from another writer since the baseline rebuilds."""
    open_session(store, "a")
    build(cache, "a")
    other.append("session-a", controls.messages(1))
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason) == ("rebuild", "foreign_write")
    assert (decision.baseline, decision.live) == (2, 3)


def test_retraction_rebuilds_even_when_written_by_this_writer(
    store: EventStore, cache: AgentCache
) -> None:
    """A retraction between baseline and head rebuilds, whoever wrote it."""
    open_session(store, "a", messages=2)
    build(cache, "a")
    last = list(store.read_stream("session-a"))[-1].event
    store.append(
        "session-a",
        [MessagesRetracted(session_id="a", message_ids=[last.message_id], reason="undo")],  # type: ignore[attr-defined]
    )
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason) == ("rebuild", "retracted")


def test_live_below_baseline_is_regressed(store: EventStore, cache: AgentCache) -> None:
    """A head lower than the baseline (say, a restored database) rebuilds."""
    open_session(store, "a")
    build(cache, "a")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE session_heads SET sequence = 1 WHERE session_id = 'a'")
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason) == ("rebuild", "regressed")


def test_session_gone_is_regressed(store: EventStore, cache: AgentCache) -> None:
    """A baseline for a session the views no longer know rebuilds."""
    open_session(store, "a")
    build(cache, "a")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM session_heads WHERE session_id = 'a'")
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason, decision.live) == ("rebuild", "regressed", None)


def test_switching_a_to_b_to_a_never_rebuilds(store: EventStore, cache: AgentCache) -> None:
    """Moving the key between sessions reuses the agent every time (no false bust)."""
    open_session(store, "a")
    open_session(store, "b", messages=5)
    build(cache, "a")
    reasons = [cache.check(KEY, sid, SIG).reason for sid in ("b", "a", "b", "a")]
    assert reasons == ["switch", "hit", "hit", "hit"]


def test_undo_then_one_new_message_rebuilds(store: EventStore, cache: AgentCache) -> None:
    """Same message_count after /undo plus a new message, but the sequence moved: rebuild."""
    open_session(store, "a", messages=2)
    build(cache, "a")
    last = list(store.read_stream("session-a"))[-1].event
    store.append(
        "session-a",
        [
            MessagesRetracted(session_id="a", message_ids=[last.message_id], reason="undo"),  # type: ignore[attr-defined]
            controls.message("a", "a different question"),
        ],
    )
    decision = cache.check(KEY, "a", SIG)
    assert decision.reason == "retracted"


def test_foreign_write_to_b_while_key_on_a_is_caught_on_switch_back(
    store: EventStore, other: EventStore, cache: AgentCache
) -> None:
    """Another process writes to b while the key is on a; switching back to b rebuilds."""
    open_session(store, "a")
    open_session(store, "b")
    build(cache, "b")
    assert cache.check(KEY, "a", SIG).reason == "switch"
    other.append("session-b", controls.messages(1, "b"))
    decision = cache.check(KEY, "b", SIG)
    assert (decision.action, decision.reason) == ("rebuild", "foreign_write")


def test_own_turns_with_rebaseline_are_hits(store: EventStore, cache: AgentCache) -> None:
    """After each own turn the gateway re-baselines; the next check is a plain hit."""
    open_session(store, "a")
    build(cache, "a")
    for _ in range(3):
        assert cache.check(KEY, "a", SIG).reason == "hit"
        store.append("session-a", [controls.message("a", "question")])
        result = store.append("session-a", [controls.message("a", "answer", role="assistant")])
        cache.rebaseline(KEY, "a", result)
        assert cache.baselines(KEY)["a"] == result.sequence


def test_rebaseline_touches_only_that_session(store: EventStore, cache: AgentCache) -> None:
    """Re-baselining session a leaves b's baseline as it was (no poisoned snapshot)."""
    open_session(store, "a")
    open_session(store, "b")
    build(cache, "a")
    cache.check(KEY, "b", SIG)
    result = store.append("session-a", controls.messages(1))
    cache.rebaseline(KEY, "a", result)
    assert cache.baselines(KEY) == {"a": 3, "b": 2}


def test_rebaseline_keeps_the_baseline_when_a_foreign_write_sits_in_between(
    store: EventStore, other: EventStore, cache: AgentCache
) -> None:
    """A foreign event before our append is not hidden by re-baselining past it."""
    open_session(store, "a")
    build(cache, "a")
    other.append("session-a", controls.messages(1))
    result = store.append("session-a", controls.messages(1))
    cache.rebaseline(KEY, "a", result)
    assert cache.check(KEY, "a", SIG).reason == "foreign_write"


def test_rebaseline_with_another_sessions_result_is_a_no_op(
    store: EventStore, cache: AgentCache
) -> None:
    """An append result of another session leaves the baseline (never raises into a turn)."""
    open_session(store, "a")
    open_session(store, "b")
    build(cache, "a")
    before = cache.baselines(KEY)
    result = store.append("session-b", controls.messages(1, "b"))
    cache.rebaseline(KEY, "a", result)
    assert cache.baselines(KEY) == before


def test_rebaseline_with_a_falsy_session_id_is_a_no_op(
    store: EventStore, cache: AgentCache
) -> None:
    """As Hermes' guard: no session id, nothing to re-baseline."""
    open_session(store, "a")
    build(cache, "a")
    before = cache.baselines(KEY)
    cache.rebaseline(KEY, "", store.append("session-a", controls.messages(1)))
    assert cache.baselines(KEY) == before


def test_a_write_between_check_and_store_is_not_taken_as_seen(
    store: EventStore, other: EventStore, cache: AgentCache
) -> None:
    """The baseline is the head the miss saw, so a foreign write during the build rebuilds."""
    open_session(store, "a")
    assert cache.check(KEY, "a", SIG).action == "miss"
    other.append("session-a", controls.messages(1))  # lands while the agent is being built
    cache.store(KEY, "a", SIG, "agent")
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason) == ("rebuild", "foreign_write")


def test_usage_recorded_by_another_writer_leaves_the_agent_in_place(
    migrated_url: str, settings: Settings, cache: AgentCache, store: EventStore
) -> None:
    """A billing process recording usage writes to usage-<id>: the session's sequence stays,
    so the cached agent is reused."""
    from ledger import Ledger

    open_session(store, "a")
    build(cache, "a", agent="A1")
    with Ledger.open(migrated_url, writer="billing", settings=settings) as billing:
        billing.record_usage("a", input_tokens=1200, output_tokens=80, cost_usd=0.004)
    decision = cache.check(KEY, "a", SIG)
    assert (decision.action, decision.reason, decision.agent) == ("reuse", "hit", "A1")


def test_a_system_prompt_change_rebuilds(
    migrated_url: str, settings: Settings, cache: AgentCache, store: EventStore
) -> None:
    """A new system prompt is content: the agent built with the old one is stale."""
    from ledger import Ledger

    open_session(store, "a")
    build(cache, "a")
    with Ledger.open(migrated_url, writer="admin", settings=settings) as admin:
        admin.configure_session("a", system_prompt="You are terse now.")
    assert cache.check(KEY, "a", SIG).action == "rebuild"
