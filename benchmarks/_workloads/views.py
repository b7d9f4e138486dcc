"""The log ``benchmarks/views.py`` measures the views on: chat sessions with Zipf-worded text.

One ``SessionOpened`` per session, then transactions of runs of ``RUN_LENGTH`` messages (user
and assistant turns alternating, texts drawn from a pool of ``SENTENCES`` sentences whose words
follow a Zipf distribution over ``VOCABULARY`` pseudo-words) on ``PARTS_PER_APPEND`` random
sessions each, one run in ``RETRACT_EVERY`` ending with an ``undo`` retraction. The same seed
gives the search queries: common, mid-frequency, rare and two-word ones. ``build_log`` writes
it; ``ledger_rebuild`` and ``raw_scan`` are the two sides of the rebuild comparison.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _harness.build import build_figures, write_log
from _harness.output import log
from _harness.timing import counter

from ledger import EventStore, MessageAppended, MessagesRetracted, SessionOpened, StreamAppend
from ledger.events import Event
from projections.rebuild import rebuild
from projections.sessions import SessionsProjection

__all__ = [
    "QUERY_KINDS",
    "SEED",
    "WRITER",
    "Workload",
    "build_log",
    "ledger_rebuild",
    "raw_scan",
    "session_id",
]

WRITER = "benchmark:projections"
SEED = 20_240_601
#: Parts per build transaction and messages per part (one burst of turns on one session).
PARTS_PER_APPEND = 1000
RUN_LENGTH = 10
#: One message run in this many ends with an ``undo`` of its last message.
RETRACT_EVERY = 25
VOCABULARY = 5000
#: Distinct message texts (drawing words per message would dominate the build time).
SENTENCES = 20_000
QUERY_KINDS = ("common", "mid", "rare", "two words")
SYLLABLES = (
    *("ba", "ko", "ri", "tu", "ne", "sa", "mo", "li", "da", "ve", "gu", "pi", "fe", "zo", "ha"),
    *("ju", "ma", "ro", "si", "ka", "te", "lu", "no", "wi", "ye", "bra", "cle", "dro", "fin"),
    *("gal", "hex", "jor", "kin", "lam", "mur", "nox", "pol", "quin", "rus", "sel", "tam"),
    *("urn", "vex", "wol", "zin"),
)


def session_id(index: int) -> str:
    """The id of the ``index``-th session."""
    return f"bench_{index:06d}"


def vocabulary(rng: random.Random) -> list[str]:
    """``VOCABULARY`` distinct pseudo-words, most frequent first."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_weights(n: int) -> list[float]:
    """Cumulative Zipf (s = 1) weights over ranks 1..n."""
    return list(itertools.accumulate(1 / rank for rank in range(1, n + 1)))


class Workload:
    """Deterministic message text and the build's event stream."""

    def __init__(self, sessions: int, events: int) -> None:
        self.sessions = sessions
        self.events = events
        self.retractions = 0
        self.rng = random.Random(SEED)
        self.words = vocabulary(self.rng)
        cumulative = zipf_weights(len(self.words))
        self.sentences = [
            " ".join(
                self.rng.choices(self.words, cum_weights=cumulative, k=self.rng.randint(8, 24))
            )
            for _ in range(SENTENCES)
        ]

    def sentence(self) -> str:
        """8 to 24 words drawn by Zipf frequency (~100 characters), from a pool made once."""
        return self.sentences[self.rng.randrange(SENTENCES)]

    def opened(self, index: int) -> SessionOpened:
        return SessionOpened(
            session_id=session_id(index),
            session_key=f"agent:main:telegram:dm:{index}",
            source="telegram",
            reason="new",
            model="claude",
        )

    def transactions(self) -> Iterator[list[StreamAppend]]:
        """Yield the build's transactions, lists of ``StreamAppend`` parts, ``events`` in all."""
        sessions = self.sessions
        for start in range(0, sessions, PARTS_PER_APPEND):
            stop = min(sessions, start + PARTS_PER_APPEND)
            yield [
                StreamAppend(
                    stream=f"session-{session_id(i)}",
                    events=[self.opened(i)],
                    expected_sequence=0,
                )
                for i in range(start, stop)
            ]
        remaining = self.events - sessions
        counters = [0] * sessions
        while remaining > 0:
            parts: list[StreamAppend] = []
            chosen = self.rng.sample(range(sessions), min(PARTS_PER_APPEND, sessions))
            for index in chosen:
                if remaining <= 0:
                    break
                sid = session_id(index)
                size = min(RUN_LENGTH, remaining)
                events: list[Event] = []
                for k in range(size):
                    counters[index] += 1
                    events.append(
                        MessageAppended(
                            session_id=sid,
                            message_id=f"m{counters[index]:06d}",
                            role="user" if k % 2 == 0 else "assistant",
                            content=self.sentence(),
                            token_count=self.rng.randint(5, 400),
                        )
                    )
                if size == RUN_LENGTH and self.rng.randrange(RETRACT_EVERY) == 0:
                    self.retractions += 1
                    events[-1] = MessagesRetracted(
                        session_id=sid, message_ids=[f"m{counters[index] - 1:06d}"], reason="undo"
                    )
                remaining -= len(events)
                parts.append(StreamAppend(stream=f"session-{sid}", events=events))
            yield parts

    def queries(self, count: int) -> list[tuple[str, str]]:
        """``count`` (kind, text) queries, cycling through ``QUERY_KINDS``."""
        rng = random.Random(SEED + 1)
        words = self.words
        found: list[tuple[str, str]] = []
        for kind in itertools.islice(itertools.cycle(QUERY_KINDS), count):
            if kind == "common":
                text = rng.choice(words[:10])
            elif kind == "mid":
                text = rng.choice(words[100:500])
            elif kind == "rare":
                text = rng.choice(words[2000:])
            else:
                text = f"{rng.choice(words[20:200])} {rng.choice(words[20:200])}"
            found.append((kind, text))
        return found


def build_log(url: str, sessions: int, events: int) -> dict[str, Any]:
    """Write the log of ``events`` events over ``sessions`` sessions to ``url`` (run it in a
    child process); returns its counts and timing."""
    workload = Workload(sessions, events)
    written, transactions, seconds = write_log(
        url, WRITER, workload.transactions(), events, report_first=True
    )
    log(f"build: {written:,} events in {seconds:.1f}s ({written / seconds:,.0f} ev/s)")
    counts = {"events": written, "retractions": workload.retractions, "transactions": transactions}
    return counts | build_figures(written, seconds)


# -- the rebuild's contenders: each returns the events it saw and the seconds it took ---------


def raw_scan(path: Path) -> Callable[[], tuple[int, float]]:
    """The baseline: iterate every column of every event, in position order, with ``sqlite3``."""

    def run() -> tuple[int, float]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            start = time.perf_counter()
            count = 0
            for _row in conn.execute("SELECT * FROM events ORDER BY position"):
                count += 1
            return count, time.perf_counter() - start
        finally:
            conn.close()

    return run


def ledger_rebuild(store: EventStore) -> Callable[[], tuple[int, float]]:
    """``rebuild(store, SessionsProjection())``, with a progress line every ~10%."""
    total = store.last_position()

    def run() -> tuple[int, float]:
        progress = counter("rebuild", total, "events folded")
        start = time.perf_counter()
        count = rebuild(store, SessionsProjection(), progress)
        return count, time.perf_counter() - start

    return run
