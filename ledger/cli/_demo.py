"""``ledger demo``: a chat gateway serving several platforms for a few seconds, on the real API.

Users on Telegram, Discord, Slack and the CLI send messages; now and then one types ``/new``,
``/resume`` (back to an earlier session), ``/undo``, ``/retry`` (the last answer taken back and
written anew), or ``/compress``
(a child session). A second OS process, a "scheduler" with its own writer id, appends reminders
to some sessions meanwhile. Every turn goes through :class:`~ledger.AgentCache` (``check``, then
``store`` or ``rebaseline``), exactly as a gateway would wire it. At the end the log is replayed
to compare the three guards: the mutable counter, the Hermes 4-tuple fix, and this ledger.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from typing import Any

from ledger.cache import AgentCache, CacheStats
from ledger.errors import LedgerError
from ledger.facade import Ledger
from ledger.replay import ReplayReport, replay

__all__ = ["DemoResult", "run_demo"]

PLATFORMS = ("telegram", "discord", "slack", "cli")
MODELS = ("claude-sonnet", "gpt-5")
#: Each command with the cumulative chance that a turn starts with it.
_COMMANDS = (
    ("/new", 0.05),
    ("/resume", 0.15),
    ("/undo", 0.18),
    ("/retry", 0.21),
    ("/compress", 0.23),
)
QUESTIONS = (
    "what is the weather tomorrow?",
    "summarise the meeting notes",
    "draft a reply to Alice",
    "how do I undo a git commit?",
    "translate this to French",
    "remind me about the dentist",
)


@dataclass
class DemoResult:
    """What the demo did: counts from the live cache and the replayed comparison."""

    run_id: str
    turns: int = 0
    agents_built: int = 0
    reused: int = 0
    commands: dict[str, int] = field(default_factory=dict)
    foreign_writes: int = 0
    keys: list[str] = field(default_factory=list)
    report: ReplayReport | None = None
    stats: CacheStats | None = None


def _scheduler(url: str, queue: Any, ready: EventType, stop: EventType, seed: int) -> None:
    """The second process: appends reminders to sessions it hears about, as another writer."""
    rng = random.Random(seed)
    known: list[str] = []
    written = 0
    with Ledger.open(url, writer=f"scheduler:{multiprocessing.current_process().pid}") as ledger:
        ready.set()
        while not stop.is_set():
            while not queue.empty():
                known.append(queue.get())
            if known:
                try:
                    ledger.append_message(rng.choice(known), "assistant", "⏰ reminder: stand-up")
                    written += 1
                except LedgerError:
                    pass  # the session was closed meanwhile; a real scheduler would skip it too
            stop.wait(rng.uniform(0.05, 0.25))
    queue.put(("written", written))


class _Gateway:
    """The simulated gateway: per key an active session and a cached agent."""

    def __init__(self, ledger: Ledger, run_id: str, rng: random.Random, log: Callable[[str], None]):
        self.ledger = ledger
        self.rng = rng
        self.log = log
        self.cache: AgentCache = ledger.cache(max_entries=64)
        self.result = DemoResult(run_id=run_id)
        self.sessions: dict[str, list[str]] = {}
        self.models: dict[str, str] = {}

    def new_key(self, index: int) -> str:
        platform = PLATFORMS[index % len(PLATFORMS)]
        key = f"agent:main:{platform}:dm:{self.result.run_id}-{index}"
        self.models[key] = MODELS[index % len(MODELS)]
        self.sessions[key] = [self.open(key, "new")]
        self.result.keys.append(key)
        return key

    def open(self, key: str, reason: str, parent: str | None = None) -> str:
        platform = key.split(":")[2]
        return self.ledger.open_session(
            key, source=platform, reason=reason, parent_session_id=parent, model=self.models[key]
        )

    def command(self, key: str, name: str) -> str | None:
        self.result.commands[name] = self.result.commands.get(name, 0) + 1
        active = self.ledger.active_session(key)
        assert active is not None
        if name == "/new":
            self.sessions[key].append(self.open(key, "new"))
        elif name == "/resume":
            choices = [s for s in self.sessions[key] if s != active]
            if not choices:
                return None
            self.ledger.switch_session(key, self.rng.choice(choices), reason="resume")
        elif name == "/undo":
            head = self.ledger.head(active)
            if head is None or head.message_count < 2:
                return None
            self.ledger.retract_messages(active, 2, reason="undo")
        elif name == "/retry":
            # Take back the last answer and write a new one: the count ends where it was
            # (the undo-then-append case a counter cannot see).
            head = self.ledger.head(active)
            if head is None or head.message_count < 2:
                return None
            self.ledger.retract_messages(active, 1, reason="retry")
            self.ledger.append_message(active, "assistant", "Let me try that again.")
        elif name == "/compress":
            self.sessions[key].append(self.open(key, "compress", parent=active))
        return self.ledger.active_session(key)

    def turn(self, key: str) -> None:
        session_id = self.ledger.active_session(key)
        assert session_id is not None
        signature = self.models[key]
        decision = self.cache.check(key, session_id, signature)
        self.result.turns += 1
        if decision.action == "reuse":
            self.result.reused += 1
        else:
            self.result.agents_built += 1
            self.cache.store(key, session_id, signature, object())
            if decision.action == "rebuild":
                self.log(f"  rebuild {key} [{decision.reason}] {decision.baseline}→{decision.live}")
        question = self.rng.choice(QUESTIONS)
        self.ledger.append_message(session_id, "user", question)
        result = self.ledger.append_message(session_id, "assistant", f"Here you go: {question}")
        self.cache.rebaseline(key, session_id, result)


def run_demo(
    ledger: Ledger,
    *,
    turns: int = 400,
    keys: int = 12,
    seed: int = 7,
    foreign_process: bool = True,
    pace: float = 0.004,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the simulation on ``ledger`` and replay it; returns the counts for the summary."""
    rng = random.Random(seed)
    run_id = f"demo{int(time.time())}"
    gateway = _Gateway(ledger, run_id, rng, log)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    ready = context.Event()
    stop = context.Event()
    url = ledger.store.engine.url.render_as_string(hide_password=False)
    worker = context.Process(target=_scheduler, args=(url, queue, ready, stop, seed), daemon=True)
    if foreign_process:
        worker.start()
        ready.wait(timeout=60)
    all_keys = [gateway.new_key(i) for i in range(keys)]
    for key in all_keys:
        queue.put(gateway.sessions[key][0])
    for number in range(turns):
        key = rng.choice(all_keys)
        roll = rng.random()
        name = next((cmd for cmd, upto in _COMMANDS if roll < upto), None)
        if name is not None:
            active = gateway.command(key, name)
            if active is not None:
                log(f"{number:4d} {key} {name} → {active}")
                queue.put(active)
        gateway.turn(key)
        time.sleep(pace)
    if foreign_process:
        stop.set()
        worker.join(timeout=30)
        while not queue.empty():
            item = queue.get()
            if isinstance(item, tuple) and item[0] == "written":
                gateway.result.foreign_writes = int(item[1])
    result = gateway.result
    gateway.cache.flush()  # its recorded decisions, so the replay shows them beside the guards
    result.stats = gateway.cache.stats()
    result.report = replay(ledger.read_all(), keys=all_keys)
    return result
