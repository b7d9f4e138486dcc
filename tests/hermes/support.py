"""Helpers shared by the Hermes importer tests: adding message rows to a ``state.db``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.hermes.fixture import add_message


def add_rows(path: Path, *rows: tuple[str, str, str, dict[str, Any]]) -> None:
    conn = sqlite3.connect(path)
    for session_id, role, content, columns in rows:
        add_message(conn, session_id, role, content, **columns)
    conn.commit()
    conn.close()
