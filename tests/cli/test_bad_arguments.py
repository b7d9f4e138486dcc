"""A bad argument to any command is one ``error: …`` line, never a traceback, and writes nothing.

Out-of-range numbers are usage errors (exit 2, from the option's range); values only the ledger
can judge (a duration, a revision) are :class:`InvalidArgumentError` (exit 1).
"""

from __future__ import annotations

import pytest
from click.testing import Result

from ledger import Ledger
from ledger.store import migration
from ledger.store.database import create_engine
from tests.cli.test_errors import assert_one_error_line, run
from tests.helpers import count_events

HUGE = "99999999999999999999999"


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return migration.current_revision(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("interval", ["-1", "0", "1e300"])
def test_tail_refuses_an_interval_out_of_range(migrated_url: str, interval: str) -> None:
    assert_one_error_line(run("tail", "--url", migrated_url, "--interval", interval), 2)


def test_tail_refuses_a_negative_after(migrated_url: str) -> None:
    assert_one_error_line(run("tail", "--url", migrated_url, "--after", "-5", "--once"), 2)


def test_export_refuses_an_after_beyond_any_position(migrated_url: str) -> None:
    assert_one_error_line(run("export", "--url", migrated_url, "--after", HUGE), 2)


@pytest.mark.parametrize("older_than", ["99999999999d", "999999d", f"{HUGE}s"])
def test_compact_archive_refuses_a_duration_too_long(migrated_url: str, older_than: str) -> None:
    result = run("compact", "archive", "--url", migrated_url, "--older-than", older_than)
    assert_one_error_line(result, 1)
    assert "Invalid duration" in result.stderr


def test_compact_retention_refuses_a_duration_too_long(migrated_url: str) -> None:
    result = run(
        "compact", "retention", "--url", migrated_url, "--older-than", "99999999999d", "--yes"
    )
    assert_one_error_line(result, 1)


def test_db_upgrade_to_an_unknown_revision_names_it_and_the_known_ones(
    migrated_url: str,
) -> None:
    before = _revision(migrated_url)
    result = run("db", "upgrade", "--url", migrated_url, "9999")
    assert_one_error_line(result, 1)
    assert "'9999'" in result.stderr
    assert migration.head_revision() in result.stderr
    assert _revision(migrated_url) == before


def test_db_downgrade_to_an_unknown_revision_names_it_and_the_known_ones(
    migrated_url: str,
) -> None:
    before = _revision(migrated_url)
    result = run("db", "downgrade", "--url", migrated_url, "9999", "--yes")
    assert_one_error_line(result, 1)
    assert "'9999'" in result.stderr
    assert _revision(migrated_url) == before


UNDECODABLE = [
    ("show", "\udcff"),
    ("erase", "--session", "\udcff", "--yes"),
    ("export", "--key", "\udcff"),
    ("sessions", "--key", "\udcff"),
    ("compact", "restore", "\udcff"),
]


@pytest.mark.parametrize("args", UNDECODABLE, ids=lambda args: "-".join(args[:2]))
def test_an_argument_that_is_not_utf8_is_a_usage_error(
    migrated_url: str, args: tuple[str, ...]
) -> None:
    """``ledger show $'\\xff'``: Python hands the byte over as a lone surrogate."""
    result: Result = run("--url", migrated_url, *args)
    assert_one_error_line(result, 2)
    assert "not valid UTF-8" in result.stderr
    assert r"b'\xff'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--keys", "0"),
        ("demo", "--keys", "-1"),
        ("demo", "--turns", HUGE),
        ("bench", "--singles", "-1"),
        ("bench", "--batches", "-1"),
        ("sessions", "--offset", HUGE),
        ("compact", "history", "--limit", "-1"),
        ("scheduler", "run", "--exit-after", "-1"),
    ],
    ids=lambda args: "-".join(args),
)
def test_a_number_out_of_range_is_a_usage_error(migrated_url: str, args: tuple[str, ...]) -> None:
    assert_one_error_line(run("--url", migrated_url, *args), 2)


def test_a_refused_argument_writes_nothing(migrated_url: str) -> None:
    """The error comes before any write: the log is as it was."""
    with Ledger.open(migrated_url) as ledger:
        ledger.open_session("k")
        before = count_events(ledger)
    assert_one_error_line(run("--url", migrated_url, "demo", "--keys", "0"), 2)
    with Ledger.open(migrated_url) as ledger:
        assert count_events(ledger) == before
