"""How late the asyncio event loop runs while a gateway's turns go through the agent cache.

An asyncio gateway serves every chat from one event loop: while a coroutine holds the loop, no
other chat is read, answered or sent, and timers (typing indicators, heartbeats, timeouts) fire
late. So the figure that matters for :class:`ledger.cache.AsyncAgentCache` and
:class:`ledger.AsyncLedger` is not only how many turns they serve, but how long the loop goes
without running anything else. A ticker coroutine measures it: ``await asyncio.sleep(0.001)`` in
a loop, recording each time ``lateness = elapsed - 0.001`` (p50, p99, max in ms; ``stalled`` is
the share of the wall time spent in stalls over 10 ms, lateness weighted by how long it lasted:
one 300 ms stall is one tick among hundreds, but a third of a second without the loop).

Each round runs ``--turns`` (100) concurrent turns spread over ``--keys`` (20) chats, each turn
the path of a gateway:

``AsyncAgentCache`` (``aledger.cache()``)
    ``get_or_build`` (the build awaits ``asyncio.sleep(0.2)``: an expensive agent), then
    ``aledger.transcript``, ``aledger.append_message`` of the user's message and of the reply,
    and ``cache.rebaseline`` with the reply's result. Every database call runs on the
    ``AsyncLedger``'s worker pool (8 threads).
``AgentCache on the loop`` (the baseline, in the same run)
    the same turn through the synchronous API called straight from the coroutine:
    ``aledger.ledger.cache()`` (``check``, then ``store`` after the build, ``rebaseline``) and
    ``aledger.ledger.transcript`` / ``append_message``. Each call blocks the loop for as long as
    the database takes, and 100 coroutines ready at once run their blocking calls back to back
    before the ticker gets a turn; and the synchronous cache tells builders apart by thread, so
    coroutines of one thread all build on a miss. This is the gateway ``AsyncAgentCache`` exists
    to replace.

The signature (the agent's configuration) changes ``--signatures`` - 1 times over the
``--rounds`` (10) rounds, in equal blocks, so a rebuild follows each change: the expected
builds are one per key per signature (``--keys`` x ``--signatures``: 40), however many turns of
a key wait for the build. The contenders run interleaved, a round of each in an order that
rotates from round to round, each on keys of its own in one ledger, so drift hits both alike.
The sessions are opened and every worker thread has its connection before the first round, as
in a gateway that has been up a while. Before and after everything, the ticker runs alone for
``--idle`` seconds (2): the loop's own floor on this machine (the OS timer, other programs).

Garbage collection stops the loop too: a collection holds the GIL, whichever thread runs it, and
a full one walks every object of the process, most of them the imported libraries' (SQLAlchemy,
psycopg, alembic: some 80,000 objects, tens of ms on a slow core). ``gc ms`` is the longest
collection during a contender's rounds, so a stall can be told apart from a blocking call.
``--freeze`` calls ``gc.freeze()`` after the set-up, as a latency-minded gateway does after its
start-up: collections then skip what was there before, so the stalls left are this workload's.

Target (SQLite, 100 concurrent turns): worst lateness under 20 ms with ``AsyncAgentCache``. The
baseline has no target; it shows what the target is about. Throughput (``turns/s``) is shown for
both; the baseline's is not a goal either (it serialises everything on one thread).

SQLite runs in a fresh temporary folder (``--dir``: its parent) with ``synchronous`` from
``--synchronous`` (default ``$LEDGER_SQLITE_SYNCHRONOUS``, else FULL); PostgreSQL with
``--postgres URL`` (default ``$LEDGER_TEST_POSTGRES_URL``; '' skips), in a schema made for the
run and dropped at the end. The machine's load is part of the result: per contender and idle
floor, the share of all cores busy (``busy``, from ``/proc/stat``) and the share that was not
this process's CPU time (``others``: other programs, the kernel's I/O work, the PostgreSQL
server's work for this run). The run is called BUSY when other work took more than 15% of the
cores during an idle floor (when this process only ticks); load averages are printed too.
Progress goes to stderr, the table to stdout; with ``--json`` the table goes to stderr and
stdout holds one JSON object with every figure.

    .venv/bin/python benchmarks/cache_loop.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/cache_loop.py --quick     # 2 rounds, 0.3 s idle floors
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from _harness.databases import CONTENT, scratch_folder
from _harness.machine import cpu_jiffies, engine_pragmas, sqlite_environment
from _harness.output import (
    RunOptions,
    add_run_arguments,
    document_head,
    emit,
    header_lines,
    log,
    on_backends,
    run_options,
    verdict,
)
from _harness.postgres import migrated_schema, postgres_settings, psycopg_connect
from _harness.timing import percentile, rotation

from ledger import AgentCache, AsyncAgentCache, AsyncLedger, Ledger
from ledger.config import Settings

TURNS = 100
KEYS = 20
ROUNDS = 10
SIGNATURES = 2
IDLE_SECONDS = 2.0
#: What building an agent costs (loading tools, warming a client): awaited, never blocking.
BUILD_SECONDS = 0.2
#: The ticker's sleep; lateness is what it took beyond this.
TICK = 0.001
TARGET_MAX_MS = 20.0
#: A tick later than this is a stall (the idle loop's own lateness stays far below it).
STALL_MS = 10.0
#: The target is stated for this many concurrent turns (on SQLite, for AsyncAgentCache).
TARGET_TURNS = 100
WRITER = "bench:cache-loop"
ASYNC = "AsyncAgentCache"
BLOCKING = "AgentCache on the loop"
SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")
#: A machine is noted as busy when other processes used more than this share of its cores.
BUSY_OTHERS = 0.15

#: One turn: (session key, session id, signature, the user's text).
Turn = Callable[[str, str, str, str], Awaitable[None]]


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options(RunOptions):
    """What to run, from the command line."""

    turns: int
    keys: int
    rounds: int
    signatures: int
    idle: float
    freeze: bool
    synchronous: str


@dataclass(slots=True)
class Loop:
    """What the ticker saw while something ran, and what the machine did meanwhile."""

    lateness_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    busy_ticks: int = 0
    total_ticks: int = 0
    #: Garbage-collection passes meanwhile (any thread's): (generation, pause in ms).
    gc_pauses: list[tuple[int, float]] = field(default_factory=list)

    def add(self, other: Loop) -> None:
        self.lateness_ms += other.lateness_ms
        self.gc_pauses += other.gc_pauses
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.busy_ticks += other.busy_ticks
        self.total_ticks += other.total_ticks

    @property
    def machine_busy(self) -> float:
        """The share of all cores busy meanwhile (any program's work)."""
        return self.busy_ticks / self.total_ticks if self.total_ticks else 0.0

    @property
    def stalled(self) -> float:
        """The share of the wall time the loop spent in stalls over ``STALL_MS``."""
        return sum(x for x in self.lateness_ms if x > STALL_MS) / 1000 / self.seconds

    @property
    def others(self) -> float:
        """The share of all cores other processes used: busy time less this process's CPU."""
        if not self.total_ticks:
            return 0.0
        cores = os.cpu_count() or 1
        busy_seconds = self.machine_busy * self.seconds * cores
        return max(0.0, busy_seconds - self.cpu_seconds) / (self.seconds * cores)

    def figures(self) -> dict[str, Any]:
        late = self.lateness_ms
        return {
            "ticks": len(late),
            "lateness_p50_ms": round(percentile(late, 0.5), 3),
            "lateness_p99_ms": round(percentile(late, 0.99), 3),
            "lateness_max_ms": round(max(late), 3),
            "stalled_share": round(self.stalled, 4),
            "seconds": round(self.seconds, 3),
            "process_cpu_seconds": round(self.cpu_seconds, 3),
            "machine_busy": round(self.machine_busy, 3),
            "others_share": round(self.others, 3),
            "gc_collections": len(self.gc_pauses),
            "gc_full_collections": sum(1 for generation, _ in self.gc_pauses if generation == 2),
            "gc_max_pause_ms": round(self.gc_max_ms, 3),
        }

    @property
    def gc_max_ms(self) -> float:
        """The longest garbage-collection pause meanwhile (0: none)."""
        return max((pause for _, pause in self.gc_pauses), default=0.0)


@dataclass(slots=True)
class Side:
    """One contender on one backend, over all its rounds."""

    backend: str
    contender: str
    expected_builds: int
    target_max_ms: float | None
    turns: int = 0
    builds: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    loop: Loop = field(default_factory=Loop)

    @property
    def turns_per_s(self) -> float:
        return self.turns / self.loop.seconds

    @property
    def meets_target(self) -> bool | None:
        if self.target_max_ms is None:
            return None
        return max(self.loop.lateness_ms) < self.target_max_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "contender": self.contender,
            "turns": self.turns,
            "turns_per_s": round(self.turns_per_s, 1),
            "builds": self.builds,
            "expected_builds": self.expected_builds,
            "decisions": dict(sorted(self.reasons.items())),
            **self.loop.figures(),
            "target_max_ms": self.target_max_ms,
            "meets_target": self.meets_target,
        }


