"""Replay a log and show, turn by turn, what each cache guard would decide and whether it was right.

The guards (``legacy``, ``hermes``, ``ledger``) are objects in ``_guards``; they run side by
side over the same turns.

A *turn* is a run of events by one writer on its key's active session that starts with a
``user`` message. Each writer with turns gets its own simulated cache: its guard runs before the
turn's first event and re-baselines after its last; events by other writers are foreign to it.
The signature of a turn is its session's ``model``.

Ground truth: a rebuild is *needed* when, since this cache last saw the session, another writer
wrote to it, a message was retracted, its head regressed, or the signature changed; otherwise
reuse was right. A rebuild that was not needed is a *false bust*; a reuse that should have been
a rebuild is a *missed change*. Memory is bounded by the number of sessions, keys and writers,
never by the number of events, so a replay streams logs of any length.

Recorded decisions: a live :class:`~ledger.AgentCache` writes each decision that is not a plain
``hit`` to the key's ``decisions-*`` stream (``CacheDecided``, off the turn's path, so it may land
in the log a little after the turn it belongs to). The replay matches each to its turn by writer,
key, session and time: the decision belongs to the latest turn of that writer on that key that
started before it and had not gone past its first event, else to the writer's next turn there
(the decision is appended off the turn's path, so it may come after that turn in the log). A
turn of a recording writer with no recorded decision was a ``hit``. A turn whose recorded action
differs from the simulated ``ledger`` guard's is a *disagreement* (an eviction, a TTL expiry or
a restart the simulation cannot know of, or a bug).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ledger.codec import content_text
from ledger.events import (
    CacheDecided,
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionOpened,
    SessionSwitched,
)
from ledger.records import RecordedEvent
from ledger.replay._guards import GUARD_TYPES, GUARDS, Guard, Live
from ledger.replay._reports import (
    GuardDecision,
    GuardTotals,
    KeyReport,
    RecordedDecision,
    RecordedTotals,
    ReplayReport,
    TimelineEntry,
)
from ledger.streams import category

__all__ = [
    "GUARDS",
    "GuardDecision",
    "GuardTotals",
    "KeyReport",
    "ReplayReport",
    "TimelineEntry",
    "replay",
]


@dataclass(slots=True)
class _Session:
    key: str | None
    model: str | None
    sequence: int = 0
    message_count: int = 0


@dataclass(slots=True)
class _Seen:
    """What one writer's cache knows of one session since it last looked."""

    foreign: bool = False
    retracted: bool = False


@dataclass(slots=True)
class _Cache:
    """One writer's simulated caches: each guard's entry per key, and what it has seen."""

    writer: str
    guards: dict[str, Guard]
    #: The ideal cache (ground truth), kept apart from the guards so any subset can run.
    truth: dict[str, tuple[Any, dict[str, int]]] = field(default_factory=dict)
    seen: dict[str, _Seen] = field(default_factory=dict)


@dataclass(slots=True)
class _Turn:
    writer: str
    key: str
    session_id: str


#: Turns of one writer on one key kept open for a late recorded decision (bounded memory).
_OPEN_TURNS = 4


@dataclass(slots=True)
class _Matched:
    """A turn waiting for the live cache's recorded decision."""

    session_id: str
    started: dt.datetime
    simulated: str | None
    #: Where its timeline entry is (None: no timeline, or the key is not reported).
    index: int | None
    #: The time of the turn's second event: a decision after it is not this turn's.
    moved_on: dt.datetime | None = None
    recorded: RecordedDecision | None = None


def _verdict(action: str, needed: bool) -> str:
    if action == "miss":
        return "build"
    if action == "rebuild":
        return "ok" if needed else "false_bust"
    return "missed_change" if needed else "ok"


