"""``export -o``, ``explain --html`` and ``replay --html`` never write onto a database, never
replace a file unasked, and write private files atomically."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

import pytest

from ledger import Ledger
from tests.maintenance.support import invoke

KEY = "telegram:1:dm"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A SQLite ledger with one turn on :data:`KEY`."""
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}") as ledger:
        sid = ledger.open_session(KEY)
        ledger.append_message(sid, "user", "hello")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


COMMANDS = {
    "export": lambda out: ["export", "-o", str(out)],
    "explain": lambda out: ["explain", KEY, "--html", str(out)],
    "replay": lambda out: ["replay", "--html", str(out)],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", ".init-lock", ".rebuild-lock"])
def test_an_output_onto_the_database_or_its_files_is_refused(
    db: Path, command: str, suffix: str
) -> None:
    """The database and its sidecars are refused (even with --force); nothing changes."""
    target = db.with_name(db.name + suffix)
    before = digest(db)
    code, _, err = invoke(*COMMANDS[command](target), "--force", "--url", f"sqlite:///{db}")
    assert code == 1
    assert err.startswith("error: ")
    assert "ledger database" in err
    assert digest(db) == before
    with Ledger.open(f"sqlite:///{db}") as ledger:
        assert len(ledger.sessions()) == 1


def test_an_output_onto_the_files_of_a_database_named_by_a_file_uri_is_refused(db: Path) -> None:
    """``sqlite:///file:/path?uri=true`` protects the same files as the plain path."""
    target = db.with_name(db.name + ".rebuild-lock")
    code, _, err = invoke(
        "export", "-o", str(target), "--force", "--url", f"sqlite:///file:{db}?uri=true"
    )
    assert code == 1
    assert "ledger database" in err
    assert not target.exists()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_onto_another_sqlite_database_is_refused(
    db: Path, tmp_path: Path, command: str
) -> None:
    """Any SQLite file (another ledger, an app's database) is refused even with --force."""
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    before = digest(other)
    code, _, err = invoke(*COMMANDS[command](other), "--force", "--url", f"sqlite:///{db}")
    assert code == 1
    assert "not a database" in err
    assert digest(other) == before


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_existing_file_is_replaced_only_with_force(
    db: Path, tmp_path: Path, command: str
) -> None:
    """Without --force an existing file stays; with it the file is replaced."""
    out = tmp_path / "out.txt"
    out.write_text("keep me")
    code, _, err = invoke(*COMMANDS[command](out), "--url", f"sqlite:///{db}")
    assert code == 1
    assert "--force" in err
    assert out.read_text() == "keep me"
    code, _, err = invoke(*COMMANDS[command](out), "--force", "--url", f"sqlite:///{db}")
    assert code == 0, err
    assert out.read_text() != "keep me"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_outputs_are_owner_only_and_leave_no_temporary_file(
    db: Path, tmp_path: Path, command: str
) -> None:
    """The written file is 0600 (it holds conversations); no ``.tmp`` is left beside it."""
    out = tmp_path / "out" / "page"
    out.parent.mkdir()
    code, _, err = invoke(*COMMANDS[command](out), "--url", f"sqlite:///{db}")
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["page"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_in_a_missing_folder_is_a_one_line_error(
    db: Path, tmp_path: Path, command: str
) -> None:
    """A missing folder names itself; no traceback, exit 1."""
    out = tmp_path / "no" / "such" / "file"
    code, _, err = invoke(*COMMANDS[command](out), "--url", f"sqlite:///{db}")
    assert code == 1
    assert err.startswith("error: ")
    assert "does not exist" in err
    assert err.count("\n") == 1


def test_replay_of_an_export_needs_no_database_url_for_its_page(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``replay --from-jsonl F --html P`` with ``LEDGER_REQUIRE_URL=1`` and no URL writes P."""
    export = tmp_path / "export.jsonl"
    assert invoke("export", "-o", str(export), "--url", f"sqlite:///{db}")[0] == 0
    monkeypatch.setenv("LEDGER_REQUIRE_URL", "1")
    monkeypatch.delenv("LEDGER_DATABASE_URL", raising=False)
    page = tmp_path / "page.html"
    code, _, err = invoke("replay", "--from-jsonl", str(export), "--html", str(page))
    assert code == 0, err
    assert page.stat().st_size > 0
