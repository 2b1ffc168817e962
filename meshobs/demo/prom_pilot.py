"""The control-plane query (:func:`meshobs.collectors.promql.control_plane_query`) answered from
an authored scenario's timeline, as Prometheus answers it from the same samples: ``rate()``
with Prometheus's extrapolation, ``max``/``sum`` of a gauge's latest sample within the 5 minute
lookback, ``histogram_quantile`` over the buckets' rates, and each branch tagged with its
``meshobs`` label. ``tests/test_scenarios_live.py`` compares it with a real server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime

from meshobs.collectors.promql import (
    CONTROL_PLANE,
    ISTIOD_LABELS,
    REJECT_TYPES,
    control_plane_query,
    histogram_quantile,
)
from meshobs.durations import format_duration
from meshobs.raw import Payload

from .prom_timeline import Series, Timeline

LOOKBACK_S = 300.0  # Prometheus's default lookback delta for instant vectors

Group = tuple[tuple[str, str], ...]


def _group(s: Series, extra: tuple[str, ...]) -> Group:
    return tuple((k, s.labels[k]) for k in (*ISTIOD_LABELS, *extra) if s.labels.get(k))


def _latest(timeline: Timeline, s: Series) -> float | None:
    points = timeline.samples(s, 0.0, LOOKBACK_S)
    return points[-1][1] if points else None


def _aggregate(timeline: Timeline, name: str, extra: tuple[str, ...], value: Callable[[Series], float | None],
               combine: Callable[[float, float], float], where: Callable[[Series], bool] = lambda s: True,
               ) -> dict[Group, float]:
    out: dict[Group, float] = {}
    for s in timeline.series:
        if s.name != name or not where(s):
            continue
        v = value(s)
        if v is None:
            continue
        key = _group(s, extra)
        out[key] = combine(out[key], v) if key in out else v
    return out


def control_plane_answer(timeline: Timeline, window_s: float) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every series the control-plane query answers."""
    def rate(s: Series) -> float | None:
        return timeline.rate(s, 0.0, window_s)

    def latest(s: Series) -> float | None:
        return _latest(timeline, s)

    def add(a: float, b: float) -> float:
        return a + b

    branches: list[tuple[str, dict[Group, float]]] = [
        ("pushes", _aggregate(timeline, "pilot_xds_pushes", ("type",), rate, add)),
        ("rejects", _aggregate(timeline, "pilot_total_xds_rejects", ("type",), rate, add)),
        ("push_context_errors", _aggregate(timeline, "pilot_xds_push_context_errors", (), rate, add)),
        *((f"reject_{t}", _aggregate(timeline, f"pilot_xds_{t}_reject", ("node", "err"), latest, max))
          for t in REJECT_TYPES),
        ("connected", _aggregate(timeline, "pilot_xds", ("version",), latest, add)),
    ]
    buckets = _aggregate(timeline, "pilot_proxy_convergence_time_bucket", ("le",), rate, add)
    by_replica: dict[Group, list[tuple[float, float]]] = {}
    for key, v in buckets.items():
        labels = dict(key)
        le = labels.pop("le")
        by_replica.setdefault(tuple(labels.items()), []).append((math.inf if le == "+Inf" else float(le), v))
    branches.append(("convergence_p99", {k: histogram_quantile(0.99, b) for k, b in by_replica.items()}))
    branches.append(("build", _aggregate(timeline, "istio_build", ("tag",), latest, max,
                                         where=lambda s: s.labels.get("component") == "pilot")))
    out: list[tuple[dict[str, str], float]] = []
    seen: set[Group] = set()
    for tag, values in branches:
        for key, v in values.items():
            labels = {**dict(key), "meshobs": tag}
            ident = tuple(sorted(labels.items()))
            if ident not in seen:  # "or" keeps the first of two equal label sets
                seen.add(ident)
                out.append((labels, v))
    return out


def control_plane_payload(timeline: Timeline, time: datetime, window_s: float) -> Payload:
    """The payload the Prometheus collector records for the control-plane query."""
    ts = time.timestamp()
    ts_json: float | int = int(ts) if ts == int(ts) else ts
    result = [{"metric": labels, "value": [ts_json, "NaN" if math.isnan(v) else repr(float(v))]}
              for labels, v in control_plane_answer(timeline, window_s)]
    return Payload(key=f"query:{CONTROL_PLANE}", status=200, url="demo/api/v1/query",
                   body=json.dumps({"resultType": "vector", "result": result}),
                   params={"query": control_plane_query(format_duration(window_s)), "time": ts},
                   meta={"phase": "scoped"})
