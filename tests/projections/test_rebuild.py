"""Verify and rebuild: every projection equals a fold of the log, and can be made to again.

Views are corrupted by hand with SQL, then ``projections.rebuild.verify`` must report each
mismatch with its kind and ``rebuild`` must repair it. The same is checked through the
``ledger projections`` CLI (click's ``CliRunner`` with ``--url``) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import msgspec
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from ledger import EventStore
from ledger.cli import cli
from ledger.views import SessionViews
from projections.base import Projection
from projections.checkpoint import read_checkpoints
from projections.keys import KeysProjection
from projections.rebuild import Mismatch, _rebuild_lock, rebuild, verify
from projections.runner import ProjectionRunner
from projections.search import SearchProjection
from projections.sessions import SessionsProjection
from projections.usage import UsageProjection
from tests import controls

ALL: list[type[Projection]] = [
    SessionsProjection,
    KeysProjection,
    SearchProjection,
    UsageProjection,
]


@pytest.fixture
def seeded(store: EventStore) -> EventStore:
    """A store with two sessions, a retraction and a switch, and async projections caught up."""
    one, two = controls.messages(2, "a")
    store.append("session-a", [controls.opened("a", "k1"), one, two])
    store.append("session-a", [controls.retracted("a", one.message_id)])
    store.append("session-b", [controls.opened("b", "k1", source="telegram")])
    store.append("session-b", [controls.message("b", "hello there", token_count=4)])
    store.append("key-k1", [controls.switched("k1", "a"), controls.switched("k1", "b", "a")])
    ProjectionRunner(store, [SearchProjection(), UsageProjection()]).catch_up()
    return store


def _execute(store: EventStore, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _only(mismatches: list[Mismatch]) -> Mismatch:
    assert len(mismatches) == 1, mismatches
    return mismatches[0]


def test_every_projection_of_a_consistent_log_verifies_clean(seeded: EventStore) -> None:
    """Without tampering, verify finds no mismatch in any projection."""
    for cls in ALL:
        assert verify(seeded, cls()) == [], cls.name


def test_verify_reports_a_changed_head_as_different(seeded: EventStore) -> None:
    """A head row edited by hand is reported as different, with the live and expected rows."""
    _execute(seeded, "UPDATE session_heads SET message_count = 99 WHERE session_id = 'a'")
    found = _only(verify(seeded, SessionsProjection()))
    assert (found.projection, found.table, found.kind) == ("sessions", "session_heads", "different")
    assert found.key == {"session_id": "a"}
    assert found.live is not None
    assert found.expected is not None
    assert (found.live["message_count"], found.expected["message_count"]) == (99, 1)


def test_verify_reports_a_deleted_transcript_row_as_missing(seeded: EventStore) -> None:
    """A transcript row deleted by hand is reported as missing, keyed by session and message."""
    (message,) = SessionViews(seeded.engine).transcript("b")
    _execute(seeded, "DELETE FROM transcript_messages WHERE session_id = 'b'")
    found = _only(verify(seeded, SessionsProjection()))
    assert (found.table, found.kind, found.live) == ("transcript_messages", "missing", None)
    assert found.key == {"session_id": "b", "message_id": message.message_id}


def test_verify_reports_an_extra_row_as_unexpected(seeded: EventStore) -> None:
    """A key row the log never produced is reported as unexpected."""
    _execute(
        seeded,
        "INSERT INTO session_keys (session_key, session_id, reason, sequence, position, writer, "
        "switched_at) VALUES ('ghost', 'g', 'new', 1, 1, 'x', :now)",
        now=seeded.read_stream("key-k1").__next__().recorded_at,
    )
    found = _only(verify(seeded, KeysProjection()))
    assert (found.table, found.kind, found.key, found.expected) == (
        "session_keys",
        "unexpected",
        {"session_key": "ghost"},
        None,
    )


def test_verify_reports_changed_usage_as_different(seeded: EventStore) -> None:
    """An edited usage row (an async view) is reported against the log up to its checkpoint."""
    _execute(seeded, "UPDATE usage_daily SET messages = messages + 5 WHERE source = 'cli'")
    found = _only(verify(seeded, UsageProjection()))
    assert (found.table, found.kind, found.key["source"]) == ("usage_daily", "different", "cli")
    assert found.live is not None
    assert found.expected is not None
    assert found.live["messages"] == found.expected["messages"] + 5


def test_verify_reports_a_deleted_search_document_as_missing(seeded: EventStore) -> None:
    """A search document deleted by hand is reported missing (its surrogate id is ignored)."""
    _execute(seeded, "DELETE FROM search_documents WHERE session_id = 'b'")
    found = _only(verify(seeded, SearchProjection()))
    assert (found.table, found.kind, found.key["session_id"]) == (
        "search_documents",
        "missing",
        "b",
    )


def test_mismatches_encode_as_plain_json(seeded: EventStore) -> None:
    """A mismatch report is plain data that msgspec encodes to JSON (table name included)."""
    _execute(seeded, "UPDATE session_heads SET message_count = 99 WHERE session_id = 'a'")
    (found,) = msgspec.json.decode(msgspec.json.encode(verify(seeded, SessionsProjection())))
    assert found["table"] == "session_heads"
    assert (found["live"]["message_count"], found["expected"]["message_count"]) == (99, 1)


def test_verify_compares_an_async_projection_only_up_to_its_checkpoint(
    seeded: EventStore,
) -> None:
    """Events the runner has not applied yet are lag, not a mismatch."""
    seeded.append("session-a", controls.messages(3, "a"))
    assert verify(seeded, UsageProjection()) == []
    assert verify(seeded, SearchProjection()) == []


def test_rebuild_repairs_every_corrupted_view(seeded: EventStore) -> None:
    """After hand edits to three views, rebuilding each makes verify come back empty."""
    _execute(seeded, "UPDATE session_heads SET message_count = 99")
    _execute(seeded, "DELETE FROM transcript_messages WHERE session_id = 'b'")
    _execute(seeded, "UPDATE usage_daily SET tokens = 0")
    for cls in (SessionsProjection, UsageProjection):
        assert verify(seeded, cls()) != []
        rebuild(seeded, cls())
        assert verify(seeded, cls()) == [], cls.name
    head = SessionViews(seeded.engine).head("a")
    assert head is not None
    assert (head.sequence, head.message_count) == (4, 1)


def test_rebuild_of_an_inline_projection_returns_the_events_folded(seeded: EventStore) -> None:
    """An inline rebuild folds the whole log and reports how many events that was."""
    assert rebuild(seeded, KeysProjection()) == sum(1 for _ in seeded.read_all())


def test_rebuild_of_an_async_projection_resets_and_catches_up(seeded: EventStore) -> None:
    """An async rebuild empties the view, resets the checkpoint and re-applies the whole log."""
    seeded.append("session-a", [controls.message("a", "late arrival")])
    _execute(seeded, "DELETE FROM search_documents")
    assert rebuild(seeded, SearchProjection()) == sum(1 for _ in seeded.read_all())
    with seeded.engine.connect() as conn:
        assert read_checkpoints(conn)["search"] == seeded.last_position()
    assert [h.session_id for h in SessionViews(seeded.engine).search("late arrival")] == ["a"]
    assert verify(seeded, SearchProjection()) == []


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_verify_exits_1_and_prints_each_mismatch(seeded: EventStore, migrated_url: str) -> None:
    """``projections verify`` prints a MISMATCH line per bad row and exits with status 1."""
    _execute(seeded, "UPDATE session_heads SET message_count = 99 WHERE session_id = 'a'")
    result = _invoke("projections", "verify", "--url", migrated_url)
    assert result.exit_code == 1, result.output
    assert "MISMATCH sessions/session_heads different" in result.output
    assert "1 mismatches" in result.output


def test_cli_verify_json_reports_ok_false_with_the_mismatches(
    seeded: EventStore, migrated_url: str
) -> None:
    """``projections verify --json`` prints ok false and the mismatches as objects."""
    _execute(seeded, "DELETE FROM transcript_messages WHERE session_id = 'b'")
    result = _invoke("projections", "verify", "--url", migrated_url, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(m["table"], m["kind"]) for m in report["mismatches"]] == [
        ("transcript_messages", "missing")
    ]


def test_cli_rebuild_then_verify_exits_0(seeded: EventStore, migrated_url: str) -> None:
    """After ``projections rebuild`` the views match the log and verify exits 0."""
    _execute(seeded, "UPDATE session_heads SET message_count = 99")
    _execute(seeded, "UPDATE usage_daily SET sessions = 7")
    rebuilt = _invoke("projections", "rebuild", "--url", migrated_url, "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert {item["projection"] for item in json.loads(rebuilt.stdout)} == {
        "sessions",
        "keys",
        "search",
        "usage",
    }
    result = _invoke("projections", "verify", "--url", migrated_url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "mismatches": []}
    assert (
        "all projections match the log"
        in _invoke("projections", "verify", "--url", migrated_url).output
    )


def test_cli_rebuild_while_another_runs_is_one_error_line_and_exit_1(
    seeded: EventStore, migrated_url: str
) -> None:
    """A second ``projections rebuild`` on the same database stops before touching anything."""
    _execute(seeded, "UPDATE session_heads SET message_count = 99")
    with _rebuild_lock(seeded, "sessions"):
        result = CliRunner().invoke(
            cli, ["projections", "rebuild", "sessions", "--url", migrated_url]
        )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: Projection 'sessions' failed: another rebuild is running on this database; "
        "try again later"
    ]
    assert verify(seeded, SessionsProjection()) != []  # the damage is still there: untouched


def test_cli_rebuild_of_one_projection_leaves_the_others_alone(
    seeded: EventStore, migrated_url: str
) -> None:
    """``projections rebuild usage`` repairs usage only; a broken head stays broken."""
    _execute(seeded, "UPDATE session_heads SET message_count = 99 WHERE session_id = 'a'")
    _execute(seeded, "UPDATE usage_daily SET sessions = 7")
    assert _invoke("projections", "rebuild", "usage", "--url", migrated_url).exit_code == 0
    assert verify(seeded, UsageProjection()) == []
    assert len(verify(seeded, SessionsProjection())) == 1


def test_cli_verify_of_an_unknown_projection_is_an_error(migrated_url: str) -> None:
    """Naming a projection that is not installed exits 1 with the known names."""
    result = CliRunner().invoke(cli, ["projections", "verify", "nope", "--url", migrated_url])
    assert result.exit_code == 1
    assert "usage" in result.output


def test_cli_status_json_lists_every_projection_with_its_lag(
    store: EventStore, migrated_url: str
) -> None:
    """``projections status --json`` shows inline ones at the log's end and async ones lagging."""
    store.append("session-a", [controls.opened(), *controls.messages(2)])
    last = store.last_position()
    before = json.loads(_invoke("projections", "status", "--url", migrated_url, "--json").stdout)
    by_name = {row["name"]: row for row in before}
    assert set(by_name) == {"sessions", "keys", "search", "usage"}
    assert {name: row["lag"] for name, row in by_name.items()} == {
        "sessions": 0,
        "keys": 0,
        "search": last,
        "usage": last,
    }
    assert {row["kind"] for row in before if row["name"] in ("search", "usage")} == {"async"}
    assert all(row["last_position"] == last for row in before)
    ProjectionRunner(store, [SearchProjection(), UsageProjection()]).catch_up()
    after = json.loads(_invoke("projections", "status", "--url", migrated_url, "--json").stdout)
    assert [row["lag"] for row in after] == [0, 0, 0, 0]
    assert all(row["checkpoint"] == last for row in after)


