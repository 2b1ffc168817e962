"""Range-query payloads -> per-service MetricSeries (request_rate, error_ratio, p99_ms).

The history behind the sparklines. It is optional: an older bundle without range payloads,
or a failed range query, costs the sparklines only, never the instant numbers.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from meshobs.model import MetricSeries, ServiceRef, SnapshotPart
from meshobs.raw import Payload, RawSource

from ..base import NormalizeContext
from ..promql import RANGE_QUERIES, histogram_quantile, series_step_s
from .labels import UNKNOWN

# The key of the bucket range query of bundles recorded before the server computed the p99.
LEGACY_LATENCY = "latency"


def matrix(payload: Payload) -> list[dict[str, Any]]:
    """The series of one range-query payload (``{"resultType": "matrix", "result": [...]}``)."""
    data = payload.json()
    if isinstance(data, dict) and "status" in data:
        data = data.get("data") or {}
    if isinstance(data, dict):
        if data.get("resultType", "matrix") != "matrix":
            raise ValueError(f"{payload.key}: expected a range result, got {data['resultType']}")
        data = data.get("result", [])
    if not isinstance(data, list) or not all(isinstance(s, dict) and "values" in s for s in data):
        raise ValueError(f"{payload.key}: expected a list of range series")
    from .normalize import check_series  # here, not at the top: normalize imports this module

    for i, s in enumerate(data):
        check_series(payload.key, i, s, "values")
    return data


def add_history(raw: RawSource, ctx: NormalizeContext, part: SnapshotPart) -> list[str]:
    """Range-query payloads -> MetricSeries per service (request_rate, error_ratio, p99_ms).

    Missing history (an older bundle, a failed range query) is not an error of the source:
    the instant numbers are intact. Returns what went wrong, for the status message.
    """
    problems: list[str] = []
    matrices: dict[str, list[dict[str, Any]]] = {}
    for name in (*RANGE_QUERIES, LEGACY_LATENCY):
        payload = raw.get(f"range:{name}")
        if payload is None:
            continue
        if (why := payload.failure()) is not None:
            problems.append(f"range query {name}: {why}")
            continue
        try:
            matrices[name] = matrix(payload)
        except ValueError as exc:
            problems.append(str(exc))
    if "requests" not in matrices:
        return problems
    step = series_step_s(ctx.window_s)
    start_ts = ctx.time.timestamp() - ctx.window_s
    n = round(ctx.window_s / step) + 1
    start = datetime.fromtimestamp(start_ts, tz=UTC)

    def index(t: float) -> int | None:
        i = round((t - start_ts) / step)
        return i if 0 <= i < n else None

    def service(m: dict[str, str]) -> ServiceRef | None:
        name, ns = m.get("destination_service_name"), m.get("destination_service_namespace")
        return ServiceRef(ns, name) if name and ns and UNKNOWN not in (name, ns) else None

    def grid(rows: list[dict[str, Any]]) -> dict[ServiceRef, list[float | None]]:
        out: dict[ServiceRef, list[float | None]] = {}
        for s in rows:
            ref = service(s["metric"])
            if ref is None:
                continue
            values = out.setdefault(ref, [None] * n)
            for t, v in s.get("values", []):
                i, x = index(float(t)), float(v)
                if i is not None and not math.isnan(x):
                    values[i] = (values[i] or 0.0) + x
        return out

    requests_by_svc = grid(matrices["requests"])
    errors_by_svc = grid(matrices.get("errors", []))
    p99_by_svc = grid(matrices.get("latency_p99", []))
    # Bundles recorded before the server computed the p99 hold the buckets per step instead.
    buckets: dict[ServiceRef, list[dict[float, float]]] = {}
    for s in matrices.get(LEGACY_LATENCY, []):
        ref = service(s["metric"])
        if ref is None:
            continue
        per_step = buckets.setdefault(ref, [{} for _ in range(n)])
        le = float(s["metric"].get("le", "nan"))
        for t, v in s.get("values", []):
            i = index(float(t))
            if i is not None:
                per_step[i][le] = per_step[i].get(le, 0.0) + float(v)
    for ref, rates in sorted(requests_by_svc.items()):
        errs = errors_by_svc.get(ref, [None] * n)
        ratio = tuple(None if r is None else ((e or 0.0) / r if r > 0 else 0.0) for r, e in zip(rates, errs))
        part.series.append(MetricSeries(ref, "request_rate", start, step, tuple(rates)))
        part.series.append(MetricSeries(ref, "error_ratio", start, step, ratio))
        if ref in p99_by_svc:
            p99 = tuple(None if v is None else _finite(v) for v in p99_by_svc[ref])
            part.series.append(MetricSeries(ref, "p99_ms", start, step, p99))
        elif ref in buckets:
            p99 = tuple(_finite(histogram_quantile(0.99, b.items())) if b else None for b in buckets[ref])
            part.series.append(MetricSeries(ref, "p99_ms", start, step, p99))
    return problems


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x
