"""``ledger bench``: a quick, self-contained measurement of the hot paths on this machine.

It measures, in one run on a scratch SQLite file (or on the database given with ``--url``,
where it appends to a ``session-bench`` stream and creates and drops a ``bench_rows`` table: give
it a scratch database), against the physical limit of the same write in the same run:

* single-event appends through :meth:`EventStore.append` vs SQLAlchemy Core one-row commits;
* 1,000-event appends vs the driver's ``executemany`` of 1,000 rows in one transaction;
* the agent cache's per-turn head read (``SessionViews.head_sequence``), median and p99;
* replay throughput of all three guards over the log just written.

The fuller, interleaved benchmarks live in ``benchmarks/`` of the source tree.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import sqlalchemy as sa

from ledger.config import Settings
from ledger.events import MessageAppended, SessionOpened
from ledger.replay import replay
from ledger.store import EventStore
from ledger.store.database import create_engine
from ledger.streams import session_stream
from ledger.views import SessionViews

__all__ = ["BenchReport", "run_bench"]

_PAYLOAD = "x" * 200


class BenchReport(msgspec.Struct, kw_only=True):
    """Events per second (or microseconds), with the baseline of the same run."""

    single_appends_per_s: float
    single_baseline_per_s: float
    single_ratio: float
    batch_events_per_s: float
    batch_baseline_per_s: float
    batch_ratio: float
    head_read_median_us: float
    head_read_p99_us: float
    replay_events_per_s: float


def _rate(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def _baseline_table() -> sa.Table:
    return sa.Table(
        "bench_rows",
        sa.MetaData(),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.String(300), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.UniqueConstraint("stream", "sequence"),
    )


def _message(session: str, index: int) -> MessageAppended:
    return MessageAppended(
        session_id=session, message_id=f"m{index}", role="user", content=_PAYLOAD
    )


def run_bench(url: str | None = None, *, singles: int = 500, batches: int = 10) -> BenchReport:
    """Run every measurement and return the figures."""
    with tempfile.TemporaryDirectory() as folder:
        target = url or f"sqlite:///{Path(folder) / 'bench.db'}"
        settings = Settings.from_env()
        engine = create_engine(target, settings)
        table = _baseline_table()
        table.create(engine)
        row = {"stream": "s", "data": _PAYLOAD.encode()}
        sequence = iter(range(1, 10**9))

        def core_singles() -> None:
            for _ in range(singles):
                with engine.begin() as conn:
                    values = {**row, "sequence": next(sequence), "event_id": str(uuid.uuid4())}
                    conn.execute(table.insert(), values)

        def core_batches() -> None:
            for _ in range(batches):
                with engine.begin() as conn:
                    rows = [
                        {**row, "sequence": next(sequence), "event_id": str(uuid.uuid4())}
                        for _ in range(1000)
                    ]
                    conn.execute(table.insert(), rows)

        # A bare log (no inline views): the row-for-row comparison with the baseline.
        with EventStore.open(
            target, writer="bench", settings=settings, inline_projections=()
        ) as store:
            store.append(
                session_stream("bench"),
                [
                    SessionOpened(
                        session_id="bench", session_key="bench", source="cli", reason="new"
                    )
                ],
            )
            counter = iter(range(10**9))

            def ledger_singles() -> None:
                for _ in range(singles):
                    store.append(session_stream("bench"), [_message("bench", next(counter))])

            def ledger_batches() -> None:
                for _ in range(batches):
                    events = [_message("bench", next(counter)) for _ in range(1000)]
                    store.append(session_stream("bench"), events)

            single = _rate(singles, ledger_singles)
            single_base = _rate(singles, core_singles)
            batch = _rate(batches * 1000, ledger_batches)
            batch_base = _rate(batches * 1000, core_batches)
            views = SessionViews(store.engine)
            samples = []
            for _ in range(2000):
                started = time.perf_counter()
                views.head_sequence("bench")
                samples.append((time.perf_counter() - started) * 1e6)
            samples.sort()
            total = store.last_position()
            replay_rate = _rate(total, lambda: _replay(store))
        table.drop(engine)
        engine.dispose()
    return BenchReport(
        single_appends_per_s=single,
        single_baseline_per_s=single_base,
        single_ratio=single / single_base,
        batch_events_per_s=batch,
        batch_baseline_per_s=batch_base,
        batch_ratio=batch / batch_base,
        head_read_median_us=statistics.median(samples),
        head_read_p99_us=samples[int(len(samples) * 0.99)],
        replay_events_per_s=replay_rate,
    )


def _replay(store: EventStore) -> None:
    replay(store.read_all(batch_size=5000))