class _Replayer:
    def __init__(
        self,
        keys: set[str] | None,
        timeline: bool,
        guards: tuple[str, ...],
        since: dt.datetime | None,
    ) -> None:
        self.only = keys
        self.since = since
        self.now: dt.datetime | None = None
        self.timeline = timeline
        self.guards = guards
        self.sessions: dict[str, _Session] = {}
        self.active: dict[str, str] = {}
        #: Keys whose switches we have seen (the others had their history compacted).
        self.switched: set[str] = set()
        self.caches: dict[str, _Cache] = {}
        self.turns: dict[tuple[str, str], _Turn] = {}
        #: Open turns by session, so an event only looks at the turns on its own session.
        self.by_session: dict[str, set[tuple[str, str]]] = {}
        self.reports: dict[str, KeyReport] = {}
        self.events = 0
        self.turn_count = 0
        #: Per (writer, key): turns awaiting a recorded decision, and decisions awaiting a turn.
        self.matching: dict[tuple[str, str], list[_Matched]] = {}
        self.unmatched: dict[tuple[str, str], list[RecordedDecision]] = {}
        #: Writers whose caches record decisions (their turns without one were hits).
        self.recording: set[str] = set()

    def report(self, key: str) -> KeyReport:
        found = self.reports.get(key)
        if found is None:
            found = KeyReport(session_key=key, guards={g: GuardTotals() for g in self.guards})
            self.reports[key] = found
        return found

    def wanted(self, key: str | None) -> bool:
        if key is None or (self.only is not None and key not in self.only):
            return False
        return self.since is None or (self.now is not None and self.now >= self.since)

    # -- one event ---------------------------------------------------------------------------

    def feed(self, record: RecordedEvent) -> None:
        self.events += 1
        self.now = record.recorded_at
        event = record.event
        if isinstance(event, CacheDecided):
            self._recorded(record, event)
            return
        if isinstance(event, SessionSwitched):
            self._end_turns(lambda t: t.key == event.session_key)
            self.active[event.session_key] = event.session_id
            self.switched.add(event.session_key)
            self._note(record, event.session_key, event.session_id, "switch", event.reason)
            return
        session_id = getattr(event, "session_id", None)
        if session_id is None or category(record.stream) != "session":
            return
        is_user = isinstance(event, MessageAppended) and event.role == "user"
        continues = isinstance(event, MessageAppended) and not is_user
        open_here = self.by_session.get(session_id)
        if open_here and continues:
            for ident in open_here:
                waiting = self.matching.get(ident)
                if waiting and waiting[-1].moved_on is None and ident[0] == record.writer:
                    waiting[-1].moved_on = record.recorded_at
        if open_here:
            self._end_turns(
                lambda t: t.writer != record.writer or not continues,
                [self.turns[ident] for ident in open_here],
            )
        session = self.sessions.get(session_id)
        if isinstance(event, SessionOpened):
            session = self.sessions[session_id] = _Session(event.session_key, event.model)
        if session is None:
            session = self.sessions[session_id] = _Session(None, None)
        for cache in self.caches.values():
            seen = cache.seen.get(session_id)
            if seen is not None:
                seen.foreign |= cache.writer != record.writer
                seen.retracted |= isinstance(event, MessagesRetracted)
        key = self._key_of(session_id, session)
        if key is None and is_user and session.key is not None and session.key not in self.switched:
            # No switch of this key seen yet: its old switches were compacted away (``ledger
            # compact keys``), so the session a user writes to is the one that was active.
            self._end_turns(lambda t: t.key == session.key)
            key = session.key
            self.active[key] = session_id
        turn_started = is_user and key is not None
        if turn_started:
            assert key is not None
            self._start_turn(record, key, session_id, session)
        session.sequence = record.sequence
        if isinstance(event, MessageAppended):
            session.message_count += 1
        elif isinstance(event, MessagesRetracted):
            session.message_count -= len(event.message_ids)
        if not turn_started and self.timeline:
            self._note(record, session.key, session_id, _kind(event), _detail(event))

    def _key_of(self, session_id: str, session: _Session) -> str | None:
        if session.key is not None and self.active.get(session.key) == session_id:
            return session.key
        for key, active in self.active.items():
            if active == session_id:
                return key
        return None

    # -- turns ------------------------------------------------------------------------------

    def _start_turn(
        self, record: RecordedEvent, key: str, session_id: str, session: _Session
    ) -> None:
        cache = self.caches.get(record.writer)
        if cache is None:
            guards: dict[str, Guard] = {name: GUARD_TYPES[name]() for name in self.guards}
            cache = self.caches[record.writer] = _Cache(record.writer, guards)
        ident = (record.writer, key)
        previous = self.turns.get(ident)
        if previous is not None:
            self._end_turns(lambda _t: True, [previous])
        self.turns[ident] = _Turn(record.writer, key, session_id)
        self.by_session.setdefault(session_id, set()).add(ident)
        self.turn_count += 1
        needed, why = self._needed(cache, key, session_id, session)
        ideal = cache.truth.get(key)
        baselines = {} if ideal is None else ideal[1]
        baselines[session_id] = session.sequence
        cache.truth[key] = (session.model if needed or ideal is None else ideal[0], baselines)
        seen = cache.seen.get(session_id) or _Seen()
        live = Live(
            signature=session.model,
            message_count=session.message_count,
            sequence=session.sequence,
            retracted=seen.retracted,
            foreign=seen.foreign,
        )
        decisions = {
            name: guard.check(key, session_id, live) for name, guard in cache.guards.items()
        }
        cache.seen[session_id] = _Seen()
        if not self.wanted(key):
            return
        report = self.report(key)
        self._await_decision(
            record,
            key,
            session_id,
            decisions.get("ledger", (None, None))[0],
            len(report.timeline) if self.timeline else None,
        )
        for name, (action, _reason) in decisions.items():
            verdict = _verdict(action, needed)
            totals = report.guards[name]
            totals.turns += 1
            totals.builds += action != "reuse"
            totals.rebuilds += action == "rebuild"
            totals.false_busts += verdict == "false_bust"
            totals.missed_changes += verdict == "missed_change"
        if self.timeline:
            report.timeline.append(
                TimelineEntry(
                    position=record.position,
                    recorded_at=record.recorded_at,
                    writer=record.writer,
                    session_id=session_id,
                    kind="turn",
                    detail=_detail(record.event),
                    needed=needed,
                    why=why,
                    decisions={
                        name: GuardDecision(action=a, reason=r, verdict=_verdict(a, needed))
                        for name, (a, r) in decisions.items()
                    },
                )
            )

    def _needed(
        self, cache: _Cache, key: str, session_id: str, session: _Session
    ) -> tuple[bool, str | None]:
        entry = cache.truth.get(key)
        if entry is None:
            return True, "no agent yet"
        if entry[0] != session.model:
            return True, "signature changed"
        seen = cache.seen.get(session_id)
        if seen is None:
            return False, None
        baseline = entry[1].get(session_id)
        if baseline is not None and session.sequence < baseline:
            return True, "head regressed"
        if seen.retracted:
            return True, "a message was retracted"
        if seen.foreign:
            return True, "another writer wrote"
        return False, None

    def _end_turns(self, ends: Callable[[_Turn], bool], turns: list[_Turn] | None = None) -> None:
        for turn in list(self.turns.values()) if turns is None else turns:
            if ends(turn):
                ident = (turn.writer, turn.key)
                del self.turns[ident]
                self.by_session[turn.session_id].discard(ident)
                self._rebaseline(turn)

    def _rebaseline(self, turn: _Turn) -> None:
        cache = self.caches[turn.writer]
        session = self.sessions[turn.session_id]
        live = Live(session.model, session.message_count, session.sequence)
        for guard in cache.guards.values():
            guard.rebaseline(turn.key, turn.session_id, live)
        truth = cache.truth.get(turn.key)
        if truth is not None:
            truth[1][turn.session_id] = session.sequence
        cache.seen[turn.session_id] = _Seen()

    # -- recorded decisions -------------------------------------------------------------------

    def _recorded(self, record: RecordedEvent, event: CacheDecided) -> None:
        key = event.session_key
        self.recording.add(record.writer)
        if not self.wanted(key):
            return
        decision = RecordedDecision(
            position=record.position,
            recorded_at=event.decided_at or record.recorded_at,
            writer=record.writer,
            session_id=event.session_id,
            action=event.action,
            reason=event.reason,
            baseline=event.baseline,
            live=event.live,
            build_seconds=event.build_seconds,
        )
        report = self.report(key)
        report.recorded.decisions += 1
        report.recorded.builds += bool(event.built)
        if self.timeline:
            self._note(
                record, key, event.session_id or "", "decision", f"{event.action} {event.reason}"
            )
        if event.session_id is None:  # an eviction or expiry: not a turn's decision
            return
        ident = (record.writer, key)
        when = decision.recorded_at
        turns = [t for t in self.matching.get(ident, []) if t.session_id == event.session_id]
        before = [t for t in turns if t.started <= when]
        if before and before[-1].recorded is None:
            # Decided during a turn that had not gone past its first event (the gateway
            # appended the user's message, then checked): that turn's decision.
            last = before[-1]
            if last.moved_on is None or when <= last.moved_on:
                last.recorded = decision
                return
        after = [t for t in turns if t.started > when and t.recorded is None]
        if after:  # decided before the turn started (checked, then appended): landed late
            after[0].recorded = decision
            return
        self.unmatched.setdefault(ident, []).append(decision)

    def _await_decision(
        self,
        record: RecordedEvent,
        key: str,
        session_id: str,
        simulated: str | None,
        index: int | None,
    ) -> None:
        ident = (record.writer, key)
        turn = _Matched(session_id, record.recorded_at, simulated, index)
        waiting = self.unmatched.get(ident)
        if waiting:
            # A decision recorded before this turn started (the cache checks before the
            # gateway appends the user's message): the latest one for this session.
            mine = [d for d in waiting if d.session_id == session_id]
            if mine:
                turn.recorded = mine[-1]
            del self.unmatched[ident]
        turns = self.matching.setdefault(ident, [])
        turns.append(turn)
        if len(turns) > _OPEN_TURNS:
            self._settle(key, record.writer, turns.pop(0))

    def _settle(self, key: str, writer: str, turn: _Matched) -> None:
        """Compare a turn's recorded decision (or its implied hit) with the simulation."""
        if writer not in self.recording:
            return
        report = self.report(key)
        live = "reuse" if turn.recorded is None else turn.recorded.action
        if turn.simulated is not None and live != turn.simulated:
            report.recorded.disagreements += 1
        if turn.index is not None and turn.recorded is not None:
            entry = report.timeline[turn.index]
            report.timeline[turn.index] = msgspec.structs.replace(entry, recorded=turn.recorded)

    def finish(self) -> ReplayReport:
        self._end_turns(lambda _t: True)
        for (writer, key), turns in self.matching.items():
            for turn in turns:
                self._settle(key, writer, turn)
        self.matching.clear()
        totals = {g: GuardTotals() for g in self.guards}
        recorded = RecordedTotals()
        for report in self.reports.values():
            recorded.add(report.recorded)
            for name, guard_totals in report.guards.items():
                totals[name].add(guard_totals)
        return ReplayReport(
            recorded=recorded,
            events=self.events,
            turns=sum(r.guards[self.guards[0]].turns for r in self.reports.values())
            if self.guards
            else 0,
            guards=totals,
            keys=dict(sorted(self.reports.items())),
        )

    def _note(
        self, record: RecordedEvent, key: str | None, session_id: str, kind: str, detail: str
    ) -> None:
        if self.timeline and self.wanted(key):
            assert key is not None
            self.report(key).timeline.append(
                TimelineEntry(
                    position=record.position,
                    recorded_at=record.recorded_at,
                    writer=record.writer,
                    session_id=session_id,
                    kind=kind,
                    detail=detail,
                )
            )