@dataclass(slots=True)
class Report:
    """Everything measured in one run, with the database settings and the machine's load."""

    options: Options
    environment: dict[str, dict[str, str]] = field(default_factory=dict)
    idle: Loop = field(default_factory=Loop)
    idle_after: Loop = field(default_factory=Loop)
    sides: list[Side] = field(default_factory=list)
    load: dict[str, list[float]] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Event-loop lateness of concurrent gateway turns through AsyncAgentCache, against "
            "the synchronous AgentCache called on the loop."
        )
    )
    parser.add_argument("--turns", type=int, help=f"concurrent turns per round ({TURNS})")
    parser.add_argument("--keys", type=int, help=f"chats (session keys) they share ({KEYS})")
    parser.add_argument("--rounds", type=int, help=f"rounds per contender ({ROUNDS}; --quick: 2)")
    parser.add_argument(
        "--signatures",
        type=int,
        help=f"agent signatures over the run, in equal blocks of rounds ({SIGNATURES})",
    )
    parser.add_argument(
        "--idle",
        type=float,
        help=f"seconds of the idle-loop floor ({IDLE_SECONDS:g}; --quick: 0.3)",
    )
    parser.add_argument(
        "--synchronous",
        type=str.upper,
        choices=SYNCHRONOUS,
        help="SQLite PRAGMA synchronous (default: $LEDGER_SQLITE_SYNCHRONOUS, else FULL)",
    )
    parser.add_argument(
        "--freeze",
        action="store_true",
        help="gc.freeze() after the set-up, as a latency-minded gateway does after start-up",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: the --quick defaults")
    add_run_arguments(parser, files="file", postgres=True)
    args = parser.parse_args(argv)
    synchronous = args.synchronous or (os.environ.get("LEDGER_SQLITE_SYNCHRONOUS") or "FULL")
    if synchronous.upper() not in SYNCHRONOUS:
        parser.error(f"LEDGER_SQLITE_SYNCHRONOUS={synchronous}: one of {', '.join(SYNCHRONOUS)}")
    rounds, idle = (2, 0.3) if args.quick else (ROUNDS, IDLE_SECONDS)
    opts = Options(
        turns=TURNS if args.turns is None else args.turns,
        keys=KEYS if args.keys is None else args.keys,
        rounds=rounds if args.rounds is None else args.rounds,
        signatures=SIGNATURES if args.signatures is None else args.signatures,
        idle=idle if args.idle is None else args.idle,
        freeze=args.freeze,
        synchronous=synchronous.upper(),
        **run_options(args),
    )
    if min(opts.turns, opts.keys, opts.rounds, opts.signatures) < 1 or opts.idle <= 0:
        parser.error("--turns, --keys, --rounds and --signatures must be at least 1, --idle > 0")
    if opts.signatures > opts.rounds:
        parser.error("--signatures must not exceed --rounds (each needs a round of its own)")
    return opts


# -- the ticker --------------------------------------------------------------------------------


async def tick(lateness_ms: list[float], stop: asyncio.Event) -> None:
    """Sleep ``TICK`` until ``stop`` is set, recording how late each sleep came back (ms)."""
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(TICK)
        lateness_ms.append((time.perf_counter() - began - TICK) * 1000)


class GcWatch:
    """A ``gc.callbacks`` entry recording each collection's generation and pause (ms).

    A collection holds the GIL, so whichever thread runs it stops the loop too; a full one
    walks every object of the process (the imported libraries' included).
    """

    def __init__(self, pauses: list[tuple[int, float]]) -> None:
        self.pauses = pauses
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self.started) * 1000))


