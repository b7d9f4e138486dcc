"""``ledger bench``: a quick, self-contained measurement of the hot paths on this machine.

It measures, in one run on a throwaway database, against the physical limit of the same write
in the same run:

* single-event appends through :meth:`EventStore.append` vs SQLAlchemy Core one-row commits;
* 1,000-event appends vs the driver's ``executemany`` of 1,000 rows in one transaction;
* the agent cache's per-turn head read (``SessionViews.live_sequence``), median and p99;
* replay throughput of all three guards over the log just written.

It never writes into a ledger. Without ``--url`` it runs on a temporary SQLite file. With a
PostgreSQL ``--url`` it runs in a temporary schema it creates and drops (so the server's disk
and settings are measured, not its data touched). A SQLite ``--url`` must be a scratch file:
one that holds a ledger is refused, and any other needs ``--scratch-ok``.

The fuller, interleaved benchmarks live in ``benchmarks/`` of the source tree.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import sqlalchemy as sa

from ledger.config import Settings
from ledger.errors import InvalidArgumentError
from ledger.events import MessageAppended, SessionOpened
from ledger.replay import replay
from ledger.store import EventStore, migration
from ledger.store.database import create_engine, normalize_url
from ledger.streams import session_stream
from ledger.views import SessionViews

__all__ = ["BenchReport", "run_bench", "scratch_database"]

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


@contextmanager
def scratch_database(url: str | None, *, scratch_ok: bool = False) -> Iterator[str]:
    """A URL bench may write to: a temporary file or schema, or a SQLite scratch file."""
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        schema = f"ledger_bench_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(parsed, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            try:
                scoped = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
                target = scoped.render_as_string(hide_password=False)
                engine = create_engine(target)
                try:
                    migration.upgrade(engine)
                finally:
                    engine.dispose()
                yield target
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            admin.dispose()
        return
    path = Path(parsed.database or "").expanduser()
    if path.is_file() and path.stat().st_size > 0:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if tables & {"events", "alembic_version"}:
            raise InvalidArgumentError(
                "--url", str(path), "a scratch database: this one holds a ledger, left untouched"
            )
    if not scratch_ok:
        raise InvalidArgumentError(
            "--url", str(path), "--scratch-ok to write benchmark data into this SQLite file"
        )
    yield url


def run_bench(
    url: str | None = None, *, singles: int = 500, batches: int = 10, scratch_ok: bool = False
) -> BenchReport:
    """Run every measurement on a throwaway database (see the module) and return the figures."""
    with scratch_database(url, scratch_ok=scratch_ok) as target:
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
                views.live_sequence("bench")
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
