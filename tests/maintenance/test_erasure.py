"""Privacy requests on SQLite and PostgreSQL: ``erase`` and ``export_scope`` for one user, key
or session, and the ``ledger erase`` / ``ledger export --user`` commands.

Alice has two sessions under one key (the first closed and archived, the second her key's
active one) with text in three scripts, a multi-megabyte tool output and usage; Bob has one
session under another key. Erasing Alice must leave Bob's data exactly as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import zlib

import pytest
import sqlalchemy as sa

from ledger import (
    InvalidArgumentError,
    Ledger,
    SessionClosedError,
    SessionNotFoundError,
    WrongExpectedVersionError,
)
from ledger.jsonl import write_jsonl
from ledger.maintenance import (
    archive,
    erase,
    erasure_history,
    export_scope,
    retention,
    run_job,
    scope_of,
)
from ledger.schema import archive_segments, compaction_runs, erasures, projection_snapshots
from projections.snapshot import snapshot
from tests.maintenance.support import (
    AGE,
    KEY,
    OTHER_KEY,
    catch_up,
    dump,
    dump_all,
    invoke,
    let_age,
    verify_all,
)

SECRET = "alice-secret Ünïcødé 秘密のメモ مرحبا"
BIG = "tool output line with " + SECRET + "\n"
ALICE = scope_of(user="alice")


@pytest.fixture
def people(ledger: Ledger) -> dict[str, str]:
    """Alice's closed-and-archived and active sessions, Bob's one session; a snapshot."""
    first = ledger.open_session(KEY, session_id="alice-1", user_id="alice", title=SECRET)
    ledger.append_message(first, "user", f"first {SECRET}")
    ledger.append_message(first, "tool", BIG * 40_000, tool_call_id="c1", tool_name="cat")
    ledger.record_usage(first, input_tokens=10, output_tokens=3, model="m")
    ledger.close_session(first)
    second = ledger.open_session(KEY, session_id="alice-2", user_id="alice", system_prompt=SECRET)
    ledger.append_message(second, "user", [{"type": "text", "text": f"second {SECRET}"}])
    bob = ledger.open_session(OTHER_KEY, session_id="bob-1", user_id="bob")
    ledger.append_message(bob, "user", "bob's own words")
    ledger.record_usage(bob, input_tokens=5)
    let_age()
    assert archive(ledger.store, older_than=None).session_ids == ["alice-1"]
    snapshot(ledger.store)
    catch_up(ledger.store)
    return {"first": first, "second": second, "bob": bob}


def exported(ledger: Ledger) -> bytes:
    """The whole log as ``ledger export`` writes it."""
    out = io.BytesIO()
    write_jsonl(ledger.store.read_all(), out)
    return out.getvalue()


def raw_text(ledger: Ledger) -> str:
    """Every stored row of the database as text, archive segments decompressed."""
    chunks = []
    with ledger.store.engine.connect() as conn:
        for table in ledger.store.engine.dialect.get_table_names(conn):
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        data = bytes(value)
                        with contextlib.suppress(zlib.error):
                            data = zlib.decompress(data)
                        chunks.append(data.decode("utf-8", "replace"))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


def test_erase_user_removes_the_content_from_every_table(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """Nothing of Alice's text is left in any row, archive segments and snapshots included."""
    assert SECRET in raw_text(ledger)
    erase(ledger.store, ALICE)
    catch_up(ledger.store)
    assert SECRET not in raw_text(ledger)