_KINDS: dict[type, str] = {
    SessionOpened: "opened",
    MessageAppended: "message",
    MessagesRetracted: "retracted",
    SessionClosed: "closed",
}


def _kind(event: object) -> str:
    return _KINDS.get(type(event), type(event).__name__)


def _detail(event: object) -> str:
    if isinstance(event, MessageAppended):
        return f"{event.role}: {content_text(event.content)[:200]}"
    if isinstance(event, MessagesRetracted):
        return f"{event.reason} {len(event.message_ids)} message(s)"
    if isinstance(event, SessionOpened):
        return f"{event.reason} ({event.source}, model {event.model})"
    if isinstance(event, SessionClosed):
        return event.reason
    return type(event).__name__


def replay(
    records: Iterable[RecordedEvent],
    *,
    keys: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    guards: Iterable[str] = GUARDS,
    timeline: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Simulate the guards over ``records`` (in position order) and total their decisions.

    ``keys`` limits the report to those keys (the simulation still reads everything, since
    other keys' events can touch their sessions); ``since`` counts only turns after that time;
    ``timeline`` keeps every event of the reported keys (``ledger explain``).
    """
    chosen = tuple(g for g in GUARDS if g in set(guards))
    replayer = _Replayer(set(keys) if keys is not None else None, timeline, chosen, since)
    count = 0
    # Reading a log allocates millions of short-lived objects and no reference cycles, so the
    # cyclic collector would only rescan them: a fifth of the time on large logs.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for record in records:
            replayer.feed(record)
            count += 1
            if progress is not None and count % 10_000 == 0:
                progress(10_000)
    finally:
        if collecting:
            gc.enable()
    if progress is not None:
        progress(count % 10_000)
    return replayer.finish()
