"""``ledger replay``'s simulation on hand-built logs with known answers."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from ledger.events import (
    Event,
    MessageAppended,
    MessagesRetracted,
    SessionOpened,
    SessionSwitched,
)
from ledger.records import RecordedEvent
from ledger.replay import replay

KEY = "telegram:1"
ME, OTHER = "gw-1", "gw-2"


class Log:
    """Builds a log in memory: positions ascend, each session stream counts its sequences."""

    def __init__(self) -> None:
        self.records: list[RecordedEvent] = []
        self.heads: dict[str, int] = {}
        self.ids = itertools.count(1)
        self.start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def add(self, stream: str, event: Event, writer: str = ME) -> None:
        sequence = self.heads.get(stream, 0) + 1
        self.heads[stream] = sequence
        position = len(self.records) + 1
        self.records.append(
            RecordedEvent(
                stream=stream,
                sequence=sequence,
                position=position,
                type=type(event).__name__,
                event=event,
                event_id=uuid.uuid4(),
                writer=writer,
                recorded_at=self.start + dt.timedelta(seconds=position),
                schema_version=1,
            )
        )

    def open(self, sid: str, model: str = "m1", previous: str | None = None) -> None:
        opened = SessionOpened(
            session_id=sid, session_key=KEY, source="cli", reason="new", model=model
        )
        self.add(f"session-{sid}", opened)
        self.switch(sid, previous, "new")

    def switch(self, sid: str, previous: str | None, reason: Any = "resume") -> None:
        event = SessionSwitched(
            session_key=KEY, session_id=sid, previous_session_id=previous, reason=reason
        )
        self.add(f"key-{KEY}", event)

    def message(self, sid: str, role: Any = "user", writer: str = ME) -> str:
        mid = f"m{next(self.ids)}"
        event = MessageAppended(session_id=sid, message_id=mid, role=role, content="hi")
        self.add(f"session-{sid}", event, writer)
        return mid

    def turn(self, sid: str, writer: str = ME) -> None:
        self.message(sid, "user", writer)
        self.message(sid, "assistant", writer)

    def undo(self, sid: str, mids: list[str], writer: str = ME) -> None:
        event = MessagesRetracted(session_id=sid, message_ids=mids, reason="undo")
        self.add(f"session-{sid}", event, writer)


def totals(log: Log) -> dict[str, tuple[int, int, int]]:
    report = replay(log.records)
    return {
        name: (g.rebuilds, g.false_busts, g.missed_changes) for name, g in report.guards.items()
    }


def test_switch_only_traffic_busts_only_the_legacy_guard() -> None:
    """A→B→A→B switches: legacy false-busts on every switch, hermes and ledger never."""
    log = Log()
    log.open("a")
    for _ in range(3):
        log.turn("a")
    log.open("b", previous="a")
    log.turn("b")
    for sid, prev in (("a", "b"), ("b", "a"), ("a", "b")):
        log.switch(sid, prev)
        log.turn(sid)
    result = totals(log)
    assert result["legacy"] == (4, 4, 0)
    assert result["hermes"] == (0, 0, 0)
    assert result["ledger"] == (0, 0, 0)


def test_undo_then_append_is_missed_by_counters_and_caught_by_the_ledger() -> None:
    """Undo plus one new message keeps the count: legacy and hermes reuse a stale agent."""
    log = Log()
    log.open("a")
    log.turn("a")
    log.message("a")
    last = log.message("a", "assistant")
    log.undo("a", [last])
    log.message("a", "assistant")
    log.turn("a")
    result = totals(log)
    assert result["legacy"] == (0, 0, 1)
    assert result["hermes"] == (0, 0, 1)
    assert result["ledger"] == (1, 0, 0)


def test_foreign_write_while_switched_away_is_missed_by_hermes() -> None:
    """Another writer writes to b while the key is on a; only the ledger rebuilds on return."""
    log = Log()
    log.open("a")
    log.turn("a")
    log.open("b", previous="a")
    log.turn("b")
    log.switch("a", "b")
    log.turn("a")
    log.message("b", "assistant", writer=OTHER)
    log.switch("b", "a")
    log.turn("b")
    report = replay(log.records, guards=["hermes", "ledger"])
    assert report.guards["hermes"].missed_changes == 1
    assert report.guards["ledger"].missed_changes == 0
    assert report.guards["ledger"].rebuilds == 1


def test_signature_change_rebuilds_in_every_guard() -> None:
    """A session with another model under the same key needs a new agent everywhere."""
    log = Log()
    log.open("a", model="m1")
    log.turn("a")
    log.open("b", model="m2", previous="a")
    log.turn("b")
    result = totals(log)
    assert {name: r[0] for name, r in result.items()} == {"legacy": 1, "hermes": 1, "ledger": 1}
    assert all(r[1] == 0 and r[2] == 0 for r in result.values())


def test_each_writer_gets_its_own_cache() -> None:
    """Two gateways alternating on one session each rebuild after the other's turn."""
    log = Log()
    log.open("a")
    log.turn("a", ME)
    log.turn("a", OTHER)
    log.turn("a", ME)
    report = replay(log.records)
    ledger = report.guards["ledger"]
    assert (ledger.turns, ledger.builds, ledger.rebuilds) == (3, 3, 1)
    assert ledger.false_busts == ledger.missed_changes == 0


def test_timeline_keeps_every_event_of_the_key_with_decisions_at_turns() -> None:
    """``timeline=True`` records events and the guards' decisions per turn."""
    log = Log()
    log.open("a")
    log.turn("a")
    report = replay(log.records, timeline=True)
    kinds = [entry.kind for entry in report.keys[KEY].timeline]
    assert kinds == ["opened", "switch", "turn", "message"]
    turn = report.keys[KEY].timeline[2]
    assert turn.decisions is not None
    assert turn.decisions["ledger"].reason == "miss"


def test_ground_truth_does_not_depend_on_which_guards_run() -> None:
    """Running one guard alone gives it the same verdicts as running all three."""
    log = Log()
    log.open("a")
    for _ in range(5):
        log.turn("a")
    alone = {g: replay(log.records, guards=[g]).guards[g] for g in ("legacy", "hermes", "ledger")}
    together = replay(log.records).guards
    assert alone == together
    assert together["legacy"].missed_changes == 0