def test_erase_user_leaves_nothing_in_read_all_or_export(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """``read_all`` (and so ``ledger export``) holds no event of Alice's sessions any more."""
    erase(ledger.store, ALICE)
    streams = {r.stream for r in ledger.store.read_all()}
    assert not {s for s in streams if "alice" in s and not s.startswith("key-")}
    assert SECRET.encode() not in exported(ledger)


def test_erase_user_makes_the_content_unfindable_by_search(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """Search finds Alice's words before and not after; Bob's stay findable."""
    assert {h.session_id for h in ledger.search("secret")} >= {"alice-1", "alice-2"}
    erase(ledger.store, ALICE)
    assert ledger.search("secret") == []
    assert [h.session_id for h in ledger.search("words")] == ["bob-1"]


def test_erase_user_removes_archive_segments_and_snapshots(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """The archived session's segment and every projection snapshot are gone."""
    assert dump(ledger.store, archive_segments)
    assert dump(ledger.store, projection_snapshots)
    erase(ledger.store, ALICE)
    assert dump(ledger.store, archive_segments) == []
    assert dump(ledger.store, projection_snapshots) == []


def test_erase_user_leaves_verify_clean(ledger: Ledger, people: dict[str, str]) -> None:
    """Every projection still equals a rebuild from the log."""
    erase(ledger.store, ALICE)
    assert verify_all(ledger.store) == {}


def test_erase_keeps_tombstone_heads_with_their_sequences(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """Each erased head is ``purged``, keeps its sequence, and holds no title, user or prompt."""
    before = {sid: ledger.head(sid) for sid in ("alice-1", "alice-2")}
    erase(ledger.store, ALICE)
    for sid, old in before.items():
        head = ledger.head(sid)
        assert old is not None
        assert head is not None
        assert (head.state, head.sequence) == ("purged", old.sequence)
        assert (head.title, head.user_id, head.system_prompt) == (None, None, None)
        assert ledger.transcript(sid) == []


def test_an_erased_session_id_is_never_opened_or_written_again(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """Its sequence cannot be reused: opening the id again or appending to it is refused."""
    erase(ledger.store, ALICE)
    with pytest.raises(WrongExpectedVersionError, match="alice-2"):
        ledger.open_session(KEY, session_id="alice-2")
    with pytest.raises(SessionClosedError, match="alice-2"):
        ledger.append_message("alice-2", "user", "again")
    assert ledger.head("alice-2").state == "purged"  # type: ignore[union-attr]


def test_erase_removes_usage(ledger: Ledger, people: dict[str, str]) -> None:
    """The erased sessions' usage streams and totals go; Bob's stay."""
    erase(ledger.store, ALICE)
    assert ledger.usage("alice-1").calls == 0
    assert ledger.usage("bob-1").input_tokens == 5


def test_erasing_the_active_session_leaves_its_key_without_one(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """The key's next ``ensure_session`` opens a successor rather than the erased session."""
    assert ledger.active_session(KEY) == "alice-2"
    erase(ledger.store, ALICE)
    assert ledger.active_session(KEY) is None
    successor = ledger.ensure_session(KEY)
    assert successor not in ("alice-1", "alice-2")


def test_a_cached_agent_is_rebuilt_after_its_session_is_erased(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """A cache never reuses an agent built from an erased conversation: ``regressed``."""
    cache = ledger.cache()
    assert cache.check(KEY, "alice-2", "sig").action == "miss"
    cache.store(KEY, "alice-2", "sig", "agent")
    assert cache.check(KEY, "alice-2", "sig").reason == "hit"
    erase(ledger.store, ALICE)
    decision = cache.check(KEY, "alice-2", "sig")
    assert (decision.action, decision.reason) == ("rebuild", "regressed")


def test_erase_spares_everyone_else(ledger: Ledger, people: dict[str, str]) -> None:
    """Bob's head, transcript and events are exactly as before."""
    head, transcript = ledger.head("bob-1"), ledger.transcript("bob-1")
    bob_events = list(export_scope(ledger.store, scope_of(user="bob")))
    erase(ledger.store, ALICE)
    assert (ledger.head("bob-1"), ledger.transcript("bob-1")) == (head, transcript)
    assert list(export_scope(ledger.store, scope_of(user="bob"))) == bob_events


def test_erase_records_who_when_and_which_scope_but_not_the_content(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """One ``erasures`` row: scope, subject, requester, counts and ids; no message text."""
    report = erase(ledger.store, ALICE, requested_by="dpo@example")
    (record,) = erasure_history(ledger.store)
    assert (record.scope, record.subject, record.requested_by) == ("user", "alice", "dpo@example")
    assert (record.sessions, record.events) == (2, report.events)
    assert record.session_ids == ["alice-1", "alice-2"]
    assert SECRET not in repr(dump(ledger.store, erasures))


def test_erase_dry_run_lists_the_sessions_and_writes_nothing(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """A dry run names the sessions and counts the events; no table changes, no record."""
    before = dump_all(ledger.store)
    report = erase(ledger.store, ALICE, dry_run=True)
    assert report.session_ids == ["alice-1", "alice-2"]
    assert report.events > 0
    assert dump_all(ledger.store) == before
    assert dump(ledger.store, erasures) == []


def test_erase_by_key_erases_every_session_of_the_key(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """``key`` scope: both of Alice's sessions (they share the key), not Bob's."""
    report = erase(ledger.store, scope_of(key=KEY))
    assert report.session_ids == ["alice-1", "alice-2"]
    assert ledger.head("bob-1").state == "open"  # type: ignore[union-attr]
    assert verify_all(ledger.store) == {}


def test_erase_by_session_erases_only_that_session(ledger: Ledger, people: dict[str, str]) -> None:
    """``session`` scope: the one session; Alice's other session keeps its transcript."""
    erase(ledger.store, scope_of(session="alice-2"))
    assert ledger.head("alice-2").state == "purged"  # type: ignore[union-attr]
    assert len(ledger.transcript("alice-1")) == 2
    assert verify_all(ledger.store) == {}


def test_erase_twice_is_harmless(ledger: Ledger, people: dict[str, str]) -> None:
    """A rerun (e.g. after a killed erasure) finds the tombstones and erases nothing more."""
    erase(ledger.store, scope_of(key=KEY))
    again = erase(ledger.store, scope_of(key=KEY))
    assert (again.sessions, again.events) == (2, 0)
    assert verify_all(ledger.store) == {}


def test_erase_after_retention_also_removes_the_usage_stream(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """A session already purged by retention still loses its usage on erasure."""
    retention(ledger.store, older_than=AGE, key=KEY)
    assert ledger.head("alice-1").state == "purged"  # type: ignore[union-attr]
    assert ledger.usage("alice-1").calls == 1
    erase(ledger.store, scope_of(session="alice-1"))
    assert ledger.usage("alice-1").calls == 0
    assert verify_all(ledger.store) == {}


@pytest.mark.parametrize(
    "scope",
    [{}, {"user": "alice", "key": KEY}, {"user": ""}, {"session": "  "}],
    ids=["none", "two", "empty", "blank"],
)
def test_a_scope_is_exactly_one_non_empty_subject(scope: dict[str, str]) -> None:
    """No scope, two scopes or an empty subject: a typed error (nothing can have changed)."""
    with pytest.raises(InvalidArgumentError):
        scope_of(**scope)


def test_erasing_an_unknown_session_is_an_error_that_changes_nothing(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """A mistyped session id names itself and writes nothing, not even a record."""
    before = dump_all(ledger.store)
    with pytest.raises(SessionNotFoundError, match="alice-3"):
        erase(ledger.store, scope_of(session="alice-3"))
    assert dump_all(ledger.store) == before
    assert dump(ledger.store, erasures) == []


def test_export_scope_user_holds_exactly_that_users_streams_in_log_order(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """Alice's session and usage streams, archived events included, ordered by position."""
    records = list(export_scope(ledger.store, ALICE))
    assert {r.stream for r in records} == {
        "session-alice-1",
        "usage-alice-1",
        "session-alice-2",
    }
    positions = [r.position for r in records]
    assert positions == sorted(positions)
    everything = [r for r in ledger.store.read_all() if "alice" in r.stream]
    assert [r for r in everything if not r.stream.startswith("key-")] == records


def test_export_scope_key_includes_the_keys_switches(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """``key`` scope: the key stream comes with its sessions."""
    streams = {r.stream for r in export_scope(ledger.store, scope_of(key=OTHER_KEY))}
    assert streams == {f"key-{OTHER_KEY}", "session-bob-1", "usage-bob-1"}


def test_erase_cli_without_yes_says_what_and_changes_nothing(
    ledger: Ledger, people: dict[str, str], migrated_url: str
) -> None:
    """``ledger erase --user alice`` alone lists the sessions, exits 1 and writes nothing."""
    before = dump_all(ledger.store)
    code, _, err = invoke("erase", "--user", "alice", "--url", migrated_url)
    assert code == 1
    assert err.startswith("error: ")
    assert "alice-1, alice-2" in err
    assert "--yes" in err
    assert dump_all(ledger.store) == before


def test_erase_cli_with_yes_erases_and_reports_json(
    ledger: Ledger, people: dict[str, str], migrated_url: str
) -> None:
    """``--yes --json`` erases and prints the report with the session ids."""
    code, out, err = invoke(
        "erase", "--user", "alice", "--yes", "--json", "--by", "ops", "--url", migrated_url
    )
    assert code == 0, err
    report = json.loads(out)
    assert (report["job"], report["sessions"], report["session_ids"]) == (
        "erase",
        2,
        ["alice-1", "alice-2"],
    )
    code, out, _ = invoke("erasures", "--json", "--url", migrated_url)
    assert [(r["subject"], r["requested_by"]) for r in json.loads(out)] == [("alice", "ops")]


def test_erase_cli_dry_run_lists_the_sessions(
    ledger: Ledger, people: dict[str, str], migrated_url: str
) -> None:
    """``--dry-run`` needs no ``--yes``, names the sessions, writes nothing."""
    before = dump_all(ledger.store)
    code, out, err = invoke("erase", "--key", KEY, "--dry-run", "--url", migrated_url)
    assert code == 0, err
    assert b"alice-1, alice-2" in out
    assert dump_all(ledger.store) == before


def test_erase_cli_with_two_scopes_is_a_one_line_error(ledger: Ledger, migrated_url: str) -> None:
    """``--user`` with ``--key``: exit 1 and one ``error:`` line."""
    code, _, err = invoke("erase", "--user", "a", "--key", "k", "--yes", "--url", migrated_url)
    assert code == 1
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_export_cli_user_writes_only_that_user(
    ledger: Ledger, people: dict[str, str], migrated_url: str
) -> None:
    """``ledger export --user bob`` writes Bob's events and nothing of Alice's."""
    code, out, err = invoke("export", "--user", "bob", "--url", migrated_url)
    assert code == 0, err
    streams = {json.loads(line)["stream"] for line in out.splitlines()}
    assert streams == {"session-bob-1", "usage-bob-1"}


def test_retention_with_a_key_scope_purges_only_that_key(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """``key``: only the key's old sessions that retention may take (not its active one)."""
    report = retention(ledger.store, older_than=AGE, key=KEY)
    assert report.session_ids == ["alice-1"]
    assert ledger.head("bob-1").state == "open"  # type: ignore[union-attr]


def test_retention_with_a_user_scope_purges_only_that_user(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """``user``: once closed, Bob's session goes; Alice's closed session stays."""
    ledger.close_session("bob-1")
    let_age()
    report = retention(ledger.store, older_than=AGE, user="bob")
    assert report.session_ids == ["bob-1"]
    assert ledger.head("alice-1").state == "closed"  # type: ignore[union-attr]


def test_retention_dry_run_lists_the_sessions_it_would_purge(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """The report names each session; nothing changes."""
    before = dump_all(ledger.store)
    report = retention(ledger.store, older_than=AGE, dry_run=True)
    assert report.session_ids == ["alice-1"]
    assert dump_all(ledger.store) == before


def test_a_dry_run_job_is_not_recorded(ledger: Ledger, people: dict[str, str]) -> None:
    """``run_job(..., dry_run=True)`` leaves ``compaction_runs`` empty: a dry run writes nothing."""
    run_job(ledger.store, "retention", older_than=AGE, dry_run=True)
    run_job(ledger.store, "archive", dry_run=True)
    assert dump(ledger.store, compaction_runs) == []


def test_a_job_refused_for_its_arguments_is_not_recorded(
    ledger: Ledger, people: dict[str, str]
) -> None:
    """An unknown option or a missing age is a typed error and leaves no run row."""
    with pytest.raises(InvalidArgumentError, match="older_than"):
        run_job(ledger.store, "retention", older_than=None)
    with pytest.raises(InvalidArgumentError, match="olderthan"):
        run_job(ledger.store, "archive", olderthan=AGE)
    assert dump(ledger.store, compaction_runs) == []


def test_retention_cli_without_yes_lists_and_changes_nothing(
    ledger: Ledger, people: dict[str, str], migrated_url: str
) -> None:
    """``ledger compact retention --older-than 1s`` alone: the list, exit 1, nothing purged."""
    before = dump_all(ledger.store)
    code, _, err = invoke("compact", "retention", "--older-than", "0.001", "--url", migrated_url)
    assert code == 1
    assert "alice-1" in err
    assert "--yes" in err
    assert dump_all(ledger.store) == before