async def watched(work: Awaitable[object]) -> Loop:
    """Await ``work`` with the ticker running: what the loop, the garbage collector and the
    machine did meanwhile."""
    loop = Loop()
    stop = asyncio.Event()
    ticker = asyncio.create_task(tick(loop.lateness_ms, stop))
    watch = GcWatch(loop.gc_pauses)
    gc.callbacks.append(watch)
    busy, total = cpu_jiffies()
    cpu = time.process_time()
    started = time.perf_counter()
    try:
        await work
    finally:
        loop.seconds = time.perf_counter() - started
        stop.set()
        await ticker
        gc.callbacks.remove(watch)
    loop.cpu_seconds = time.process_time() - cpu
    busy_after, total_after = cpu_jiffies()
    loop.busy_ticks, loop.total_ticks = busy_after - busy, total_after - total
    return loop


async def idle_floor(seconds: float) -> Loop:
    """The ticker alone: the lateness the loop and the OS timer add with nothing else to do."""
    return await watched(asyncio.sleep(seconds))


# -- the turns ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Agent:
    """What a build makes: it answers from the transcript it is handed."""

    session_key: str
    signature: str

    def reply(self, transcript: Sequence[object]) -> str:
        return f"{CONTENT} ({len(transcript)} messages before this turn)"


