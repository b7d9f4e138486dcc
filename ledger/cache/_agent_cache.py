"""The agent cache: one agent per ``session_key``, validated by ``(session_id, sequence)``.

A gateway keeps an expensive agent per conversation slot and must decide, every turn, whether it
may REUSE it. A mutable message counter answers that badly (see ``docs/agent-cache.md``). Here
each entry keeps a baseline ``{session_id: sequence}`` of what the cache has seen of each
session, and :meth:`AgentCache.check` compares it with the live head from ``session_heads``
through the decision table of :mod:`ledger.cache._decision` (miss, signature_changed, switch,
hit, own_write, foreign_write, retracted, regressed).

``sequence`` only grows, so a switch never looks like a change and an undo-then-append can
never look like no change. Entries are bounded (LRU, idle TTL), thread-safe, and a missing key
is built once: concurrent checks for a key whose agent is being built wait for that build. The
decision carries a ``ticket`` that :meth:`AgentCache.store` / :meth:`AgentCache.abandon` take,
so any thread (or coroutine: :class:`ledger.cache.AsyncAgentCache`) may finish the build.

The cache is fail-safe: a head read that fails is retried briefly (tenacity), and if the
database still cannot answer, a fitting entry is reused with reason ``unverified`` and no
baseline moves; nothing but a typed :class:`~ledger.errors.LedgerError` for misuse raises into
a turn.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgspec
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ledger.cache._decision import RETRACTION, Action, Reason, Verdict, decide
from ledger.cache._recorder import CacheStats, DecisionRecorder, counted, now
from ledger.errors import BuildTimeoutError, DatabaseError, InvalidArgumentError
from ledger.events import CacheDecided
from ledger.records import AppendResult
from ledger.store import EventStore, kinds_between
from ledger.streams import session_stream
from ledger.views import SessionViews

__all__ = ["AgentCache", "CacheDecision"]

T = TypeVar("T")
#: Seconds before the first retry of a failed read (the later waits double from there).
_FIRST_WAIT = 0.02


class _HasStore(Protocol):
    store: EventStore


@dataclass(frozen=True, slots=True)
class CacheDecision:
    """What :meth:`AgentCache.check` decided, and the numbers it decided on."""

    action: Action
    reason: Reason
    session_key: str
    session_id: str
    agent: Any = None
    baseline: int | None = None
    live: int | None = None
    #: For a ``miss``/``rebuild``: the build's ticket, for :meth:`AgentCache.store`/``abandon``.
    ticket: int | None = None

    @property
    def reuse(self) -> bool:
        """True when the cached agent may serve this turn."""
        return self.action == "reuse"


@dataclass(slots=True)
class _Entry:
    agent: Any
    signature: Any
    baselines: dict[str, int]
    used: float


@dataclass(slots=True)
class _Pending:
    owner: int
    ticket: int
    session_id: str
    live: int | None
    #: The miss/rebuild that started this build, recorded once the build ends.
    decision: CacheDecided | None = None
    started: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


#: Why an entry left the cache: recorded (``evicted``, ``expired``) or not (``replaced`` by the
#: agent a rebuild stored).
_Gone = tuple[str, Any, str]


class _Unreadable(Exception):
    """The database could not answer (after the retries): decide ``unverified``."""


_tickets = itertools.count(1)


class AgentCache:
    """Agents per ``session_key`` guarded by per-session sequence baselines."""

    def __init__(
        self,
        store: EventStore | _HasStore,
        *,
        writer: str | None = None,
        max_entries: int = 256,
        idle_ttl: float | None = None,
        on_evict: Callable[[str, Any], None] | None = None,
        build_timeout: float = 300.0,
        record_decisions: bool = True,
    ) -> None:
        if max_entries < 1:
            raise InvalidArgumentError("max_entries", max_entries, "an integer >= 1")
        if idle_ttl is not None and idle_ttl <= 0:
            raise InvalidArgumentError("idle_ttl", idle_ttl, "seconds > 0, or None")
        self.event_store: EventStore = store if isinstance(store, EventStore) else store.store
        self.writer = writer or self.event_store.writer
        self.max_entries = max_entries
        self.idle_ttl = idle_ttl
        self.on_evict = on_evict
        self.build_timeout = build_timeout
        self._views = SessionViews(self.event_store.engine)
        #: A transient database error is retried this briefly before a check goes unverified:
        #: three attempts, 20 ms then 40 ms apart. The first runs directly (:meth:`_read`);
        #: these are the two after it.
        self._retry = Retrying(
            stop=stop_after_attempt(2),
            wait=wait_exponential(multiplier=0.04, max=0.2),
            retry=retry_if_exception_type(DatabaseError),
            reraise=True,
        )
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        #: Every decision that is not a plain hit goes to the key's ``decisions-*`` stream.
        self._recorder = (
            DecisionRecorder(self.event_store, self.writer) if record_decisions else None
        )
        self._counts: Counter[str] = Counter()
        self._builds = 0
        self._build_seconds = 0.0
        self._abandoned = 0

    # -- the per-turn decision -------------------------------------------------------------

    def check(self, session_key: str, session_id: str, signature: Any) -> CacheDecision:
        """Decide whether the agent cached for ``session_key`` may serve ``session_id`` now.

        ``miss`` and ``rebuild`` make this thread the builder of the key: it must then call
        :meth:`store` with the new agent, or :meth:`abandon` if the build failed. Other threads
        checking the same key meanwhile wait for that build instead of building twice.
        """
        live, readable = self._head(session_id)
        while True:
            with self._lock:
                evicted = self._sweep_locked()
                pending = self._pending.get(session_key)
                decision = None
                if pending is None or pending.owner == threading.get_ident():
                    decision = self._decide_locked(
                        session_key, session_id, signature, live, readable
                    )
            self._notify(evicted)
            if decision is not None:
                if decision.reuse and decision.reason != "hit":
                    self._record(decision)
                return decision
            assert pending is not None
            if not pending.done.wait(self.build_timeout):
                raise BuildTimeoutError(session_key, self.build_timeout)
            live, readable = self._head(session_id)

    def _read(self, read: Callable[..., T], *args: Any) -> T:
        """``read(*args)``, retried by :attr:`_retry` after a :class:`DatabaseError`.

        The first attempt is a plain call: tenacity's bookkeeping costs about 12 µs, a fifth
        of a cache hit, and is only worth paying once something has failed.
        """
        try:
            return read(*args)
        except DatabaseError:
            time.sleep(_FIRST_WAIT)
            return self._retry(read, *args)

    def _head(self, session_id: str) -> tuple[int | None, bool]:
        """The session's live head sequence, and whether the database could be read."""
        try:
            return self._read(self._views.live_sequence, session_id), True
        except DatabaseError:
            return None, False

    def _decide_locked(
        self,
        session_key: str,
        session_id: str,
        signature: Any,
        live: int | None,
        readable: bool = True,
    ) -> CacheDecision:
        entry = self._entries.get(session_key)
        if entry is not None:
            self._entries.move_to_end(session_key)
            entry.used = time.monotonic()
        baseline = None if entry is None else entry.baselines.get(session_id)
        fits = entry is not None and entry.signature == signature
        try:
            if not readable and fits:
                raise _Unreadable
            action, reason = decide(
                has_entry=entry is not None,
                signature_matches=fits,
                baseline=baseline,
                live=live,
                between=lambda low, high: self._classify(session_id, low, high),
            )
        except _Unreadable:
            # The database is down: serve the turn with the agent, move no baseline.
            action, reason = "reuse", "unverified"
        else:
            if entry is not None and action == "reuse":
                # A switch records the first baseline; own writes fast-forward it.
                entry.baselines[session_id] = live or 0
        self._counts[reason] += 1
        ticket = None
        if action != "reuse":
            ticket = next(_tickets)
        decision = CacheDecision(
            action=action,
            reason=reason,
            session_key=session_key,
            session_id=session_id,
            agent=entry.agent if entry is not None and action == "reuse" else None,
            baseline=baseline,
            live=live,
            ticket=ticket,
        )
        if ticket is not None:
            self._pending[session_key] = _Pending(
                threading.get_ident(),
                ticket,
                session_id,
                live if readable else None,
                decision=self._event(decision) if self._recorder is not None else None,
                started=time.monotonic(),
            )
        return decision

    def _event(self, decision: CacheDecision) -> CacheDecided:
        return CacheDecided(
            session_key=decision.session_key,
            session_id=decision.session_id,
            action=decision.action,
            reason=decision.reason,
            baseline=decision.baseline,
            live=decision.live,
            decided_at=now(),
        )

    def _record(self, decision: CacheDecision) -> None:
        if self._recorder is not None:
            self._recorder.record(self._event(decision))

    def _classify(self, session_id: str, low: int, high: int) -> Verdict:
        """Look at the events between a baseline and the live head (:class:`_Unreadable` if the
        database cannot answer)."""
        try:
            rows = self._read(self._kinds, session_id, low, high)
        except DatabaseError as exc:
            raise _Unreadable from exc
        if any(kind == RETRACTION for kind, _ in rows):
            return "retracted"
        if len(rows) != high - low or any(writer != self.writer for _, writer in rows):
            return "foreign_write"
        return "own_write"

    def _kinds(self, session_id: str, low: int, high: int) -> list[tuple[str, str]]:
        stream = session_stream(session_id)
        with self.event_store.engine.connect() as conn:
            rows = kinds_between(conn, stream, low, high)
        if len(rows) != high - low:
            # Not all in the live table: the stream is archived; read it where it is.
            rows = [
                (record.type, record.writer)
                for record in self.event_store.read_stream(stream, low + 1)
                if record.sequence <= high
            ]
        return rows

    # -- after the decision ----------------------------------------------------------------

    def store(
        self,
        session_key: str,
        session_id: str,
        signature: Any,
        agent: Any,
        *,
        ticket: int | None = None,
    ) -> None:
        """Cache a freshly built ``agent``; its baseline is the head the miss/rebuild saw.

        The agent was built after that ``check``, from a transcript at least that new, so an
        event written meanwhile (by anyone) lies above the baseline and the next ``check``
        looks at it, instead of being taken as seen. Baselines of the key's other sessions are
        kept: they still describe what this cache has seen of those sessions. ``ticket`` (from
        the decision) ends exactly that build; without it, the key's pending build ends.
        """
        with self._lock:
            pending = self._pending.get(session_key)
        if pending is not None and pending.session_id == session_id and pending.live is not None:
            live = pending.live
        else:
            # Unknown (the check could not read it): 0, so the next check verifies everything.
            live = self._head(session_id)[0] or 0
        evicted: list[_Gone] = []
        with self._lock:
            old = self._entries.pop(session_key, None)
            baselines = dict(old.baselines) if old is not None else {}
            baselines[session_id] = live
            self._entries[session_key] = _Entry(agent, signature, baselines, time.monotonic())
            if old is not None and old.agent is not agent:
                evicted.append((session_key, old.agent, "replaced"))
            while len(self._entries) > self.max_entries:
                evicted.append(self._pop_oldest_locked())
            ended = self._resolve_locked(session_key, ticket)
            if ended is not None:
                self._builds += 1
                self._build_seconds += time.monotonic() - ended.started
        self._finish_build(ended, built=True)
        self._notify(evicted)

    def abandon(self, session_key: str, *, ticket: int | None = None) -> None:
        """Give up building the key's agent (the build failed); the next waiter builds."""
        with self._lock:
            ended = self._resolve_locked(session_key, ticket)
            self._abandoned += ended is not None
        self._finish_build(ended, built=False)

    def _finish_build(self, ended: _Pending | None, *, built: bool) -> None:
        """Record the miss/rebuild that started the build ``ended``, with how it ended."""
        if ended is None or ended.decision is None or self._recorder is None:
            return
        seconds = round(time.monotonic() - ended.started, 6) if built else None
        self._recorder.record(
            msgspec.structs.replace(ended.decision, build_seconds=seconds, built=built)
        )

    def rebaseline(
        self,
        session_key: str,
        session_id: str,
        result: AppendResult | Sequence[AppendResult],
    ) -> None:
        """After this gateway's own turn: move only ``session_id``'s baseline to the append's.

        ``result`` is what the turn's (last) append returned. Events between the old baseline
        and the append must be this cache's own and no retraction, otherwise the baseline stays
        where it is, so the next :meth:`check` sees them and rebuilds. A falsy ``session_id``,
        a result of another stream, or a database that cannot answer leaves the baseline alone
        (as Hermes' guard does): the next check then judges those events itself.
        """
        if not session_id:
            return
        stream = session_stream(session_id)
        results = [result] if isinstance(result, AppendResult) else list(result)
        mine = [r for r in results if r.stream == stream and r.sequences]
        if not mine:
            return
        target = max(r.sequence for r in mine)
        with self._lock:
            entry = self._entries.get(session_key)
            baseline = None if entry is None else entry.baselines.get(session_id)
        if entry is None:
            return
        if baseline is not None and baseline >= target:
            return
        try:
            if baseline is not None and self._classify(session_id, baseline, target) != "own_write":
                return
        except _Unreadable:
            return
        with self._lock:
            if self._entries.get(session_key) is entry:
                entry.baselines[session_id] = target

    def evict(self, session_key: str) -> bool:
        """Drop the key's entry (calls ``on_evict``); False when there was none."""
        with self._lock:
            entry = self._entries.pop(session_key, None)
        if entry is None:
            return False
        self._notify([(session_key, entry.agent, "evicted")])
        return True

    def stats(self) -> CacheStats:
        """Decisions by reason, builds and their time, hit rate, entries, recording."""
        with self._lock:
            counts = Counter(self._counts)
            stats = CacheStats(
                builds=self._builds,
                build_seconds=round(self._build_seconds, 6),
                abandoned=self._abandoned,
                entries=len(self._entries),
            )
        turns = sum(n for reason, n in counts.items() if reason not in ("evicted", "expired"))
        reused = sum(counts[r] for r in ("hit", "switch", "own_write", "unverified"))
        stats.decisions = counted(counts)
        stats.hit_rate = reused / turns if turns else None
        if self._recorder is not None:
            stats.recorded = self._recorder.recorded
            stats.queued = self._recorder.queued
            stats.dropped = self._recorder.dropped
            stats.record_failures = self._recorder.failures
        return stats

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every recorded decision is in the log; False if not within ``timeout``."""
        return True if self._recorder is None else self._recorder.flush(timeout)

    def sweep(self) -> int:
        """Evict entries idle longer than ``idle_ttl``; returns how many went."""
        with self._lock:
            evicted = self._sweep_locked()
        self._notify(evicted)
        return len(evicted)

    def baselines(self, session_key: str) -> dict[str, int]:
        """A copy of the key's baselines (empty when the key has no entry)."""
        with self._lock:
            entry = self._entries.get(session_key)
            return dict(entry.baselines) if entry is not None else {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, session_key: object) -> bool:
        with self._lock:
            return session_key in self._entries

    # -- internals -------------------------------------------------------------------------

    def _resolve_locked(self, session_key: str, ticket: int | None = None) -> _Pending | None:
        """End the key's build (``ticket``'s, or any); returns the build that ended."""
        pending = self._pending.get(session_key)
        if pending is not None and (ticket is None or pending.ticket == ticket):
            del self._pending[session_key]
            pending.done.set()
            return pending
        return None

    def _pop_oldest_locked(self) -> _Gone:
        key, entry = self._entries.popitem(last=False)
        return key, entry.agent, "evicted"

    def _sweep_locked(self) -> list[_Gone]:
        if self.idle_ttl is None:
            return []
        horizon = time.monotonic() - self.idle_ttl
        stale = [key for key, entry in self._entries.items() if entry.used < horizon]
        return [(key, self._entries.pop(key).agent, "expired") for key in stale]

    def _notify(self, gone: list[_Gone]) -> None:
        for key, _agent, why in gone:
            if why == "replaced":
                continue
            with self._lock:
                self._counts[why] += 1
            if self._recorder is not None:
                self._recorder.record(
                    CacheDecided(session_key=key, action="evict", reason=why, decided_at=now())
                )
        if self.on_evict is None:
            return
        for key, agent, _why in gone:
            self.on_evict(key, agent)
