"""Files the CLI writes (``export -o``, ``explain/replay --html``): never onto a database.

An output path is checked before any work starts: it must not be the database the command
reads (or its ``-wal``, ``-shm``, ``-journal`` or ``.init-lock`` files), it must not be any
SQLite database, it must be in an existing folder, and an existing file is replaced only with
``--force``. The output is written to a temporary file (0600: it holds conversations) in the
same folder and renamed over the path once complete, so a failed or interrupted write leaves
what was there before.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ledger.config import Settings
from ledger.errors import ConfigurationError, InvalidArgumentError
from ledger.store._sidecar import sqlite_file
from ledger.store.database import normalize_url

__all__ = ["atomic_output", "check_output"]

_SIDECARS = ("", "-wal", "-shm", "-journal", ".init-lock", ".rebuild-lock")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _database_files(url: str | None) -> list[Path]:
    """The files of the SQLite database ``url`` (or the configured default) names; none when
    no database is configured (``LEDGER_REQUIRE_URL=1`` and no URL: ``replay --from-jsonl``)."""
    try:
        resolved = Settings.from_env().resolve_url(url)
    except ConfigurationError:
        return []
    parsed = normalize_url(resolved)
    base = sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None
    if base is None:
        return []
    return [base.with_name(base.name + suffix) for suffix in _SIDECARS]


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: Path, url: str | None, *, force: bool) -> None:
    """Refuse an output ``path`` that would damage a database or replace a file unasked."""
    for protected in _database_files(url):
        if _same(path, protected):
            raise InvalidArgumentError(
                "output",
                str(path),
                "a file other than the ledger database and its -wal/-shm/lock files "
                "(nothing was written)",
            )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidArgumentError(
            "output", str(path), f"a path in an existing folder ({folder} does not exist)"
        )
    if path.is_dir():
        raise InvalidArgumentError("output", str(path), "a file path, not a folder")
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_file():
        with path.open("rb") as existing:
            if existing.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
                raise InvalidArgumentError(
                    "output", str(path), "a file that is not a database (nothing was written)"
                )
    if not force:
        raise InvalidArgumentError(
            "output", str(path), "a file that does not exist yet (pass --force to replace it)"
        )


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` (mode 0600) only once the block completes."""
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
