"""Lock files beside a SQLite database: ``<file>.init-lock`` and ``<file>.rebuild-lock``.

A lock is an ``flock`` on its own sidecar file, never on the database file: closing any
descriptor of a file drops every POSIX lock this process holds on it, SQLite's included. An
``flock`` ends with the process however it ends, so a killed holder never leaves it taken.
"""

from __future__ import annotations

import fcntl
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from ledger.errors import ConfigurationError

__all__ = ["sidecar_lock", "sqlite_file"]


def sqlite_file(url: sa.URL) -> Path | None:
    """The file a SQLite URL names, or None for a database in memory.

    Handles plain paths and ``file:`` URIs (``sqlite:///file:/srv/ledger.db?uri=true``), where
    ``:memory:`` or ``mode=memory`` means no file.
    """
    database = url.database
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        if url.query.get("mode") == "memory":
            return None
        location = urllib.parse.urlsplit(database)
        database = urllib.parse.unquote(location.path)
        if not database or database == ":memory:":
            return None
    return Path(database).expanduser()


@contextmanager
def sidecar_lock(database: Path, suffix: str, *, wait: bool) -> Iterator[bool]:
    """Hold the ``flock`` of ``<database><suffix>`` for the block; yields whether it is held.

    With ``wait`` the block starts once the lock is free (and yields True); without, it yields
    False at once when another process (or another descriptor here) holds it. A lock file we
    may read but not write (another user's) is locked through a read-only descriptor. A
    symbolic link in its place, or a folder we cannot create it in, is a
    :class:`ConfigurationError` naming the path.
    """
    path = database.with_name(database.name + suffix)
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
    except PermissionError:
        fd = _open_existing(path)
    except OSError as exc:
        raise _unusable(path, exc) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # also releases the flock


def _open_existing(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise _unusable(path, exc) from exc


def _unusable(path: Path, exc: OSError) -> ConfigurationError:
    """``database init lock=…``, ``database rebuild lock=…``: which lock, and why not."""
    what = "database " + path.name.rsplit(".", 1)[-1].replace("-", " ")
    return ConfigurationError(what, str(path), f"a regular file we can open ({exc})")
