"""``ledger.compat.hermes``: the upstream 4-tuple fix for tuple-shaped caches."""

from __future__ import annotations

import pickle

import pytest

from ledger import InvalidArgumentError
from ledger.hermes.guard import PENDING, guard, make_entry, make_pending, refresh_message_count


def test_make_entry_is_a_4_tuple() -> None:
    """An entry holds agent, signature, count and the session the count belongs to."""
    assert make_entry("agent", "sig", 3, "a") == ("agent", "sig", 3, "a")


def test_other_session_is_reused_without_comparing_counts() -> None:
    """A different session_id skips the count comparison: no false bust on a switch."""
    assert guard(make_entry("agent", "sig", 3, "a"), "b", 99) == "reuse"


def test_other_session_rebaseline_leaves_the_snapshot_alone() -> None:
    """Re-baselining with another session's count does not poison the snapshot."""
    entry = make_entry("agent", "sig", 3, "a")
    assert refresh_message_count(entry, "b", 99) is entry


def test_same_session_compares_counts() -> None:
    """The same session_id behaves as before: equal counts reuse, others rebuild."""
    entry = make_entry("agent", "sig", 3, "a")
    assert guard(entry, "a", 3) == "reuse"
    assert guard(entry, "a", 4) == "rebuild"


def test_same_session_rebaseline_updates_the_count() -> None:
    """Re-baselining the entry's own session stores the new count."""
    assert refresh_message_count(make_entry("x", "s", 3, "a"), "a", 5) == ("x", "s", 5, "a")


def test_legacy_3_tuple_is_guarded_and_stays_a_3_tuple() -> None:
    """An old 3-tuple compares counts and is re-baselined in its own shape."""
    entry = ("agent", "sig", 3)
    assert guard(entry, "any", 3) == "reuse"
    assert guard(entry, "any", 2) == "rebuild"
    assert refresh_message_count(entry, "any", 7) == ("agent", "sig", 7)


def test_2_tuple_opts_out() -> None:
    """``(agent, sig)`` is always reused and never changed."""
    entry = ("agent", "sig")
    assert guard(entry, "a", 42) == "reuse"
    assert refresh_message_count(entry, "a", 42) is entry


def test_pending_sentinel_is_never_touched() -> None:
    """The pending marker reports pending and survives re-baseline and pickling as itself."""
    assert guard(PENDING, "a", 1) == "pending"
    assert refresh_message_count(PENDING, "a", 1) is PENDING
    assert pickle.loads(pickle.dumps(PENDING)) is PENDING


def test_malformed_entry_is_an_invalid_argument_error() -> None:
    """A tuple of another size is refused loudly, as a typed (ValueError) ledger error."""
    with pytest.raises(
        InvalidArgumentError,
        match=r"^Invalid cache entry .*: expected a tuple of 2, 3 or 4 fields$",
    ):
        guard(("a", "b", 1, "s", "x"), "s", 1)


# -- upstream's behaviour, point by point -------------------------------------------------------


def test_upstream_pending_tuple_reports_pending() -> None:
    """Upstream marks a build in progress as ``(PENDING, sig, 0)``: that is pending."""
    assert make_pending("sig") == (PENDING, "sig", 0)
    assert guard(make_pending("sig"), "a", 5) == "pending"


def test_upstream_pending_tuple_is_left_alone_by_rebaseline() -> None:
    """Re-baselining must not rewrite the pending tuple's count (upstream leaves it)."""
    entry = make_pending("sig")
    assert refresh_message_count(entry, "a", 9) is entry


def test_upstream_falsy_session_id_makes_rebaseline_a_no_op() -> None:
    for falsy in ("", None):
        entry = make_entry("agent", "sig", 3, "a")
        assert refresh_message_count(entry, falsy, 9) is entry
        legacy = ("agent", "sig", 3)
        assert refresh_message_count(legacy, falsy, 9) is legacy


def test_upstream_unknown_live_count_reuses() -> None:
    """The DB read failed (None): upstream reuses instead of busting or crashing."""
    assert guard(make_entry("agent", "sig", 3, "a"), "a", None) == "reuse"
    assert guard(("agent", "sig", 3), "a", None) == "reuse"


def test_upstream_unknown_snapshot_count_reuses() -> None:
    assert guard(("agent", "sig", None, "a"), "a", 4) == "reuse"


def test_an_unknown_live_count_never_overwrites_the_snapshot() -> None:
    entry = make_entry("agent", "sig", 3, "a")
    assert refresh_message_count(entry, "a", None) is entry
