"""The online rebuild of inline projections: appends go on, the views are swapped in whole.

``rebuild`` folds the log into shadow tables in short transactions and swaps them in at the
end; these tests hold it between batches (through its progress callback, which runs while no
transaction is open) to append, purge or fail midway, and check what the views and the schema
look like afterwards. Waiting for another thread uses a generous timeout as failure detection,
never as a measurement.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import ConfigurationError, EventStore, Ledger, RebuildRunningError
from ledger.config import Settings
from ledger.maintenance import retention
from ledger.schema import session_heads
from ledger.store import migration
from ledger.views import SessionViews
from projections.keys import KeysProjection
from projections.rebuild import _SWAP_LAG, REBUILD_LOCK_ID, _OnlineRebuild, rebuild, verify
from projections.sessions import SessionsProjection
from projections.snapshot import snapshot
from tests import controls

#: How long a test waits for another thread before it calls the rebuild stuck.
PATIENCE_S = 60.0


class Interrupted(Exception):
    """Raised by a progress callback to stop a rebuild midway."""


def _seed(ledger: Ledger, sessions: int = 3, messages: int = 4) -> list[str]:
    """``sessions`` open sessions of ``messages`` messages each; returns their ids."""
    ids = []
    for n in range(sessions):
        sid = ledger.open_session(f"cli:k{n}", session_id=f"s{n}")
        for i in range(messages):
            ledger.append_message(sid, "user", f"message {i} of {sid}")
        ids.append(sid)
    return ids


def _in_thread(work: Callable[[], Any]) -> None:
    """Run ``work`` on another thread and fail unless it finishes within the patience."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PATIENCE_S)
    assert not thread.is_alive(), "the append did not complete while the rebuild was paused"
    if errors:
        raise errors[0]


def _schema(engine: sa.Engine) -> dict[str, Any]:
    """Every table with its columns, primary key, indexes and unique constraints."""
    inspector = sa.inspect(engine)
    found: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        found[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), ix["unique"])
                for ix in inspector.get_indexes(table)
            ),
            "uniques": sorted(
                (uq["name"], tuple(uq["column_names"]))
                for uq in inspector.get_unique_constraints(table)
            ),
        }
    return found


def _message_ids(store: EventStore) -> set[str]:
    """The message ids of every ``MessageAppended`` in the log."""
    return {r.event.message_id for r in store.read_all() if r.type == "MessageAppended"}  # type: ignore[attr-defined]


def _transcript_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT message_id FROM transcript_messages")).scalars())


def test_a_rebuild_with_concurrent_appends_loses_no_message(ledger: Ledger) -> None:
    """Appends on another thread between every batch all end up in the rebuilt transcript."""
    ids = _seed(ledger)
    store = ledger.store

    def append_some(_: int) -> None:
        _in_thread(lambda: [ledger.append_message(sid, "assistant", "during") for sid in ids])

    rebuild(store, SessionsProjection(), append_some, batch_size=3)
    assert _transcript_ids(store.engine) == _message_ids(store)
    assert verify(store, SessionsProjection()) == []
    head = ledger.head("s0")
    assert head is not None
    assert head.message_count == len(ledger.transcript("s0"))


def test_an_append_completes_while_a_rebuild_is_midway(ledger: Ledger) -> None:
    """A rebuild paused between batches holds no lock: an append goes through meanwhile."""
    (sid,) = _seed(ledger, sessions=1, messages=6)
    done: list[int] = []

    def pause(_: int) -> None:
        if not done:
            _in_thread(lambda: done.append(ledger.append_message(sid, "user", "mid").sequence))

    rebuild(ledger.store, SessionsProjection(), pause, batch_size=2)
    assert done, "the rebuild never paused between batches"
    head = ledger.head(sid)
    assert head is not None
    assert head.sequence == done[0]
    assert [m.content for m in ledger.transcript(sid)][-1] == "mid"


