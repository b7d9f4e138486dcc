"""Prometheus metrics for a gateway on the ledger (optional extra: ``session-ledger[prometheus]``).

::

    from prometheus_client import start_http_server
    from ledger.integrations.prometheus import LedgerMetrics

    metrics = LedgerMetrics()            # registers in prometheus_client's default REGISTRY
    metrics.instrument(ledger)           # Ledger or AsyncLedger: append latency histogram
    metrics.watch(cache)                 # AgentCache or AsyncAgentCache: its decisions
    start_http_server(9108)

Exposed (each cache labelled ``cache`` = its writer):

==========================================  =========  ======================================
metric                                      type       what
==========================================  =========  ======================================
``ledger_append_seconds``                   histogram  ``append_message`` / ``append_messages``
                                                       latency, by ``method``
``ledger_cache_decisions_total``            counter    decisions by ``reason`` (``hit``,
                                                       ``miss``, ``foreign_write``, …,
                                                       ``evicted``, ``expired``)
``ledger_cache_builds_total``               counter    agents built and stored
``ledger_cache_build_seconds_total``        counter    time from a miss/rebuild to its store
``ledger_cache_abandoned_builds_total``     counter    builds that failed
``ledger_cache_entries``                    gauge      agents cached now
``ledger_cache_hit_ratio``                  gauge      reuses over turn decisions
``ledger_cache_decisions_recorded_total``   counter    decisions written to ``decisions-*``
``ledger_cache_decisions_queued``           gauge      decisions waiting to be written
``ledger_cache_decisions_dropped_total``    counter    decisions given up (database away long)
==========================================  =========  ======================================

The cache metrics are read from :meth:`AgentCache.stats` when Prometheus scrapes (a custom
collector: nothing is counted twice and a hit costs nothing extra); the append histogram
wraps the ledger's two append methods on that one object.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger.aio import AsyncLedger
from ledger.cache import AgentCache, AsyncAgentCache, CacheStats
from ledger.facade import Ledger

__all__ = ["LedgerMetrics"]

#: Append latency buckets: a SQLite append is ~0.1-1 ms, PostgreSQL ~1-5 ms, a stall longer.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_APPENDS = ("append_message", "append_messages")


class _CacheCollector(Collector):
    """Reads each watched cache's :class:`CacheStats` at scrape time."""

    def __init__(self) -> None:
        self.caches: weakref.WeakSet[AgentCache] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        label = ["cache"]
        decisions = CounterMetricFamily(
            "ledger_cache_decisions", "Agent cache decisions by reason.", labels=[*label, "reason"]
        )
        counters = {
            "builds": CounterMetricFamily(
                "ledger_cache_builds", "Agents built and stored.", labels=label
            ),
            "build_seconds": CounterMetricFamily(
                "ledger_cache_build_seconds", "Seconds from miss/rebuild to store.", labels=label
            ),
            "abandoned": CounterMetricFamily(
                "ledger_cache_abandoned_builds", "Builds that failed.", labels=label
            ),
            "recorded": CounterMetricFamily(
                "ledger_cache_decisions_recorded", "Decisions written to the log.", labels=label
            ),
            "dropped": CounterMetricFamily(
                "ledger_cache_decisions_dropped", "Decisions given up.", labels=label
            ),
        }
        gauges = {
            "entries": GaugeMetricFamily("ledger_cache_entries", "Agents cached.", labels=label),
            "hit_rate": GaugeMetricFamily(
                "ledger_cache_hit_ratio", "Reuses over turn decisions.", labels=label
            ),
            "queued": GaugeMetricFamily(
                "ledger_cache_decisions_queued", "Decisions not yet written.", labels=label
            ),
        }
        for cache in list(self.caches):
            stats: CacheStats = cache.stats()
            name = [cache.writer]
            for reason, count in stats.decisions.items():
                decisions.add_metric([*name, reason], count)
            for field, family in counters.items():
                family.add_metric(name, float(getattr(stats, field)))
            for field, gauge in gauges.items():
                value = getattr(stats, field)
                if value is not None:
                    gauge.add_metric(name, float(value))
        yield decisions
        yield from counters.values()
        yield from gauges.values()


class LedgerMetrics:
    """The ledger's metrics in one Prometheus ``registry`` (default: the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        self._caches = _CacheCollector()
        self.registry.register(self._caches)
        self.append_seconds = Histogram(
            "ledger_append_seconds",
            "Latency of Ledger.append_message / append_messages.",
            ["method"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def watch(self, cache: AgentCache | AsyncAgentCache) -> None:
        """Export ``cache``'s decisions (read at scrape time; held weakly)."""
        self._caches.caches.add(cache.sync if isinstance(cache, AsyncAgentCache) else cache)

    def instrument(self, ledger: Ledger | AsyncLedger) -> None:
        """Time every ``append_message`` / ``append_messages`` of ``ledger`` (an AsyncLedger's
        appends run on its sync twin, so instrumenting either covers both)."""
        target = ledger.ledger if isinstance(ledger, AsyncLedger) else ledger
        for method in _APPENDS:
            original = getattr(target, method)
            if getattr(original, "_ledger_metrics", None) is self:
                continue
            setattr(target, method, self._timed(original, self.append_seconds.labels(method)))

    def _timed(self, func: Callable[..., Any], histogram: Any) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - start)

        timed._ledger_metrics = self  # type: ignore[attr-defined]
        return timed