def builder(side: Side, key: str, signature: str) -> Callable[[], Awaitable[Agent]]:
    """The expensive build of ``key``'s agent, counted in ``side.builds``."""

    async def build() -> Agent:
        side.builds += 1
        await asyncio.sleep(BUILD_SECONDS)
        return Agent(key, signature)

    return build


def async_turn(aledger: AsyncLedger, cache: AsyncAgentCache, side: Side) -> Turn:
    """A turn through ``AsyncAgentCache`` and ``AsyncLedger``: nothing blocks the loop."""

    async def turn(key: str, session_id: str, signature: str, text: str) -> None:
        agent, decision = await cache.get_or_build(
            key, session_id, signature, builder(side, key, signature)
        )
        side.reasons[decision.reason] += 1
        transcript = await aledger.transcript(session_id)
        await aledger.append_message(session_id, "user", text)
        result = await aledger.append_message(session_id, "assistant", agent.reply(transcript))
        await cache.rebaseline(key, session_id, result)

    return turn


def blocking_turn(ledger: Ledger, cache: AgentCache, side: Side) -> Turn:
    """The same turn through the synchronous ``AgentCache`` and ``Ledger``, on the loop."""

    async def turn(key: str, session_id: str, signature: str, text: str) -> None:
        decision = cache.check(key, session_id, signature)
        side.reasons[decision.reason] += 1
        if decision.reuse:
            agent: Agent = decision.agent
        else:
            try:
                agent = await builder(side, key, signature)()
            except BaseException:
                cache.abandon(key, ticket=decision.ticket)
                raise
            cache.store(key, session_id, signature, agent, ticket=decision.ticket)
        transcript = ledger.transcript(session_id)
        ledger.append_message(session_id, "user", text)
        result = ledger.append_message(session_id, "assistant", agent.reply(transcript))
        cache.rebaseline(key, session_id, result)

    return turn


def signature_of(round_index: int, opts: Options) -> str:
    """The agent's signature in a round: ``--signatures`` equal blocks of rounds."""
    return f"model-v{round_index * opts.signatures // opts.rounds + 1}"


async def play_round(
    turn: Turn, keys: Sequence[str], sessions: Sequence[str], round_index: int, opts: Options
) -> None:
    """``opts.turns`` concurrent turns, turn ``i`` on chat ``i % keys``."""
    signature = signature_of(round_index, opts)
    await asyncio.gather(
        *(
            turn(
                keys[i % len(keys)],
                sessions[i % len(keys)],
                signature,
                f"round {round_index + 1}, turn {i + 1}: what is the status of the deploy?",
            )
            for i in range(opts.turns)
        )
    )


# -- measuring ---------------------------------------------------------------------------------


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