def test_the_schema_after_a_swap_equals_the_migrated_schema(ledger: Ledger) -> None:
    """Tables, columns, keys, indexes and unique constraints are as the migrations made them,
    and no shadow or retired table is left."""
    _seed(ledger)
    before = _schema(ledger.store.engine)
    rebuild(ledger.store, SessionsProjection())
    rebuild(ledger.store, KeysProjection())
    assert _schema(ledger.store.engine) == before


def test_a_database_downgrades_after_a_swap(ledger: Ledger) -> None:
    """``ledger db downgrade`` finds every index and constraint it drops by name."""
    _seed(ledger)
    rebuild(ledger.store, SessionsProjection())
    migration.downgrade(ledger.store.engine, "0006")
    migration.upgrade(ledger.store.engine)
    assert "session_usage" in sa.inspect(ledger.store.engine).get_table_names()


def test_one_shot_appends_work_after_a_swap(ledger: Ledger) -> None:
    """The single-message shortcut (SQLite's raw statements, PostgreSQL's server function,
    both cached per connection before the swap) writes to the swapped-in views."""
    (sid,) = _seed(ledger, sessions=1, messages=8)  # enough calls to cache the statements
    assert ledger.store.one_shot.enabled
    rebuild(ledger.store, SessionsProjection())
    after = [ledger.append_message(sid, "user", f"after {i}").sequence for i in range(6)]
    head = ledger.head(sid)
    assert head is not None
    assert (head.sequence, head.message_count) == (after[-1], 8 + 6)
    assert verify(ledger.store, SessionsProjection()) == []


