"""The scheduler's job table: JSON job state, no database URL, no pickle ever loaded."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from ledger import EventStore
from ledger.cli import cli
from ledger.maintenance import history
from ledger.maintenance.scheduler import JobSpec, build_scheduler, load_schedule
from ledger.schema import apscheduler_jobs

SPECS = [
    JobSpec(job="keys", every=3600.0, options={"older_than": "7d"}),
    JobSpec(job="vacuum", cron="0 3 * * *"),
]


class _Marker:
    """Unpickling this creates ``path``: proof that a job row was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


@pytest.fixture
def started(store: EventStore) -> Iterator[BackgroundScheduler]:
    """A started (paused) scheduler on ``store`` with :data:`SPECS` in its job table."""
    scheduler = build_scheduler(store, SPECS, BackgroundScheduler(timezone=dt.UTC))
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)


def _rows(store: EventStore) -> dict[str, tuple[float | None, bytes]]:
    table = apscheduler_jobs
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.next_run_time, table.c.job_state))
        return {id_: (when, bytes(state)) for id_, when, state in rows}


def _plant(store: EventStore, job_id: str, state: bytes) -> None:
    with store.engine.begin() as conn:
        conn.execute(apscheduler_jobs.delete().where(apscheduler_jobs.c.id == job_id))
        conn.execute(
            apscheduler_jobs.insert().values(id=job_id, next_run_time=0.0, job_state=state)
        )


def test_the_job_table_holds_json_without_the_database_url(database_url: str) -> None:
    """With a password in the URL, no stored job row carries it, nor any part of the URL."""
    from ledger.store import migration
    from ledger.store.database import create_engine

    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password="s3cret")  # trust authentication accepts any password
    text = url.render_as_string(hide_password=False)
    engine = create_engine(text)
    try:
        migration.upgrade(engine)
    finally:
        engine.dispose()
    with EventStore.open(text) as store:
        scheduler = build_scheduler(store, SPECS, BackgroundScheduler(timezone=dt.UTC))
        scheduler.start(paused=True)
        scheduler.shutdown(wait=False)
        rows = _rows(store)
    assert set(rows) == {"ledger-keys", "ledger-vacuum"}
    for _, state in rows.values():
        assert b"s3cret" not in state
        assert (url.database or "").encode() not in state
        assert b"url" not in state
        assert not state.startswith(b"\x80")  # no pickle
        decoded = msgspec.json.decode(state)
        assert decoded["spec"]["job"] in {"keys", "vacuum"}


def test_jobs_round_trip_through_json(store: EventStore, started: BackgroundScheduler) -> None:
    """A stored job comes back with its trigger, next run time and the scheduler's policy."""
    rows = _rows(store)
    keys = started.get_job("ledger-keys")
    assert keys is not None
    assert keys.next_run_time is not None
    assert keys.next_run_time.timestamp() == rows["ledger-keys"][0]
    assert keys.trigger.interval == dt.timedelta(hours=1)
    assert keys.trigger.start_date == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert (keys.coalesce, keys.max_instances, keys.misfire_grace_time) == (True, 1, 600)
    assert keys.kwargs["spec"] == msgspec.to_builtins(SPECS[0])
    assert "url" not in keys.kwargs
    vacuum = started.get_job("ledger-vacuum")
    assert vacuum is not None
    after = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    assert vacuum.trigger.get_next_fire_time(None, after) == dt.datetime(
        2026, 5, 2, 3, tzinfo=dt.UTC
    )
    # A changed next run time (what the scheduler writes after each run) is stored and read back.
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    started.modify_job("ledger-keys", next_run_time=later)
    again = started.get_job("ledger-keys")
    assert again is not None
    assert again.next_run_time == later
    assert _rows(store)["ledger-keys"][0] == later.timestamp()


def test_a_stored_job_runs_against_the_schedulers_store(
    store: EventStore, started: BackgroundScheduler
) -> None:
    """The job as read back from the table runs its job on the store the scheduler was given."""
    job = started.get_job("ledger-vacuum")
    assert job is not None
    job.func(*job.args, **job.kwargs)
    runs = history(store, job="vacuum")
    assert [run.status for run in runs] == ["ok"]
    assert runs[0].scheduled_for is not None


def test_a_planted_pickle_is_never_unpickled(
    store: EventStore,
    started: BackgroundScheduler,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A row holding a pickle (whoever wrote it) is dropped with a warning, never loaded."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Marker(marker))
    _plant(store, "planted", payload)
    with caplog.at_level(logging.WARNING):
        assert {job.id for job in started.get_jobs()} == {"ledger-keys", "ledger-vacuum"}
        _plant(store, "planted", payload)
        assert started.get_job("planted") is None
        _plant(store, "planted", payload)
        store_jobs = started._lookup_jobstore("default")
        due = store_jobs.get_due_jobs(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        assert {job.id for job in due} == {"ledger-keys", "ledger-vacuum"}
    assert not marker.exists()
    assert "planted" not in _rows(store)
    assert any("planted" in record.getMessage() for record in caplog.records)


def test_a_pickle_under_a_ledger_job_id_is_replaced_at_start(
    store: EventStore, tmp_path: Path
) -> None:
    """Starting a scheduler overwrites a planted ``ledger-*`` row with JSON, without loading it."""
    marker = tmp_path / "pwned"
    _plant(store, "ledger-keys", pickle.dumps(_Marker(marker)))
    scheduler = build_scheduler(store, SPECS, BackgroundScheduler(timezone=dt.UTC))
    scheduler.start(paused=True)
    try:
        assert {job.id for job in scheduler.get_jobs()} == {"ledger-keys", "ledger-vacuum"}
    finally:
        scheduler.shutdown(wait=False)
    assert not marker.exists()
    assert msgspec.json.decode(_rows(store)["ledger-keys"][1])["spec"]["job"] == "keys"


def test_scheduler_jobs_never_unpickles_the_table(
    store: EventStore, migrated_url: str, tmp_path: Path
) -> None:
    """``ledger scheduler jobs`` lists the configured jobs without loading any stored state."""
    marker = tmp_path / "pwned"
    _plant(store, "ledger-archive", pickle.dumps(_Marker(marker)))
    _plant(store, "planted", pickle.dumps(_Marker(marker)))
    result = CliRunner().invoke(cli, ["scheduler", "jobs", "--url", migrated_url, "--json"])
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    listed = {info["job"] for info in msgspec.json.decode(result.stdout)}
    assert listed == {spec.job for spec in load_schedule()}
