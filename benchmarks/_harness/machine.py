"""What a benchmark run measured on: the source revision, memory, and SQLite's settings.

A figure is only comparable with another taken at the same commit under the same durability
settings, so every script records the revision and the PRAGMAs that decide what a commit costs
(``postgres`` does the same for a PostgreSQL server), and checks that a baseline runs under the
same ones as the ledger. Nothing here imports ``psycopg``: the read-side scripts' peak RSS
would count its few MiB.
"""

from __future__ import annotations

import resource
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa

__all__ = [
    "cpu_jiffies",
    "engine_pragmas",
    "note_rss",
    "peak_rss_mib",
    "rss_note",
    "run_environment",
    "source_revision",
    "sqlite_environment",
    "sqlite_pragmas",
]

SQLITE_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def source_revision() -> str:
    """The commit this run measured (``+dirty`` with uncommitted changes), or ``unknown``."""
    folder = Path(__file__).resolve().parent
    commands = (
        ["rev-parse", "--short", "HEAD"],
        ["status", "--porcelain", "--untracked-files=no"],
    )
    try:
        commit, changed = (
            subprocess.run(
                ["git", "-C", str(folder), *command], capture_output=True, text=True, check=True
            ).stdout.strip()
            for command in commands
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if changed else "")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_jiffies() -> tuple[int, int]:
    """The whole machine's CPU time so far, busy and in all, in clock ticks (``/proc/stat``;
    ``(0, 0)`` where there is none): the busy share between two readings says whether a
    measurement was bound by the cores, its own or another program's work."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(part) for part in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def note_rss(memory: dict[str, float], stage: str) -> None:
    """Record the peak RSS so far as ``memory["peak_rss_STAGE_mib"]``."""
    memory[f"peak_rss_{stage}_mib"] = round(peak_rss_mib(), 1)


def rss_note() -> str:
    """The tail of a progress line: ``peak RSS N MiB``."""
    return f"peak RSS {peak_rss_mib():.1f} MiB"


def run_environment() -> dict[str, str]:
    """The revision measured and the SQLite library's version."""
    return {"revision": source_revision(), "sqlite_version": sqlite3.sqlite_version}


def sqlite_pragmas(conn: Any) -> dict[str, str]:
    """``journal_mode`` and ``synchronous`` as a DB-API connection sees them."""
    cursor = conn.cursor()
    journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
    cursor.close()
    return {"journal_mode": str(journal).upper(), "synchronous": SQLITE_SYNCHRONOUS[synchronous]}


def engine_pragmas(engine: sa.Engine) -> dict[str, str]:
    """:func:`sqlite_pragmas` of a connection from ``engine``'s pool."""
    with engine.connect() as conn:
        return sqlite_pragmas(conn.connection.dbapi_connection)


def sqlite_environment(pragmas: dict[str, str]) -> dict[str, str]:
    """``pragmas`` with the SQLite library version."""
    return pragmas | {"sqlite_version": sqlite3.sqlite_version}
