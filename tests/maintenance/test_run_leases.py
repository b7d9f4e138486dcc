"""A run's claim is a lease: a killed run does not stay ``running`` forever nor keep its slot.

On SQLite and PostgreSQL: a scheduled run whose runner died is taken over once its lease
expires (a real ``kill -9`` of a process in the middle of a job); a live run renews its lease,
so nobody takes it over; a run by hand whose process died is marked ``abandoned``.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import InvalidArgumentError, Ledger
from ledger.maintenance import JOBS, CompactionReport, history, run_job
from ledger.schema import compaction_runs
from ledger.store import EventStore

WHEN = dt.datetime(2030, 1, 1, 3, 0, tzinfo=dt.UTC)
CTX = multiprocessing.get_context("spawn")


def _sleepy(store: EventStore, *, dry_run: bool = False, seconds: float = 0.0) -> CompactionReport:
    """A job that takes ``seconds``."""
    time.sleep(seconds)
    return CompactionReport(job="sleepy", dry_run=dry_run)


@pytest.fixture(autouse=True)
def sleepy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(JOBS, "sleepy", _sleepy)


def _claim_and_hang(url: str, started: Any) -> None:
    """A scheduler process that claims the run, then hangs inside the job until killed."""
    JOBS["sleepy"] = _sleepy
    with EventStore.open(url) as store:
        started.set()
        run_job(store, "sleepy", scheduled_for=WHEN, runner="doomed", lease=1.0, seconds=600)


def test_a_killed_scheduled_run_is_taken_over_once_its_lease_expires(
    ledger: Ledger, migrated_url: str
) -> None:
    """kill -9 mid-job: the slot is blocked only until the lease lapses, then runs once."""
    started = CTX.Event()
    child = CTX.Process(target=_claim_and_hang, args=(migrated_url, started))
    child.start()
    assert started.wait(60)
    deadline = time.monotonic() + 30
    while not history(ledger.store) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.status for r in history(ledger.store)] == ["running"]
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(10)
    deadline = time.monotonic() + 30
    report = None
    while report is None and time.monotonic() < deadline:
        report = run_job(ledger.store, "sleepy", scheduled_for=WHEN, runner="rescuer", lease=1.0)
        time.sleep(0.2)
    assert report is not None
    (run,) = history(ledger.store)
    assert (run.runner, run.status) == ("rescuer", "ok")


def test_a_live_run_renews_its_lease_so_nobody_takes_it_over(
    ledger: Ledger, migrated_url: str
) -> None:
    """While a run works past several leases, a second claim of its slot returns None."""
    import threading

    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            run_job(ledger.store, "sleepy", scheduled_for=WHEN, runner="a", lease=0.6, seconds=2.5)
        )
    )
    worker.start()
    time.sleep(1.5)  # past two leases: only renewals keep the claim
    with Ledger.open(migrated_url) as other:
        assert run_job(other.store, "sleepy", scheduled_for=WHEN, runner="b", lease=0.6) is None
    worker.join(30)
    assert results
    assert results[0] is not None
    assert [(r.runner, r.status) for r in history(ledger.store)] == [("a", "ok")]


def test_a_run_by_hand_whose_process_died_is_marked_abandoned(ledger: Ledger) -> None:
    """A ``running`` row with an expired lease (its process gone) becomes ``abandoned``."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with ledger.store.transaction() as conn:
        conn.execute(
            compaction_runs.insert().values(
                job="archive",
                scheduled_for=None,
                runner="dead",
                dry_run=False,
                status="running",
                started_at=past,
                lease_until=past,
            )
        )
    run_job(ledger.store, "sleepy")
    statuses = {r.runner: r.status for r in history(ledger.store)}
    assert statuses["dead"] == "abandoned"
    assert statuses[ledger.store.writer] == "ok"


def test_a_finished_run_holds_no_lease(ledger: Ledger) -> None:
    """Once a run ends its lease is cleared (nothing to take over)."""
    run_job(ledger.store, "sleepy")
    with ledger.store.engine.connect() as conn:
        leases = conn.execute(sa.select(compaction_runs.c.lease_until)).scalars().all()
    assert leases == [None]


def test_a_lease_must_be_positive(ledger: Ledger) -> None:
    """``lease=0`` is a typed error, and nothing is recorded."""
    with pytest.raises(InvalidArgumentError, match="lease"):
        run_job(ledger.store, "sleepy", lease=0)
    assert history(ledger.store) == []