async def run_cases(backend: str, aledger: AsyncLedger, opts: Options, report: Report) -> None:
    """Both contenders' rounds, interleaved in rotating order; then checks what they stored."""
    target = TARGET_MAX_MS if backend == "sqlite" and opts.turns == TARGET_TURNS else None
    expected = opts.keys * opts.signatures
    sides = [
        Side(backend, ASYNC, expected, target),
        Side(backend, BLOCKING, expected, None),
    ]
    keys = [[f"agent:main:bench:dm:{tag}-{i}" for i in range(opts.keys)] for tag in ("a", "s")]
    sessions = [
        [await aledger.ensure_session(key, source="bench") for key in keys[side]]
        for side in range(2)
    ]
    # Every worker thread and its connection exist before measuring, as in a running gateway.
    await asyncio.gather(*(aledger.head(sid) for ids in sessions for sid in ids))
    if opts.freeze:
        gc.collect()
        gc.freeze()
        log(f"{backend}: gc.freeze(): {gc.get_freeze_count():,} objects left out of collections")
    turns = [
        async_turn(aledger, aledger.cache(), sides[0]),
        blocking_turn(aledger.ledger, aledger.ledger.cache(), sides[1]),
    ]
    report.load[f"{backend}_before"] = load_average()
    for index in range(opts.rounds):
        for side in rotation(index, 2):
            work = play_round(turns[side], keys[side], sessions[side], index, opts)
            seen = await watched(work)
            sides[side].loop.add(seen)
            sides[side].turns += opts.turns
            late = seen.lateness_ms
            log(
                f"{backend} round {index + 1}/{opts.rounds} ({signature_of(index, opts)}): "
                f"{sides[side].contender}: {opts.turns / seen.seconds:,.0f} turns/s, "
                f"lateness max {max(late):.1f} ms over {len(late)} ticks, "
                f"machine CPU {seen.machine_busy:.0%} busy"
            )
    report.load[f"{backend}_after"] = load_average()
    if opts.freeze:
        gc.unfreeze()
    for contender, ids in zip(sides, sessions, strict=True):
        await verify(backend, aledger, contender, ids, opts)
    report.sides += sides


async def verify(
    backend: str, aledger: AsyncLedger, side: Side, sessions: Sequence[str], opts: Options
) -> None:
    """Every turn's two messages are in its chat's session."""
    for number, session_id in enumerate(sessions):
        turns = len(range(number, opts.turns, len(sessions))) * opts.rounds
        head = await aledger.head(session_id)
        if head is None or head.message_count != 2 * turns:
            found = None if head is None else head.message_count
            raise RuntimeError(
                f"{backend} {side.contender}: session {session_id} has {found} messages, "
                f"expected {2 * turns}"
            )
    log(f"{backend} {side.contender}: {side.turns * 2:,} messages stored, as sent")


# -- backends ----------------------------------------------------------------------------------


def run_sqlite(settings: Settings, report: Report) -> None:
    """SQLite: one ledger file in a fresh folder."""
    opts = report.options
    with scratch_folder(opts.directory) as folder:
        log(f"sqlite: file {folder / 'ledger.db'}")
        url = f"sqlite:///{folder / 'ledger.db'}"
        ledger = Ledger.open(url, writer=WRITER, settings=settings)
        report.environment["sqlite"] = sqlite_environment(engine_pragmas(ledger.store.engine))
        log(f"sqlite: {report.environment['sqlite']}")
        asyncio.run(on_ledger("sqlite", ledger, report))


def run_postgres(url: str, settings: Settings, report: Report) -> None:
    """PostgreSQL: the ledger's tables in a fresh schema, dropped afterwards."""
    with migrated_schema(url, settings) as schema_url:
        with psycopg_connect(schema_url) as conn:
            report.environment["postgresql"] = postgres_settings(conn)
        log(f"postgresql: {report.environment['postgresql']}")
        ledger = Ledger.open(schema_url, writer=WRITER, settings=settings)
        asyncio.run(on_ledger("postgresql", ledger, report))


async def on_ledger(backend: str, ledger: Ledger, report: Report) -> None:
    """Both contenders on ``ledger`` through one ``AsyncLedger`` (default pool), then close."""
    aledger = AsyncLedger(ledger)
    try:
        await run_cases(backend, aledger, report.options, report)
    finally:
        await aledger.close()  # stops the workers and closes ``ledger``


# -- output ------------------------------------------------------------------------------------


