"""The ledger never changes a SQLite file that is not a ledger, and keeps its own files private.

A Hermes ``state.db`` (or any application's database) given as ``--url`` by mistake is refused
before any write or persisting PRAGMA: its bytes, its journal mode and its tables stay as they
were. New ledger files are marked (``PRAGMA application_id``), owner-only, and never reached
through a symbolic link.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from ledger import ConfigurationError, DatabaseError, EventStore, Ledger
from ledger.store.database import APPLICATION_ID
from tests.maintenance.support import invoke


def other_app(path: Path) -> str:
    """Another application's SQLite database (rollback journal, its own tables); its digest."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, title TEXT)")
    connection.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)")
    connection.execute("INSERT INTO sessions VALUES ('s1', 'mine')")
    connection.commit()
    connection.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_mode(path: Path) -> str:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


def test_opening_another_applications_file_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """``Ledger.open`` on a foreign database: a typed error naming it; same bytes, no WAL."""
    path = tmp_path / "state.db"
    digest = other_app(path)
    with pytest.raises(ConfigurationError, match="another application"):
        Ledger.open(f"sqlite:///{path}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert journal_mode(path) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


@pytest.mark.parametrize("command", [["sessions"], ["db", "current"], ["db", "upgrade"]])
def test_cli_commands_refuse_another_applications_file(tmp_path: Path, command: list[str]) -> None:
    """``ledger sessions|db current|db upgrade --url other.db``: one error line, file intact."""
    path = tmp_path / "other.db"
    digest = other_app(path)
    code, _, err = invoke(*command, "--url", f"sqlite:///{path}")
    assert code == 1
    assert err.startswith("error: ")
    assert "another application" in err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """A text file at the database path: a typed error, the text untouched."""
    path = tmp_path / "notes.db"
    path.write_text("my notes\n" * 100)
    with pytest.raises(DatabaseError, match="not a database"):
        EventStore.open(f"sqlite:///{path}")
    assert path.read_text() == "my notes\n" * 100


def test_a_new_ledger_file_is_marked_and_owner_only(tmp_path: Path) -> None:
    """The file carries the ledger's application_id and mode 0600 (WAL and SHM too)."""
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}") as ledger:
        ledger.open_session("k")
        for file in tmp_path.glob("ledger.db*"):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    connection.close()


def test_a_ledger_made_before_the_marker_still_opens(tmp_path: Path) -> None:
    """A ledger file whose application_id is 0 (made before migration 0008) is recognised by
    its tables, and the migration marks it."""
    path = tmp_path / "old.db"
    with Ledger.open(f"sqlite:///{path}") as ledger:
        ledger.open_session("k", session_id="kept")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA application_id = 0")
    connection.commit()
    connection.close()
    with Ledger.open(f"sqlite:///{path}") as ledger:
        assert ledger.head("kept") is not None


def test_a_pre_existing_empty_file_becomes_owner_only(tmp_path: Path) -> None:
    """An empty ``ledger.db`` made 0644 beforehand is initialised 0600."""
    path = tmp_path / "ledger.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    with Ledger.open(f"sqlite:///{path}"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_ledger_file_left_world_readable_is_tightened(tmp_path: Path) -> None:
    """A ledger file of ours with group/other bits loses them on the next open."""
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}"):
        pass
    os.chmod(path, 0o644)
    with Ledger.open(f"sqlite:///{path}"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_parents_are_created_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """With umask 000 the folders made for the database are still 0700."""
    path = tmp_path / "a" / "b" / "ledger.db"
    old = os.umask(0)
    try:
        with Ledger.open(f"sqlite:///{path}"):
            pass
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_symlinked_database_file_is_refused(tmp_path: Path) -> None:
    """A planted ``ledger.db`` symlink is not followed: a typed error, the target untouched."""
    target = tmp_path / "elsewhere.db"
    target.write_bytes(b"")
    (tmp_path / "ledger.db").symlink_to(target)
    with pytest.raises(ConfigurationError, match="symbolic link"):
        Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert target.read_bytes() == b""


def test_a_symlinked_init_lock_is_refused(tmp_path: Path) -> None:
    """A planted ``.init-lock`` symlink is not followed when a new file is initialised."""
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / "ledger.db.init-lock").symlink_to(target)
    with pytest.raises(ConfigurationError, match="init lock"):
        Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert target.read_text() == "keep"
