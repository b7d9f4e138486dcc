"""Keep importing a Hermes ``state.db`` as Hermes writes it (``ledger import-hermes --follow``).

Each round is one :func:`import_hermes` run: its own read snapshot of the file, and only what
changed since is written (re-imports compare content, so an unchanged file costs a read of its
index and ids, no writes). Rounds are ``interval`` seconds apart, bounded so a typo cannot poll
in a busy loop or sleep for days; ``stop`` (set from a signal handler) ends the loop between
rounds, never inside one, so a follow can be stopped at any moment without a half session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ledger.errors import InvalidArgumentError
from ledger.facade import Ledger
from ledger.hermes._importer import import_hermes
from ledger.hermes._summary import ImportSummary

__all__ = ["MAX_INTERVAL", "MIN_INTERVAL", "follow_hermes"]

#: Bounds of the polling interval, in seconds.
MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0


def follow_hermes(
    ledger: Ledger,
    path: str | Path,
    *,
    interval: float = 5.0,
    rounds: int | None = None,
    stop: threading.Event | None = None,
    on_round: Callable[[int, ImportSummary], None] | None = None,
    batch_size: int = 500,
) -> int:
    """Import ``path`` every ``interval`` seconds until ``stop`` is set (or ``rounds`` ran).

    ``on_round(number, summary)`` is called after each round (1-based). Returns the number of
    rounds run. A file that is not a Hermes state.db fails the first round with
    :class:`InvalidArgumentError`, as :func:`import_hermes` does.
    """
    if isinstance(interval, bool) or not MIN_INTERVAL <= float(interval) <= MAX_INTERVAL:
        raise InvalidArgumentError(
            "interval", interval, f"seconds between {MIN_INTERVAL} and {MAX_INTERVAL:g}"
        )
    if rounds is not None and (isinstance(rounds, bool) or rounds < 1):
        raise InvalidArgumentError("rounds", rounds, "None or an integer >= 1")
    stop = stop or threading.Event()
    done = 0
    while not stop.is_set():
        summary = import_hermes(ledger, path, batch_size=batch_size)
        done += 1
        if on_round is not None:
            on_round(done, summary)
        if rounds is not None and done >= rounds:
            break
        stop.wait(interval)
    return done
