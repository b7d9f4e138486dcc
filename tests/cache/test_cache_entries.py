"""The agent cache's entry management: LRU bound, idle TTL, eviction callback, build de-dup."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import AgentCache, EventStore, InvalidArgumentError
from tests import controls

SIG = "sig"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    """A store on a SQLite file: entry management does not depend on the backend."""
    with EventStore.open(f"sqlite:///{tmp_path / 'ledger.db'}", writer="me") as store:
        store.append("session-a", [controls.opened("a", "k")])
        yield store


def test_lru_bound_evicts_the_least_recently_used_key(sqlite_store: EventStore) -> None:
    """With room for two entries, a third evicts the one used least recently."""
    evicted: list[tuple[str, object]] = []
    cache = AgentCache(sqlite_store, max_entries=2, on_evict=lambda k, a: evicted.append((k, a)))
    for key in ("k1", "k2"):
        cache.check(key, "a", SIG)
        cache.store(key, "a", SIG, f"agent-{key}")
    cache.check("k1", "a", SIG)
    cache.check("k3", "a", SIG)
    cache.store("k3", "a", SIG, "agent-k3")
    assert evicted == [("k2", "agent-k2")]
    assert "k1" in cache
    assert "k3" in cache
    assert len(cache) == 2


def test_idle_entries_expire_after_the_ttl(sqlite_store: EventStore) -> None:
    """An entry unused for longer than ``idle_ttl`` is swept and reported to ``on_evict``."""
    evicted: list[str] = []
    cache = AgentCache(sqlite_store, idle_ttl=0.05, on_evict=lambda k, a: evicted.append(k))
    cache.check("k", "a", SIG)
    cache.store("k", "a", SIG, "agent")
    time.sleep(0.1)
    assert cache.sweep() == 1
    assert evicted == ["k"]
    assert cache.check("k", "a", SIG).reason == "miss"


def test_evict_drops_the_entry_and_calls_back(sqlite_store: EventStore) -> None:
    """``evict`` removes a key so the gateway can close its agent."""
    closed: list[object] = []
    cache = AgentCache(sqlite_store, on_evict=lambda k, a: closed.append(a))
    cache.check("k", "a", SIG)
    cache.store("k", "a", SIG, "agent")
    assert cache.evict("k") is True
    assert cache.evict("k") is False
    assert closed == ["agent"]


def test_replacing_an_agent_reports_the_old_one(sqlite_store: EventStore) -> None:
    """Storing a rebuilt agent hands the replaced one to ``on_evict``."""
    closed: list[object] = []
    cache = AgentCache(sqlite_store, on_evict=lambda k, a: closed.append(a))
    cache.check("k", "a", SIG)
    cache.store("k", "a", SIG, "old")
    cache.check("k", "a", "new-sig")
    cache.store("k", "a", "new-sig", "new")
    assert closed == ["old"]


def test_concurrent_checks_of_a_missing_key_build_once(sqlite_store: EventStore) -> None:
    """Eight threads checking a missing key at once: one builds, the others reuse its agent."""
    cache = AgentCache(sqlite_store)
    builds: list[int] = []
    actions: list[str] = []
    barrier = threading.Barrier(8)

    def turn() -> None:
        barrier.wait()
        decision = cache.check("k", "a", SIG)
        actions.append(decision.action)
        if decision.action == "miss":
            builds.append(1)
            time.sleep(0.05)
            cache.store("k", "a", SIG, "agent")

    threads = [threading.Thread(target=turn) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(builds) == 1
    assert sorted(actions) == ["miss"] + ["reuse"] * 7


def test_a_failed_build_lets_the_next_check_build(sqlite_store: EventStore) -> None:
    """``abandon`` clears the pending marker; a waiting thread then gets its own miss."""
    cache = AgentCache(sqlite_store)
    assert cache.check("k", "a", SIG).action == "miss"
    result: list[str] = []
    waiter = threading.Thread(target=lambda: result.append(cache.check("k", "a", SIG).action))
    waiter.start()
    time.sleep(0.05)
    assert result == []
    cache.abandon("k")
    waiter.join(timeout=5)
    assert result == ["miss"]


def test_bad_bounds_are_refused(sqlite_store: EventStore) -> None:
    """Nonsense sizes are typed errors."""
    with pytest.raises(InvalidArgumentError, match="max_entries"):
        AgentCache(sqlite_store, max_entries=0)
    with pytest.raises(InvalidArgumentError, match="idle_ttl"):
        AgentCache(sqlite_store, idle_ttl=-1)
