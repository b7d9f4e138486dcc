"""Re-running the Hermes ``state.db`` importer, interrupted imports and refused input files.

A second import writes nothing, a re-run appends only what Hermes added, an import killed
midway leaves no half session and a re-run completes it, and input that is not a Hermes
``state.db`` is refused with nothing written. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ledger import InvalidArgumentError, Ledger
from ledger.config import Settings
from ledger.hermes._importer import count_hermes_messages, import_hermes
from tests.helpers import count_events
from tests.hermes.support import add_rows

# -- idempotency and re-runs -----------------------------------------------------------------


def test_second_import_writes_nothing(ledger: Ledger, new_path: Path) -> None:
    """Importing the same file again skips every session and adds no event."""
    import_hermes(ledger, new_path)
    before = count_events(ledger)
    again = import_hermes(ledger, new_path)
    assert (again.events, again.skipped_sessions, count_events(ledger)) == (0, 4, before)


def test_reimport_appends_only_what_hermes_added(ledger: Ledger, new_path: Path) -> None:
    """After Hermes added a message to an open session, a re-run appends just that one."""
    import_hermes(ledger, new_path)
    before = count_events(ledger)
    add_rows(new_path, ("n_b", "assistant", "new reply", {"timestamp": 156.0}))
    again = import_hermes(ledger, new_path)
    assert (again.updated_sessions, again.events, count_events(ledger)) == (1, 1, before + 1)
    assert ledger.transcript("n_b")[-1].content == "new reply"


def test_reimport_carries_a_title_hermes_set_later(ledger: Ledger, new_path: Path) -> None:
    """A title Hermes gave a session after the first import reaches the head on a re-run."""
    import_hermes(ledger, new_path)
    conn = sqlite3.connect(new_path)
    conn.execute("UPDATE sessions SET title = 'Trip plans' WHERE id = 'n_b'")
    conn.commit()
    conn.close()
    again = import_hermes(ledger, new_path)
    assert (again.updated_sessions, again.events) == (1, 1)
    assert ledger.head("n_b").title == "Trip plans"  # type: ignore[union-attr]


def test_reimport_of_new_rows_for_an_ended_session_reopens_appends_and_closes_it(
    ledger: Ledger, new_path: Path
) -> None:
    """Hermes wrote to a session it had ended (and ended it again): the ledger follows."""
    import_hermes(ledger, new_path)
    add_rows(new_path, ("n_a", "user", "after the end", {"timestamp": 160.0}))
    again = import_hermes(ledger, new_path)
    assert again.failed_sessions == {}
    head = ledger.head("n_a")
    assert head is not None
    assert (head.state, head.message_count, again.reopened_sessions) == ("closed", 3, 1)
    assert ledger.transcript("n_a")[-1].content == "after the end"


def test_small_batches_still_write_whole_sessions(
    ledger: Ledger, new_path: Path, tmp_path: Path, settings: Settings
) -> None:
    """A batch_size below a session's size gives the same heads as the default."""
    import_hermes(ledger, new_path, batch_size=2)
    small = {(h.session_id, h.sequence, h.message_count, h.state) for h in ledger.sessions()}
    with Ledger.open(f"sqlite:///{tmp_path / 'reference.db'}", settings=settings) as reference:
        import_hermes(reference, new_path)
        default = {
            (h.session_id, h.sequence, h.message_count, h.state) for h in reference.sessions()
        }
    assert small == default


def test_killed_import_leaves_no_half_session(
    ledger: Ledger, old_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure between two chunks of one session's transaction writes none of the session."""
    real = ledger.store.append_in
    calls = iter(range(100))

    def dying(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 1:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger.store, "append_in", dying)
    with pytest.raises(RuntimeError, match="killed"):
        import_hermes(ledger, old_path, batch_size=2)
    assert ledger.head("o_root") is None


def test_rerun_after_a_killed_import_completes_it(
    ledger: Ledger, old_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running the import again after a failure imports every session exactly once."""
    real = ledger.store.append_in
    calls = iter(range(100))

    def dying(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger.store, "append_in", dying)
    with pytest.raises(RuntimeError):
        import_hermes(ledger, old_path, batch_size=2)
    monkeypatch.undo()
    import_hermes(ledger, old_path)
    heads = {h.session_id: h.message_count for h in ledger.sessions()}
    assert heads == {"o_root": 4, "a_child": 4, "o_tg": 2}


# -- bad input ----------------------------------------------------------------------------------


def test_corrupt_file_is_refused_and_nothing_written(ledger: Ledger, tmp_path: Path) -> None:
    """Random bytes raise InvalidArgumentError naming state.db, and write no event."""
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(InvalidArgumentError) as raised:
        import_hermes(ledger, path)
    assert raised.value.argument == "state.db"
    assert count_events(ledger) == 0


def test_foreign_sqlite_file_is_refused_and_nothing_written(ledger: Ledger, tmp_path: Path) -> None:
    """A SQLite file without the Hermes tables raises InvalidArgumentError and writes nothing."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.close()
    with pytest.raises(InvalidArgumentError, match=r"no sessions\.id"):
        import_hermes(ledger, path)
    assert count_events(ledger) == 0


def test_missing_file_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    """A path that is not a file raises InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError, match=r"an existing Hermes state\.db"):
        import_hermes(ledger, tmp_path / "nope.db")


def test_count_refuses_a_corrupt_file(tmp_path: Path) -> None:
    """count_hermes_messages raises the same typed error for a file that is not SQLite."""
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(InvalidArgumentError):
        count_hermes_messages(path)


def test_batch_size_below_one_is_refused(ledger: Ledger, new_path: Path) -> None:
    """batch_size must be a positive integer."""
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        import_hermes(ledger, new_path, batch_size=0)


def test_reimport_after_compact_archive_updates_archived_sessions(
    ledger: Ledger, new_path: Path
) -> None:
    """Sessions archived after the first import are still recognised as Hermes' own: a
    changed one is updated (restored, appended), not refused as "not from Hermes"."""
    from ledger.maintenance import archive

    import_hermes(ledger, new_path)
    assert archive(ledger.store, older_than=None).sessions >= 1
    add_rows(new_path, ("n_a", "user", "after the archive", {"timestamp": 170.0}))
    again = import_hermes(ledger, new_path)
    assert again.failed_sessions == {}
    assert again.updated_sessions == 1
    assert ledger.transcript("n_a")[-1].content == "after the archive"
