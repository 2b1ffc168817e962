"""Time series over the window, for sparklines and RED-over-time views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .refs import ServiceRef


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One metric of one service sampled every ``step_s`` from ``start``.

    ``metric`` is ``request_rate`` (req/s into the service), ``error_ratio`` or ``p99_ms``;
    ``None`` marks a step with no data.
    """

    service: ServiceRef
    metric: str
    start: datetime
    step_s: float
    values: tuple[float | None, ...]
