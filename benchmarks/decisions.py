"""What recording the live cache's decisions costs a gateway's turns.

An :class:`ledger.AgentCache` records every decision that is not a plain ``hit`` in the key's
``decisions-*`` stream (on a background thread). A hit records nothing, so on a hit-heavy
workload the cost should be lost in the noise; this measures it, on the path users run.

Two caches on one ledger, ``record_decisions=True`` and ``False``, serve the same workload on
keys of their own, interleaved call by call so drift (the machine, the page cache) hits both
alike:

``hits``
    ``check`` of a key whose agent is cached and whose session did not move: the per-turn
    read of every turn but the first (``--calls`` per cache, 20,000 by default).
``turns``
    a gateway turn: ``check`` (a hit, or every ``--switch-every`` turns a switch to the key's
    other session, which IS recorded), the user's message and the reply through
    ``Ledger.append_message``, ``rebaseline``. ``--turns`` per cache (2,000).

Reported per workload: median and p99 in microseconds for each cache, the overhead of recording
(median ratio - 1; target < 5% on hits), decisions recorded, and the machine's load average. The
bare floor is in the same run: a raw ``SELECT sequence`` by primary key on the same database
(sqlite3 for SQLite), which is what a hit costs at the very least.

Usage::

    python benchmarks/decisions.py [--url URL] [--calls N] [--turns N] [--json]

With no ``--url`` it uses a temporary SQLite file; a PostgreSQL URL gets a temporary schema that
is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ledger import Ledger
from ledger.cache import AgentCache
from ledger.store.database import normalize_url


def _quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99) - 1] * 1e6


def _interleaved(calls: list[Callable[[int], Any]], count: int) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in calls]
    clock = time.perf_counter
    for n in range(count):
        order = range(len(calls)) if n % 2 == 0 else reversed(range(len(calls)))
        for index in order:
            start = clock()
            calls[index](n)
            samples[index].append(clock() - start)
    return samples


def _prepare(ledger: Ledger, cache: AgentCache, key: str) -> tuple[str, str]:
    first = ledger.open_session(key, session_id=f"{key}-a")
    second = ledger.open_session(key, session_id=f"{key}-b", reason="branch")
    ledger.switch_session(key, first)
    for sid in (first, second):
        decision = cache.check(key, sid, "sig")
        if not decision.reuse:
            cache.store(key, sid, "sig", object(), ticket=decision.ticket)
    return first, second


def run(url: str, calls: int, turns: int, switch_every: int) -> dict[str, Any]:
    """Measure both workloads on ``url``; returns the report."""
    with Ledger.open(url, writer="bench-gateway") as ledger:
        recording = ledger.cache(record_decisions=True)
        silent = ledger.cache(record_decisions=False)
        keys = {"recording": "bench:rec", "silent": "bench:off"}
        sessions = {
            name: _prepare(ledger, cache, keys[name])
            for name, cache in (("recording", recording), ("silent", silent))
        }
        recording.flush()
        raw: Callable[[int], Any]
        if ledger.store.engine.dialect.name == "sqlite":
            path = ledger.store.engine.url.database
            assert path is not None
            conn = sqlite3.connect(path)
            sid = sessions["silent"][0]
            raw = lambda _n: conn.execute(  # noqa: E731
                "SELECT sequence FROM session_heads WHERE session_id = ?", (sid,)
            ).fetchone()
        else:
            engine_conn = ledger.store.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
            query = sa.text("SELECT sequence FROM session_heads WHERE session_id = :sid")
            sid = sessions["silent"][0]
            raw = lambda _n: engine_conn.execute(query, {"sid": sid}).first()  # noqa: E731

        def hit(cache: AgentCache, name: str) -> Callable[[int], Any]:
            key, sid = keys[name], sessions[name][0]
            return lambda _n: cache.check(key, sid, "sig")

        hits = _interleaved([hit(recording, "recording"), hit(silent, "silent"), raw], calls)

        def gateway_turn(cache: AgentCache, name: str) -> Callable[[int], Any]:
            key = keys[name]
            current = {"sid": sessions[name][0]}

            def one(n: int) -> None:
                if switch_every and n % switch_every == switch_every - 1:
                    a, b = sessions[name]
                    current["sid"] = b if current["sid"] == a else a
                    ledger.switch_session(key, current["sid"])
                sid = current["sid"]
                cache.check(key, sid, "sig")
                ledger.append_message(sid, "user", f"turn {n}")
                cache.rebaseline(key, sid, ledger.append_message(sid, "assistant", "ok"))

            return one

        turn_samples = _interleaved(
            [gateway_turn(recording, "recording"), gateway_turn(silent, "silent")], turns
        )
        recording.flush()
        stats = recording.stats()
    report: dict[str, Any] = {"url": sa.make_url(url).render_as_string(), "load": os.getloadavg()}
    for name, samples in (("hits", hits), ("turns", turn_samples)):
        (rec_p50, rec_p99), (off_p50, off_p99) = _quantiles(samples[0]), _quantiles(samples[1])
        report[name] = {
            "recording_us": {"p50": rec_p50, "p99": rec_p99},
            "silent_us": {"p50": off_p50, "p99": off_p99},
            "overhead": rec_p50 / off_p50 - 1,
        }
    report["hits"]["raw_select_us"] = dict(zip(("p50", "p99"), _quantiles(hits[2]), strict=True))
    report["recorded_decisions"] = stats.recorded
    return report


def _scratch(url: str | None, stack: list[Callable[[], None]]) -> str:
    if url is None:
        folder = tempfile.mkdtemp(prefix="ledger-decisions-")
        return f"sqlite:///{Path(folder) / 'bench.db'}"
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()

    stack.append(drop)
    scoped = normalize_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print a table (or ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--turns", type=int, default=2_000)
    parser.add_argument("--switch-every", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cleanup: list[Callable[[], None]] = []
    try:
        url = _scratch(args.url, cleanup)
        if args.url is not None:
            from ledger.store import migration

            engine = sa.create_engine(url)
            migration.upgrade(engine)
            engine.dispose()
        report = run(url, args.calls, args.turns, args.switch_every)
    finally:
        for step in cleanup:
            step()
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    load = ", ".join(f"{x:.2f}" for x in report["load"])
    print(f"{report['url']}  (load average {load})")
    for name in ("hits", "turns"):
        row = report[name]
        rec, off = row["recording_us"], row["silent_us"]
        print(
            f"{name:<6} recording p50 {rec['p50']:8.1f} us  p99 {rec['p99']:8.1f} us | "
            f"not recording p50 {off['p50']:8.1f} us  p99 {off['p99']:8.1f} us | "
            f"overhead {row['overhead']:+.1%}"
        )
    raw = report["hits"]["raw_select_us"]
    print(f"raw SELECT sequence by key: p50 {raw['p50']:.1f} us  p99 {raw['p99']:.1f} us")
    print(f"decisions recorded: {report['recorded_decisions']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
