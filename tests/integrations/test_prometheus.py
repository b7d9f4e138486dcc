"""``ledger.integrations.prometheus``: the cache's decisions and the append latency, as a
Prometheus scrape sees them, on both backends."""

from __future__ import annotations

import os

import pytest

from ledger import Ledger

if os.environ.get("CI") == "true":
    import prometheus_client
else:  # a developer without the extra installed: say so, rather than failing to import
    prometheus_client = pytest.importorskip("prometheus_client")

from ledger.integrations.prometheus import LedgerMetrics

KEY = "slack:T1:C1"


@pytest.fixture
def metrics() -> LedgerMetrics:
    """Metrics in a registry of their own (the global one outlives a test)."""
    return LedgerMetrics(prometheus_client.CollectorRegistry())


def sample(metrics: LedgerMetrics, name: str, **labels: str) -> float | None:
    """One sample's value from a scrape of the metrics' registry."""
    return metrics.registry.get_sample_value(name, labels)


def test_cache_decisions_are_exported_by_reason(ledger: Ledger, metrics: LedgerMetrics) -> None:
    """A miss then two hits: the counters by reason, builds, entries and hit ratio."""
    cache = ledger.cache()
    metrics.watch(cache)
    sid = ledger.open_session(KEY)
    for _ in range(3):
        decision = cache.check(KEY, sid, "sig")
        if not decision.reuse:
            cache.store(KEY, sid, "sig", "agent", ticket=decision.ticket)
    assert cache.flush()
    writer = cache.writer
    assert sample(metrics, "ledger_cache_decisions_total", cache=writer, reason="miss") == 1
    assert sample(metrics, "ledger_cache_decisions_total", cache=writer, reason="hit") == 2
    assert sample(metrics, "ledger_cache_builds_total", cache=writer) == 1
    assert sample(metrics, "ledger_cache_entries", cache=writer) == 1
    assert sample(metrics, "ledger_cache_hit_ratio", cache=writer) == pytest.approx(2 / 3)
    assert sample(metrics, "ledger_cache_decisions_recorded_total", cache=writer) == 1


def test_append_latency_is_a_histogram_by_method(ledger: Ledger, metrics: LedgerMetrics) -> None:
    """Each append is one observation; instrumenting twice does not count twice."""
    metrics.instrument(ledger)
    metrics.instrument(ledger)
    sid = ledger.open_session(KEY)
    ledger.append_message(sid, "user", "hello")
    ledger.append_messages(sid, [{"role": "assistant", "content": "hi"}])
    assert sample(metrics, "ledger_append_seconds_count", method="append_message") == 1
    assert sample(metrics, "ledger_append_seconds_count", method="append_messages") == 1
    assert sample(metrics, "ledger_append_seconds_sum", method="append_message") > 0  # type: ignore[operator]


def test_the_exposition_text_holds_every_metric(ledger: Ledger, metrics: LedgerMetrics) -> None:
    """What ``/metrics`` serves names every documented metric."""
    metrics.watch(ledger.cache())
    metrics.instrument(ledger)
    text = prometheus_client.generate_latest(metrics.registry).decode()
    for name in (
        "ledger_append_seconds",
        "ledger_cache_decisions_total",
        "ledger_cache_builds_total",
        "ledger_cache_build_seconds_total",
        "ledger_cache_entries",
        "ledger_cache_decisions_queued",
    ):
        assert name in text