def machine_note(report: Report) -> str:
    """Whether other programs were busy, in a line: judged by what ran while the idle floor
    was measured, before and after (when this process did nothing but tick). The load average
    is not the judge: it trails by minutes, and counts a run just before this one."""
    floors = [loop.others for loop in (report.idle, report.idle_after) if loop.total_ticks]
    others = max(floors, default=0.0)
    shown = " / ".join(f"{share:.0%}" for share in floors)
    seen = f"other work kept {shown} of the cores busy during the idle floor before / after"
    if others > BUSY_OTHERS:
        return f"the machine was BUSY ({seen}): every figure is pessimistic"
    return f"the machine was otherwise quiet ({seen})"


def print_table(report: Report, out: TextIO) -> None:
    """The results as one fixed-width table."""
    opts = report.options
    detail = (
        f"{opts.turns} concurrent turns over {opts.keys} keys, {opts.rounds} interleaved rounds, "
        f"{opts.signatures} signature(s), build {BUILD_SECONDS * 1000:.0f} ms; "
        f"AsyncLedger default pool (8 workers); "
        + ("gc.freeze() after the set-up" if opts.freeze else "garbage collector as Python sets it")
    )
    for line in header_lines(report.environment, detail):
        print(line, file=out)
    shown = "; ".join(f"{k} {' '.join(map(str, v))}" for k, v in report.load.items())
    print(f"{os.cpu_count()} cores; load average (1/5/15 min): {shown}", file=out)
    print(machine_note(report), file=out)
    print(
        f"{'backend':<11}{'turns via':<24}{'turns/s':>8}{'builds':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>9}{'stalled':>8}{'gc ms':>7}{'busy':>6}{'others':>7}  target",
        file=out,
    )
    rows: list[tuple[str, str, str, str, Loop, str]] = [
        ("-", "idle loop, before", "-", "-", report.idle, "(floor)")
    ]
    for s in report.sides:
        goal = verdict(s.target_max_ms, s.meets_target, "max < {:g} ms", "ABOVE")
        rows.append((s.backend, s.contender, f"{s.turns_per_s:,.0f}", str(s.builds), s.loop, goal))
    rows.append(("-", "idle loop, after", "-", "-", report.idle_after, "(floor)"))
    for backend, contender, rate, builds, loop, goal in rows:
        d = loop.figures()
        print(
            f"{backend:<11}{contender:<24}{rate:>8}{builds:>7}{d['lateness_p50_ms']:>8.2f}"
            f"{d['lateness_p99_ms']:>8.2f}{d['lateness_max_ms']:>9.1f}"
            f"{d['stalled_share']:>8.1%}{loop.gc_max_ms:>7.1f}{loop.machine_busy:>6.0%}"
            f"{loop.others:>7.0%}  {goal}",
            file=out,
        )
    print(
        f"\nbuilds: expected one per key per signature ({opts.keys} x {opts.signatures} = "
        f"{opts.keys * opts.signatures}); lateness: how late a 1 ms asyncio.sleep came back; "
        f"stalled: the share of the wall time in stalls over {STALL_MS:g} ms; gc: the longest "
        "garbage-collection pause (any thread's: it holds the GIL, so the loop waits); busy: "
        "the share of all cores busy; others: the share not this process's CPU time (other "
        "programs, the kernel's I/O work, a database server)",
        file=out,
    )


def document(report: Report) -> dict[str, Any]:
    """The JSON document: options, revision, machine, database settings, both contenders."""
    return {
        **document_head(report.options),
        "build_seconds": BUILD_SECONDS,
        "tick_seconds": TICK,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average": report.load,
            "note": machine_note(report),
        },
        "environment": report.environment,
        "idle_loop": report.idle.figures(),
        "idle_loop_after": report.idle_after.figures(),
        "results": [side.as_dict() for side in report.sides],
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    report = Report(opts)
    report.load["start"] = load_average()
    log(f"idle loop, before: the ticker alone for {opts.idle:g} s")
    report.idle = asyncio.run(idle_floor(opts.idle))
    settings = Settings.from_env({"LEDGER_SQLITE_SYNCHRONOUS": opts.synchronous})
    on_backends(opts.postgres, settings, report, run_sqlite, run_postgres)
    log(f"idle loop, after: the ticker alone for {opts.idle:g} s")
    report.idle_after = asyncio.run(idle_floor(opts.idle))
    return emit(report, print_table, document, opts.as_json)


if __name__ == "__main__":
    sys.exit(main())
