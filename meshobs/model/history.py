"""The metric history behind "what changed": request, error and latency series over the last
hour (or longer), per edge and reporter, exactly as the metrics server answered them.

Kept apart from :class:`~meshobs.model.series.MetricSeries` (the sparklines over the rate
window): this history is longer, finer (one point per scrape-sized step) and keeps each caller's
edge and each reporter's view apart, because a circuit breaker's 503s exist only in the caller's
view and a fault that starts on one edge shows first there. :mod:`meshobs.timeline` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .refs import ServiceRef, WorkloadRef

# The signals a history holds: requests and errors (5xx and no response) per second, and the
# p99 in milliseconds (the destination's view, per service).
REQUESTS, ERRORS, P99_MS = "requests", "errors", "p99_ms"
SIGNALS = (REQUESTS, ERRORS, P99_MS)


@dataclass(frozen=True, slots=True)
class HistorySeries:
    """One signal of one edge (or service) over the history: ``(unix seconds, value)`` points in
    time order, only where the server had a value (a gap is a step without one)."""

    signal: str  # REQUESTS | ERRORS | P99_MS
    destination: ServiceRef
    reporter: str = ""  # "source" | "destination" | "" (one view only)
    source: WorkloadRef | None = None  # the calling workload; None: all callers together
    points: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class History:
    """The history a metrics source answered for ``[start, end]`` every ``step_s`` seconds.

    ``signals`` are those whose query answered (a signal missing here could not be read, and
    ``problems`` says why); a signal answered with no series means none had data.
    """

    start: datetime
    end: datetime
    step_s: float
    series: tuple[HistorySeries, ...] = ()
    # Each point is a rate over the preceding ``rate_window_s`` (0: unknown): a step change shows
    # as a ramp that long.
    rate_window_s: float = 0.0
    # What the queries were narrowed to when not the question's whole neighbourhood (a
    # mesh-wide question times only what fails now): "the 3 services with failing requests".
    covers: str = ""
    signals: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()

    @property
    def span_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def of(self, signal: str) -> list[HistorySeries]:
        return [s for s in self.series if s.signal == signal]
