"""How the benchmark scripts time things, so that drift hits every side of a comparison alike.

Contenders run interleaved: in rounds whose order rotates by one each round, after a warm-up of
each, so a disk that slows down or a server that warms up hurts the ledger and its baseline
equally. Per-call latencies are summarised as median and nearest-rank p99. The comparison
records turn the seconds of both sides into rates, ratios and their JSON figures.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from .machine import rss_note
from .output import log

__all__ = [
    "Comparison",
    "Runner",
    "TargetComparison",
    "Timing",
    "counter",
    "interleaved_calls",
    "latency_figures",
    "log_pass",
    "measure_rounds",
    "percentile",
    "progress_logger",
    "rotation",
    "split",
    "timed",
]

T = TypeVar("T")
A = TypeVar("A")
#: What a runner returns for ``n`` operations: seconds in all and each operation's seconds
#: (an empty list where only the total is of interest).
Timing = tuple[float, list[float]]
#: Performs ``n`` operations and returns their :data:`Timing`.
Runner = Callable[[int], Timing]


def split(total: int, parts: int) -> list[int]:
    """``total`` operations in ``parts`` near-equal shares."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def rotation(turn: int, sides: int) -> list[int]:
    """The order of ``sides`` contenders in round ``turn``: rotated by one each round."""
    return [(turn + offset) % sides for offset in range(sides)]


def measure_rounds(
    label: str,
    runners: Sequence[Runner],
    operations: int,
    rounds: int,
    warmup: int,
    unit: str = "operations",
) -> list[Timing]:
    """Each runner's :data:`Timing` for ``operations`` operations, in rotating ``rounds``."""
    log(f"{label}: warming up ({warmup} operations each)")
    for runner in runners:
        runner(warmup)
    totals: list[Timing] = [(0.0, []) for _ in runners]
    for index, share in enumerate(split(operations, rounds)):
        for side in rotation(index, len(runners)):
            seconds, latencies = runners[side](share)
            totals[side] = (totals[side][0] + seconds, totals[side][1] + latencies)
        shown = ", ".join(f"{t[0]:.2f}s" for t in totals)
        log(f"{label}: round {index + 1}/{rounds}, {share} {unit} each; so far {shown}")
    return totals


def log_pass(where: str, count: int, took: float) -> None:
    """The progress line of one timed pass over ``count`` events, with the peak RSS so far."""
    log(f"{where}: {count:,} events in {took:.2f}s ({count / took:,.0f} ev/s); {rss_note()}")


def interleaved_calls(
    calls: Sequence[Callable[[A], object]], args: Sequence[A]
) -> list[list[float]]:
    """Each of ``calls`` on each of ``args`` in turn, the order of the calls rotating from one
    argument to the next: per call, the µs it took on each argument."""
    samples: list[list[float]] = [[] for _ in calls]
    for index, arg in enumerate(args):
        for side in rotation(index, len(calls)):
            call = calls[side]
            start = time.perf_counter_ns()
            call(arg)
            samples[side].append((time.perf_counter_ns() - start) / 1000)
    return samples


def timed(call: Callable[[], T]) -> tuple[float, T]:
    """One call's wall time in µs, and what it returned."""
    start = time.perf_counter_ns()
    result = call()
    return (time.perf_counter_ns() - start) / 1000, result


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def latency_figures(
    samples: Sequence[float], baseline: Sequence[float], target_median_us: float | None
) -> dict[str, Any]:
    """Median and p99 of both sides in µs, and whether the median meets its target."""
    median = statistics.median(samples)
    return {
        "median_us": round(median, 1),
        "p99_us": round(percentile(samples, 0.99), 1),
        "baseline_median_us": round(statistics.median(baseline), 1),
        "baseline_p99_us": round(percentile(baseline, 0.99), 1),
        "target_median_us": target_median_us,
        "meets_target": None if target_median_us is None else median < target_median_us,
    }


def progress_logger(
    message: Callable[[int], str], total: int, *, first: int | None = None
) -> Callable[[int], None]:
    """A ``progress(n)`` callback that counts and logs ``message(count)`` about every 10%.

    The first line comes at ``first`` (default: the first 10% of ``total``).
    """
    step = max(total // 10, 1)
    done = 0
    next_report = step if first is None else first

    def progress(n: int) -> None:
        nonlocal done, next_report
        done += n
        if done >= next_report:
            log(message(done))
            next_report += step

    return progress


def counter(label: str, total: int, what: str = "events") -> Callable[[int], None]:
    """:func:`progress_logger` with lines ``  LABEL: N events``."""
    return progress_logger(lambda done: f"  {label}: {done:,} {what}", total)


class Comparison:
    """Mixin for a dataclass with ``events``, ``ledger_seconds`` and ``baseline_seconds``:
    the rates of both sides over the same events and their ratio."""

    __slots__ = ()
    events: int
    ledger_seconds: float
    baseline_seconds: float

    @property
    def ledger_rate(self) -> float:
        return self.events / self.ledger_seconds

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.ledger_rate / self.baseline_rate

    def rates(
        self, ledger: str = "ledger_events_per_s", baseline: str = "baseline_events_per_s"
    ) -> dict[str, float]:
        """Both rates (under the keys ``ledger`` and ``baseline``) and the ratio, rounded."""
        return {
            ledger: round(self.ledger_rate, 1),
            baseline: round(self.baseline_rate, 1),
            "ratio": round(self.ratio, 3),
        }


class TargetComparison(Comparison):
    """A :class:`Comparison` with a ``target`` ratio (``None``: no target)."""

    __slots__ = ()
    target: float | None

    @property
    def meets_target(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target

    def as_dict(self) -> dict[str, Any]:
        fields: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        return fields | self.rates() | {"meets_target": self.meets_target}