def test_an_interrupted_rebuild_leaves_the_views_intact_and_the_next_one_succeeds(
    ledger: Ledger,
) -> None:
    """An exception between batches stops the rebuild; the live views still verify clean, and
    a second rebuild (which drops any leftover shadow) completes."""
    ids = _seed(ledger)
    views = SessionViews(ledger.store.engine)
    heads_before = [views.head(sid) for sid in ids]

    def fail(_: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        rebuild(ledger.store, SessionsProjection(), fail, batch_size=2)
    assert [views.head(sid) for sid in ids] == heads_before
    assert verify(ledger.store, SessionsProjection()) == []
    ledger.append_message(ids[0], "user", "after the interruption")
    assert rebuild(ledger.store, SessionsProjection()) == sum(1 for _ in ledger.read_all())
    assert verify(ledger.store, SessionsProjection()) == []


def test_a_rebuild_drops_a_leftover_shadow_table(ledger: Ledger) -> None:
    """A shadow left by a rebuild killed outright (with rows in it) is replaced, not reused."""
    _seed(ledger, sessions=1)
    with ledger.store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE session_heads__rebuild (junk INTEGER)"))
        conn.execute(sa.text("INSERT INTO session_heads__rebuild VALUES (1)"))
    rebuild(ledger.store, SessionsProjection())
    assert verify(ledger.store, SessionsProjection()) == []
    assert "session_heads__rebuild" not in sa.inspect(ledger.store.engine).get_table_names()


def test_a_rebuild_from_a_snapshot_folds_only_later_events(ledger: Ledger) -> None:
    """``from_snapshot`` seeds the shadow from the snapshot, then folds what came after."""
    (sid,) = _seed(ledger, sessions=1, messages=3)
    snapshot(ledger.store)
    ledger.append_message(sid, "user", "after the snapshot")
    assert rebuild(ledger.store, SessionsProjection(), from_snapshot=True) == 1
    head = ledger.head(sid)
    assert head is not None
    assert head.message_count == 4
    assert verify(ledger.store, SessionsProjection()) == []


def test_a_session_purged_during_a_rebuild_stays_purged(ledger: Ledger) -> None:
    """A retention purge between batches: the swapped-in views keep only its tombstone."""
    ids = _seed(ledger)
    ledger.store.append("session-s1", [controls.closed("s1")])
    purged: list[int] = []

    def purge(_: int) -> None:
        if not purged:
            purged.append(retention(ledger.store, older_than=dt.timedelta(0)).sessions)

    rebuild(ledger.store, SessionsProjection(), purge, batch_size=100)
    assert purged == [1]
    head = ledger.head(ids[1])
    assert head is not None
    assert head.state == "purged"
    assert ledger.transcript(ids[1]) == []
    assert verify(ledger.store, SessionsProjection()) == []


def test_a_rebuild_keeps_writing_heads_through_the_general_path(ledger: Ledger) -> None:
    """Appends that take the general path (several messages at once) work after a swap."""
    (sid,) = _seed(ledger, sessions=1)
    rebuild(ledger.store, SessionsProjection())
    ledger.append_messages(
        sid, [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]
    )
    with ledger.store.engine.connect() as conn:
        count = conn.execute(
            sa.select(session_heads.c.message_count).where(session_heads.c.session_id == sid)
        ).scalar_one()
    assert count == 6
    assert verify(ledger.store, SessionsProjection()) == []


def test_the_swap_folds_only_a_short_tail_of_what_was_appended_during_the_rebuild(
    ledger: Ledger,
) -> None:
    """Events appended while the shadow was built are folded by further passes, not all inside
    the swap transaction (where every append waits): the swap gets at most ``_SWAP_LAG``."""
    ids = _seed(ledger, sessions=2, messages=10)
    bursts: list[int] = []

    def append_burst(_: int) -> None:
        if len(bursts) < 2:  # two bursts during the first pass, far more than the swap may take
            batch = [{"role": "user", "content": f"burst {len(bursts)} #{n}"} for n in range(300)]
            ledger.append_messages(ids[0], batch)
            bursts.append(len(batch))

    online = _OnlineRebuild(ledger.store, SessionsProjection(), append_burst, batch_size=5)
    online.run(from_snapshot=False)
    assert bursts == [300, 300]
    assert online.swapped <= _SWAP_LAG
    assert _transcript_ids(ledger.store.engine) == _message_ids(ledger.store)
    assert verify(ledger.store, SessionsProjection()) == []


def test_a_rebuild_reaches_its_swap_when_appends_keep_pace_with_it(ledger: Ledger) -> None:
    """A writer as fast as the fold cannot hold the rebuild in catch-up passes for ever."""
    (sid,) = _seed(ledger, sessions=1, messages=10)

    def keep_pace(size: int) -> None:
        ledger.append_messages(sid, [{"role": "user", "content": "x"}] * size)

    rebuild(ledger.store, SessionsProjection(), keep_pace, batch_size=5)
    assert _transcript_ids(ledger.store.engine) == _message_ids(ledger.store)
    assert verify(ledger.store, SessionsProjection()) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_rebuild_on_postgresql_analyzes_the_log_first(ledger: Ledger) -> None:
    """A log never analyzed looks tiny to the planner, which then reads each batch by sorting
    the rest of the log; the rebuild analyzes it before it reads."""
    _seed(ledger)
    query = sa.text(
        "SELECT count(*) FROM pg_stat_user_tables "
        "WHERE schemaname = current_schema() AND relname = 'events' AND last_analyze IS NOT NULL"
    )
    with ledger.store.engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 0
    rebuild(ledger.store, SessionsProjection())
    with ledger.store.engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 1


def test_a_second_rebuild_while_one_runs_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    """Two rebuilds at once would drop each other's shadow tables: the second stops at once."""
    _seed(ledger)
    refused: list[RebuildRunningError] = []

    def second(_: int) -> None:
        if not refused:
            with pytest.raises(RebuildRunningError) as caught:
                rebuild(ledger.store, SessionsProjection())
            refused.append(caught.value)

    rebuild(ledger.store, SessionsProjection(), second, batch_size=3)
    assert refused
    assert refused[0].projection == "sessions"
    assert "another rebuild is running" in str(refused[0])
    assert verify(ledger.store, SessionsProjection()) == []


def test_a_rebuild_of_another_projection_waits_for_no_one_after_the_first_ends(
    ledger: Ledger,
) -> None:
    """The lock ends with the rebuild, also when it was interrupted."""
    _seed(ledger)

    def interrupt(_: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        rebuild(ledger.store, SessionsProjection(), interrupt, batch_size=3)
    assert rebuild(ledger.store, KeysProjection()) > 0
    assert rebuild(ledger.store, SessionsProjection()) > 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_append_to_a_stream_named_like_the_rebuild_lock_goes_on_during_a_rebuild(
    ledger: Ledger,
) -> None:
    """The rebuild's advisory lock has its own key space: no stream's lock can be the same."""
    _seed(ledger)
    appended: list[int] = []

    def append_meanwhile(_: int) -> None:
        if not appended:
            _in_thread(
                lambda: appended.append(
                    ledger.store.append("ledger-rebuild", [controls.titled("s0")]).sequence
                )
            )

    rebuild(ledger.store, SessionsProjection(), append_meanwhile, batch_size=3)
    assert appended == [1]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_rebuild_whose_lock_connection_died_reports_its_own_error(ledger: Ledger) -> None:
    """Releasing a lock whose session is gone must not hide why the rebuild stopped."""
    _seed(ledger)
    holder = sa.text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :objid "
        "AND pid <> pg_backend_pid()"
    ).bindparams(objid=REBUILD_LOCK_ID)

    def kill_the_lock_holder_then_fail(_: int) -> None:
        with ledger.store.engine.connect() as conn:
            pid = conn.execute(holder).scalar_one()
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        raise Interrupted

    with pytest.raises(Interrupted):
        rebuild(ledger.store, SessionsProjection(), kill_the_lock_holder_then_fail, batch_size=3)
    assert verify(ledger.store, SessionsProjection()) == []


def test_rebuilds_of_two_databases_in_memory_do_not_refuse_each_other() -> None:
    """Each in-memory database is its own: its rebuild lock is its engine's."""
    with (
        Ledger.open("sqlite://", settings=Settings.from_env({})) as first,
        Ledger.open("sqlite://", settings=Settings.from_env({})) as second,
    ):
        _seed(first)
        _seed(second)
        folded: list[int] = []

        def rebuild_the_other(_: int) -> None:
            if not folded:
                folded.append(rebuild(second.store, SessionsProjection()))

        rebuild(first.store, SessionsProjection(), rebuild_the_other, batch_size=3)
        assert len(folded) == 1
        assert folded[0] > 0


def test_a_rebuild_of_a_database_named_by_a_file_uri_locks_beside_the_file(
    tmp_path: Path,
) -> None:
    """``sqlite:///file:/path?uri=true``: the lock file sits beside the database file."""
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}", settings=Settings.from_env({})) as ledger:
        _seed(ledger)
    url = f"sqlite:///file:{path}?uri=true"
    with EventStore.open(url, settings=Settings.from_env({})) as store:
        assert rebuild(store, SessionsProjection()) > 0
        assert verify(store, SessionsProjection()) == []
    assert (tmp_path / "ledger.db.rebuild-lock").exists()
    assert not list(Path.cwd().glob("file:*"))


def test_a_symlink_planted_as_the_rebuild_lock_is_refused(tmp_path: Path) -> None:
    """A symbolic link where ``<file>.rebuild-lock`` should be is a configuration error."""
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}", settings=Settings.from_env({})) as ledger:
        _seed(ledger)
        (tmp_path / "ledger.db.rebuild-lock").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(ConfigurationError, match="rebuild lock"):
            rebuild(ledger.store, SessionsProjection())
        assert verify(ledger.store, SessionsProjection()) == []
    assert not (tmp_path / "elsewhere").exists()
