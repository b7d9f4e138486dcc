"""The cache is fail-safe: a database it cannot read never crashes a turn, and nothing written
meanwhile is missed once it can read again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ledger import AgentCache, DatabaseError, Ledger
from ledger.config import Settings
from ledger.views import SessionViews
from tests._proxy import TcpProxy

KEY = "agent:main:discord:dm:3"
SIG = "sig"


def _down(*_: object, **__: object) -> int:
    raise DatabaseError("connection refused", backend="test")


def _built(ledger: Ledger) -> tuple[str, AgentCache]:
    """A session and a cache that has built and stored its agent ``A1``."""
    sid = ledger.open_session(KEY)
    cache = ledger.cache()
    first = cache.check(KEY, sid, SIG)
    cache.store(KEY, sid, SIG, "A1", ticket=first.ticket)
    return sid, cache


def test_an_unreadable_head_reuses_with_reason_unverified_and_moves_no_baseline(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid, cache = _built(ledger)
    before = cache.baselines(KEY)
    monkeypatch.setattr(SessionViews, "live_sequence", _down)
    decision = cache.check(KEY, sid, SIG)
    assert (decision.action, decision.reason, decision.agent) == ("reuse", "unverified", "A1")
    assert cache.baselines(KEY) == before


def test_a_transient_error_is_retried_and_the_check_verified(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid, cache = _built(ledger)
    real = SessionViews.live_sequence
    failures = iter([True])

    def flaky(self: SessionViews, session_id: str) -> int | None:
        if next(failures, False):
            raise DatabaseError("server closed the connection unexpectedly", backend="test")
        return real(self, session_id)

    monkeypatch.setattr(SessionViews, "live_sequence", flaky)
    assert cache.check(KEY, sid, SIG).reason == "hit"


def test_rebaseline_during_an_outage_is_a_no_op(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid, cache = _built(ledger)
    result = ledger.append_message(sid, "user", "ours")
    monkeypatch.setattr(AgentCache, "_kinds", _down)
    before = cache.baselines(KEY)
    cache.rebaseline(KEY, sid, result)  # must not raise
    assert cache.baselines(KEY) == before


@pytest.fixture
def proxy(migrated_url: str) -> Iterator[tuple[TcpProxy, str]]:
    url = sa.engine.make_url(migrated_url)
    running = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    try:
        yield running, url.set(port=running.port).render_as_string(hide_password=False)
    finally:
        running.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_real_outage_reuses_unverified_and_a_write_made_meanwhile_rebuilds_after(
    proxy: tuple[TcpProxy, str], migrated_url: str, settings: Settings
) -> None:
    """Connections terminated and refused: no exception, ``unverified``; after recovery the
    foreign write made during the outage is seen (``foreign_write``)."""
    link, through_proxy = proxy
    with Ledger.open(through_proxy, writer="gateway", settings=settings) as ledger:
        sid = ledger.open_session(KEY)
        cache = ledger.cache()
        first = cache.check(KEY, sid, SIG)
        cache.store(KEY, sid, SIG, "A1", ticket=first.ticket)
        link.cut()
        decision = cache.check(KEY, sid, SIG)
        assert (decision.action, decision.reason, decision.agent) == ("reuse", "unverified", "A1")
        with Ledger.open(migrated_url, writer="other", settings=settings) as other:
            other.append_message(sid, "user", "written while the gateway was cut off")
        link.restore()
        after = cache.check(KEY, sid, SIG)
        assert (after.action, after.reason) == ("rebuild", "foreign_write")
        cache.abandon(KEY, ticket=after.ticket)