def test_cli_run_once_catches_the_async_projections_up(
    store: EventStore, migrated_url: str
) -> None:
    """``projections run --once`` applies every pending event to search and usage, then exits."""
    store.append("session-a", [controls.opened(), controls.message("a", "needle")])
    result = _invoke("projections", "run", "--once", "--url", migrated_url)
    assert result.exit_code == 0, result.output
    assert "applied 4 events" in result.output
    assert [h.session_id for h in SessionViews(store.engine).search("needle")] == ["a"]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_rebuild_and_verify_see_events_above_a_held_back_horizon(migrated_url: str) -> None:
    """An open write transaction elsewhere holds readers' horizon back; rebuild and verify
    still fold every committed event (they read their whole snapshot, not the tail's part)."""
    from ledger.config import Settings

    with (
        EventStore.open(migrated_url, writer="a", settings=Settings.from_env({})) as store,
        store.engine.connect() as other,
    ):
        store.append("session-a", [controls.opened("a"), *controls.messages(2)])
        with other.begin():  # a write transaction with an id, open across what follows
            other.execute(sa.text("SELECT pg_current_xact_id()"))
            store.append("session-a", controls.messages(3))
            assert [r.sequence for r in store.read_all()] == [1, 2, 3], "horizon not held back"
            assert verify(store, SessionsProjection()) == []
            rebuild(store, SessionsProjection())
            head = SessionViews(store.engine).head("a")
            assert head is not None
            assert (head.sequence, head.message_count) == (6, 5)
