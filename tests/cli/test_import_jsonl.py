"""``ledger import-jsonl`` keeps the exported sequences: a gapped, reordered or broken file is
refused naming the line with nothing written, and a rerun finishes an interrupted import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.jsonl import write_jsonl
from tests.cli.support import settle
from tests.maintenance.support import invoke


@pytest.fixture
def export(ledger: Ledger, tmp_path: Path, migrated_url: str) -> list[bytes]:
    """An export of two sessions, three messages each, as lines."""
    for n in range(2):
        sid = ledger.open_session(f"k{n}", session_id=f"s{n}")
        for m in range(3):
            ledger.append_message(sid, "user", f"s{n} message {m}")
    settle(migrated_url)  # PostgreSQL: read_all reads below other sessions' open transactions
    path = tmp_path / "export.jsonl"
    with path.open("wb") as out:
        write_jsonl(ledger.store.read_all(), out)
    return path.read_bytes().splitlines(keepends=True)


def target(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'target.db'}"


def write(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def count_events(url: str) -> int:
    with Ledger.open(url) as ledger:
        return sum(1 for _ in ledger.store.read_all())


def stream_lines(lines: list[bytes], stream: str) -> list[int]:
    return [i for i, line in enumerate(lines) if json.loads(line)["stream"] == stream]


def test_a_file_with_a_gap_is_refused_naming_the_event_and_writes_nothing(
    export: list[bytes], tmp_path: Path
) -> None:
    """Dropping one event of a stream: exit 1, the event named, an empty target."""
    gap = stream_lines(export, "session-s0")[1]
    lines = export[:gap] + export[gap + 1 :]
    code, _, err = invoke("import-jsonl", "--url", target(tmp_path), str(write(tmp_path, lines)))
    assert code == 1
    assert "session-s0 sequence 3" in err
    assert count_events(target(tmp_path)) == 0


def test_a_reordered_file_is_refused(export: list[bytes], tmp_path: Path) -> None:
    """Two events of one stream swapped: refused, nothing written."""
    a, b = stream_lines(export, "session-s1")[1:3]
    lines = list(export)
    lines[a], lines[b] = lines[b], lines[a]
    code, _, err = invoke("import-jsonl", "--url", target(tmp_path), str(write(tmp_path, lines)))
    assert code == 1
    assert "session-s1" in err
    assert count_events(target(tmp_path)) == 0


def test_a_bad_line_stops_the_import_before_anything_is_written(
    export: list[bytes], tmp_path: Path
) -> None:
    """A broken last line: refused naming its number; the groups before it are not committed."""
    lines = [*export, b'{"not": "an event"}\n']
    code, _, err = invoke("import-jsonl", "--url", target(tmp_path), str(write(tmp_path, lines)))
    assert code == 1
    assert f"line {len(lines)}" in err
    assert count_events(target(tmp_path)) == 0


def test_a_file_that_does_not_continue_the_ledgers_head_is_refused(
    export: list[bytes], tmp_path: Path
) -> None:
    """The second half of a stream alone, into an empty ledger: its start is missing."""
    tail = [export[i] for i in stream_lines(export, "session-s0")[2:]]
    code, _, err = invoke("import-jsonl", "--url", target(tmp_path), str(write(tmp_path, tail)))
    assert code == 1
    assert "head of session-s0 is 0" in err
    assert count_events(target(tmp_path)) == 0


def test_an_interrupted_import_is_finished_by_a_rerun_in_order(
    export: list[bytes], tmp_path: Path
) -> None:
    """The first half, then the whole file: every event once, each transcript in order."""
    half = export[: len(export) // 2]
    assert invoke("import-jsonl", "--url", target(tmp_path), str(write(tmp_path, half)))[0] == 0
    code, out, err = invoke(
        "import-jsonl", "--url", target(tmp_path), str(write(tmp_path, export)), "--json"
    )
    assert code == 0, err
    assert json.loads(out) == {"written": len(export) - len(half), "already_present": len(half)}
    with Ledger.open(target(tmp_path)) as ledger:
        for n in range(2):
            texts = [m.content for m in ledger.transcript(f"s{n}")]
            assert texts == [f"s{n} message {m}" for m in range(3)]


def test_importing_another_ledgers_history_onto_this_one_is_refused(
    export: list[bytes], tmp_path: Path
) -> None:
    """A stream that already holds different events at those sequences: refused, named."""
    url = target(tmp_path)
    with Ledger.open(url) as ledger:
        ledger.open_session("k0", session_id="s0")
    code, _, err = invoke("import-jsonl", "--url", url, str(write(tmp_path, export)))
    assert code == 1
    assert "session-s0 sequence 1" in err
