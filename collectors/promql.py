"""The PromQL the Prometheus collector sends, and Prometheus's own quantile arithmetic.

The whole mesh is read with the fixed set of queries in :data:`QUERIES`, whatever its size:
aggregation happens inside Prometheus (``sum by``), never one query per namespace or service.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# Labels that identify an edge (and the nodes it joins) in every query.
EDGE_LABELS = (
    "reporter", "source_workload", "source_workload_namespace", "source_canonical_service",
    "source_canonical_revision", "destination_service_name", "destination_service_namespace",
    "destination_workload", "destination_workload_namespace", "destination_canonical_revision",
)
# Labels that exist only on some queries' series.
REQUEST_LABELS = (
    *EDGE_LABELS, "request_protocol", "response_code", "response_flags",
    "connection_security_policy", "source_principal", "destination_principal",
)
# The histogram is the biggest answer (one series per bucket): group it by the edge key only,
# the canonical service/revision labels already arrive with the requests query.
LATENCY_LABELS = (
    "le", "reporter", "source_workload", "source_workload_namespace", "destination_service_name",
    "destination_service_namespace", "destination_workload", "destination_workload_namespace",
    "request_protocol",
)
TCP_LABELS = (*EDGE_LABELS, "connection_security_policy", "source_principal", "destination_principal")


def _by(labels: Iterable[str]) -> str:
    return ", ".join(labels)


# name -> (metric, grouping labels, drop idle series). ``> 0`` drops idle series; it is NOT
# applied to the histogram, where a missing low bucket would shift histogram_quantile's
# interpolation bounds.
QUERY_SPECS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "requests": ("istio_requests_total", REQUEST_LABELS, True),
    "latency": ("istio_request_duration_milliseconds_bucket", LATENCY_LABELS, False),
    "tcp_sent": ("istio_tcp_sent_bytes_total", TCP_LABELS, True),
    "tcp_received": ("istio_tcp_received_bytes_total", TCP_LABELS, True),
    "tcp_opened": ("istio_tcp_connections_opened_total", TCP_LABELS, True),
}

# name -> PromQL template; {window} is the rate window (``5m``). The number of entries is the
# number of queries per snapshot: tests hold it constant across mesh sizes.
QUERIES: dict[str, str] = {
    name: f"sum by ({_by(labels)}) (rate({metric}[{{window}}]))" + (" > 0" if positive else "")
    for name, (metric, labels, positive) in QUERY_SPECS.items()
}

# Istio's default request-duration buckets (milliseconds).
ISTIO_DURATION_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000,
                             60000, 300000, 600000, 1800000, 3600000)


def render(name: str, window: str) -> str:
    """The PromQL of query ``name`` over the rate window ``window`` (``5m``)."""
    return QUERIES[name].format(window=window)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """Prometheus 2.x ``histogram_quantile`` over (upper bound, cumulative count) pairs.

    Same steps as ``bucketQuantile`` in promql/quantile.go: sort, require a +Inf bucket,
    merge equal bounds, force counts monotonic, then interpolate linearly inside the bucket
    that holds the rank (the lowest bucket starts at 0; a rank in +Inf answers the highest
    finite bound). NaN when there are no observations.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    highest = -math.inf
    for b in merged:  # ensureMonotonic
        if b[1] > highest:
            highest = b[1]
        elif b[1] < highest:
            b[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    idx = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if idx == len(merged) - 1:
        return merged[-2][0]
    if idx == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[idx][0], merged[idx][1]
    if idx > 0:
        start = merged[idx - 1][0]
        count -= merged[idx - 1][1]
        rank -= merged[idx - 1][1]
    if count == 0:  # q == 0 over an empty first bucket: Go's 0/0
        return math.nan
    return start + (end - start) * (rank / count)


# -- history over the window (sparklines, RED over time) --------------------------------------
# Three range queries per snapshot, whatever the mesh size, grouped by destination service.
# They read destination-reported series only: a sparkline shows what each service served; the
# requests that never reached a destination are in the instant edges above.
SERIES_LABELS = ("destination_service_name", "destination_service_namespace")
SERIES_POINTS = 20
RANGE_SPECS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "requests": ("istio_requests_total", SERIES_LABELS, 'reporter="destination"'),
    "errors": ("istio_requests_total", SERIES_LABELS, 'reporter="destination",response_code=~"5..|0"'),
    "latency": ("istio_request_duration_milliseconds_bucket", ("le", *SERIES_LABELS), 'reporter="destination"'),
}
RANGE_QUERIES: dict[str, str] = {
    name: f"sum by ({_by(labels)}) (rate({metric}{{{selector}}}[{{rate_window}}]))"
    for name, (metric, labels, selector) in RANGE_SPECS.items()
}


def series_step_s(window_s: float) -> float:
    """Seconds between history points: the window in SERIES_POINTS steps, at least 15 s."""
    return max(15.0, window_s / SERIES_POINTS)


def series_rate_window_s(window_s: float) -> float:
    """The rate() range inside a history query: two steps, at least a minute, so every point
    sees several scrapes."""
    return max(60.0, 2 * series_step_s(window_s))


def render_range(name: str, window_s: float) -> str:
    from meshobs.durations import format_duration

    # str.replace, not format: the label matchers carry literal braces.
    return RANGE_QUERIES[name].replace("{rate_window}", format_duration(series_rate_window_s(window_s)))
