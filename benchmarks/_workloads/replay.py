"""The log ``benchmarks/replay.py`` replays: deterministic gateway traffic over conversation slots.

Each key (a conversation slot) starts with a session (``SessionOpened`` on the session stream
and ``SessionSwitched`` on the key stream, as ``Ledger.open_session`` writes them); then turns on
random keys: a ``user`` message and one to three ``assistant``/``tool`` replies by the gateway's
writer. Now and then a key gets a new session (new, reset or compress, sometimes with another
model) or resumes an older one, a turn is undone or retried (``MessagesRetracted``), and a second
writer (another process, set through ``StreamAppend(writer=...)``) posts a reminder into some
session. This is the traffic the three cache guards must tell apart, seeded so every run
replays the same log; ``build_log`` writes it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from _harness.build import build_figures, write_log
from _harness.output import log

from ledger import MessageAppended, MessagesRetracted, SessionOpened, SessionSwitched, StreamAppend
from ledger.events import Event

__all__ = ["GATEWAY", "Traffic", "build_log"]

GATEWAY = "gateway-host:1001"
SECOND_WRITER = "cron-host:2002"
SEED = 20_240_602
#: Turns per build transaction.
TURNS_PER_APPEND = 500
#: Per turn: chance of a new session on the key, of resuming an older one, of an undo or
#: retry after the turn, of a reminder from the second writer.
P_NEW_SESSION = 0.02
P_RESUME = 0.02
P_RETRACT = 0.04
P_FOREIGN = 0.03
PLATFORMS = ("telegram", "discord", "slack", "whatsapp")
MODELS = ("claude", "claude", "claude", "claude-haiku")
#: The vocabulary of the messages, drawn at random (its order decides the log: keep it).
VOCABULARY = (
    "deploy build check passed failed retry cache session agent prompt reply tool call result "
    "error timeout queue worker schedule reminder meeting tomorrow today report summary draft "
    "review merge branch release notes ticket customer invoice budget travel flight hotel"
)
WORDS = tuple(VOCABULARY.split())


class Traffic:
    """Deterministic gateway traffic, as ``append_streams`` transactions."""

    def __init__(self, keys: int, events: int) -> None:
        self.events = events
        self.rng = random.Random(SEED)
        self.keys = [f"agent:main:{PLATFORMS[i % 4]}:dm:{100_000 + i}" for i in range(keys)]
        self.active: dict[str, str] = {}
        self.sessions_of: dict[str, list[str]] = {key: [] for key in self.keys}
        self.all_sessions: list[str] = []
        self.live: dict[str, list[str]] = {}
        self.numbers: dict[str, int] = {}
        self.emitted = 0
        self.counts = {"turns": 0, "new_sessions": 0, "resumes": 0, "retractions": 0}
        self.counts["foreign"] = 0

    def text(self, low: int, high: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=self.rng.randint(low, high)))

    def message(self, session_id: str, role: str) -> MessageAppended:
        number = self.numbers[session_id] = self.numbers[session_id] + 1
        message_id = f"m{number:07d}"
        self.live[session_id].append(message_id)
        return MessageAppended(
            session_id=session_id,
            message_id=message_id,
            role=role,  # type: ignore[arg-type]
            content=self.text(4, 30),
            token_count=self.rng.randint(5, 600),
        )

    def part(self, stream: str, events: list[Event], writer: str = GATEWAY) -> StreamAppend:
        self.emitted += len(events)
        return StreamAppend(stream=stream, events=events, writer=writer)

    def open_session(self, key: str, reason: str) -> list[StreamAppend]:
        session_id = f"s{len(self.all_sessions):07d}"
        previous = self.active.get(key)
        self.active[key] = session_id
        self.sessions_of[key].append(session_id)
        self.all_sessions.append(session_id)
        self.live[session_id] = []
        self.numbers[session_id] = 0
        opened = SessionOpened(
            session_id=session_id,
            session_key=key,
            source=key.split(":")[2],
            reason=reason,  # type: ignore[arg-type]
            parent_session_id=previous if reason == "compress" else None,
            model=self.rng.choice(MODELS),
        )
        switched = SessionSwitched(
            session_key=key,
            session_id=session_id,
            previous_session_id=previous,
            reason=reason,  # type: ignore[arg-type]
        )
        return [
            self.part(f"session-{session_id}", [opened]),
            self.part(f"key-{key}", [switched]),
        ]

    def turn(self) -> list[StreamAppend]:
        rng = self.rng
        key = rng.choice(self.keys)
        parts: list[StreamAppend] = []
        roll = rng.random()
        if roll < P_NEW_SESSION:
            self.counts["new_sessions"] += 1
            parts += self.open_session(key, rng.choice(("new", "reset", "compress")))
        elif roll < P_NEW_SESSION + P_RESUME and len(self.sessions_of[key]) > 1:
            self.counts["resumes"] += 1
            target = rng.choice([s for s in self.sessions_of[key][-5:] if s != self.active[key]])
            switched = SessionSwitched(
                session_key=key,
                session_id=target,
                previous_session_id=self.active[key],
                reason="resume",
            )
            self.active[key] = target
            parts.append(self.part(f"key-{key}", [switched]))
        session_id = self.active[key]
        self.counts["turns"] += 1
        events: list[Event] = [self.message(session_id, "user")]
        replies = rng.choice((1, 1, 1, 2, 3))
        for index in range(replies):
            role = "tool" if replies == 3 and index == 1 else "assistant"
            events.append(self.message(session_id, role))
        parts.append(self.part(f"session-{session_id}", events))
        live = self.live[session_id]
        if rng.random() < P_RETRACT and len(live) >= 2:
            self.counts["retractions"] += 1
            count = rng.choice((1, 2))
            taken, self.live[session_id] = live[-count:], live[:-count]
            retracted = MessagesRetracted(
                session_id=session_id, message_ids=taken, reason="undo" if count == 1 else "retry"
            )
            parts.append(self.part(f"session-{session_id}", [retracted]))
        if rng.random() < P_FOREIGN:
            self.counts["foreign"] += 1
            other = rng.choice(self.all_sessions)
            reminder = self.message(other, "assistant")
            parts.append(self.part(f"session-{other}", [reminder], SECOND_WRITER))
        return parts

    def transactions(self) -> Iterator[list[StreamAppend]]:
        """The build's transactions until at least ``events`` events."""
        opening: list[StreamAppend] = []
        for key in self.keys:
            opening += self.open_session(key, "new")
        yield opening
        while self.emitted < self.events:
            parts: list[StreamAppend] = []
            for _ in range(TURNS_PER_APPEND):
                parts += self.turn()
                if self.emitted >= self.events:
                    break
            yield parts


def build_log(url: str, keys: int, events: int) -> dict[str, Any]:
    """Write at least ``events`` events of traffic on ``keys`` slots to ``url`` (run it in a
    child process); returns its counts and timing."""
    traffic = Traffic(keys, events)
    written, _, seconds = write_log(url, GATEWAY, traffic.transactions(), events)
    log(f"build: {written:,} events in {seconds:.1f}s")
    return (
        traffic.counts
        | {"events": written, "sessions": len(traffic.all_sessions)}
        | build_figures(written, seconds)
    )
