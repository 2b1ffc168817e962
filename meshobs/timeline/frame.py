"""The history on one time axis: pandas frames of each service's error ratio and p99.

The metrics server answers each series at its own timestamps (Prometheus at exactly
``start + k * step``; VictoriaMetrics aligns steps its own way; a series born mid-hour starts
mid-hour). Every point is put on the history's grid (the nearest step), then per service:

* the error ratio as its **callers** see it (source-reported errors / requests, summed over the
  calling edges) and as the **service** itself reports it (destination-reported): a circuit
  breaker's or a connection failure's 503s exist only in the callers' view, an application's
  500s in both;
* the same per calling edge (for naming the edge where a fault showed first);
* the share of its own calls that failed going to no service of the mesh (``outbound``:
  BlackHoleCluster, PassthroughCluster -- Istio names no destination namespace for them) among
  all the calls its workloads sent: no destination can carry those errors, so its caller does;
* the p99 the service served.

A step where the edge had requests but no error series yet is an error ratio of 0 (Istio creates
a series on its first failing request); a step without requests is a gap (NaN), not health.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshobs.model import UNKNOWN_SERVICE, History, ServiceRef, WorkloadRef
from meshobs.model.history import ERRORS, P99_MS, REQUESTS

if TYPE_CHECKING:
    import pandas as pd

CALLERS, SERVICE, OUTBOUND = "callers", "service", "outbound"  # the views of a service's errors
_VIEW = {"source": CALLERS, "destination": SERVICE}


@dataclass
class Frames:
    """Per-service series on the history's grid (index: unix seconds of each step)."""

    times: pd.Index
    ratio: pd.DataFrame  # columns (service, view): error ratio
    edge_ratio: pd.DataFrame  # columns (service, source workload, view)
    p99: pd.DataFrame  # columns: service

    def views(self, service: ServiceRef) -> dict[str, pd.Series]:
        """The error ratio of ``service`` per view (callers, service) that has data."""
        key = str(service)
        return {view: self.ratio[(key, view)] for view in (CALLERS, SERVICE, OUTBOUND)
                if (key, view) in self.ratio.columns}

    def edges(self, service: ServiceRef, view: str) -> dict[str, pd.Series]:
        """The error ratio on each calling edge of ``service`` (by source workload) in ``view``."""
        key = str(service)
        return {src: self.edge_ratio[(svc, src, v)] for svc, src, v in self.edge_ratio.columns
                if svc == key and v == view and src}

    def latency(self, service: ServiceRef) -> pd.Series | None:
        key = str(service)
        return self.p99[key] if key in self.p99.columns else None

    @property
    def services(self) -> list[ServiceRef]:
        names = {c[0] for c in self.ratio.columns} | set(self.p99.columns)
        return sorted(ServiceRef.parse(n) for n in names)


def frames(history: History, services_of: Callable[[WorkloadRef], list[ServiceRef]]) -> Frames:
    """The history as per-service frames on its grid (``services_of``: a workload's services,
    to file calls to no service of the mesh under their caller)."""
    import numpy as np
    import pandas as pd

    start, step = history.start.timestamp(), history.step_s
    n = round(history.span_s / step) + 1
    times = pd.Index(start + step * np.arange(n), name="time")
    rows: list[tuple[str, str, str, str, float, float]] = []
    for s in history.series:
        if s.destination.namespace != UNKNOWN_SERVICE.namespace:
            key = (str(s.destination), _VIEW.get(s.reporter, SERVICE), str(s.source or ""))
            rows.extend((s.signal, *key, t, v) for t, v in s.points)
        callers = services_of(s.source) if s.source is not None and s.reporter == "source" else []
        if callers and (s.signal == REQUESTS or s.destination.namespace == UNKNOWN_SERVICE.namespace):
            # Outbound: every request the caller sent, the errors of those that reached no service.
            rows.extend((s.signal, str(callers[0]), OUTBOUND, "", t, v) for t, v in s.points)
    df = pd.DataFrame(rows, columns=["signal", "service", "view", "source", "t", "value"])
    df["slot"] = ((df["t"] - start) / step).round().astype("int64") if len(df) else pd.Series(dtype="int64")
    df = df[(df["slot"] >= 0) & (df["slot"] < n)]

    def table(signal: str, columns: list[str], how: str = "sum") -> pd.DataFrame:
        part = df[df["signal"] == signal]
        if part.empty:
            return pd.DataFrame(index=range(n))
        wide = part.pivot_table(index="slot", columns=columns, values="value", aggfunc=how)
        return wide.reindex(range(n))

    def ratio(columns: list[str]) -> pd.DataFrame:
        requests = table(REQUESTS, columns)
        if requests.columns.empty:
            return pd.DataFrame(index=times)
        errors = table(ERRORS, columns).reindex(columns=requests.columns)
        # Requests but no error series yet: none failed. No requests: nothing to judge (NaN).
        errors = errors.where(errors.notna() | requests.isna(), 0.0)
        out = errors / requests.where(requests > 0)
        out.index = times
        return out

    p99 = table(P99_MS, ["service"], "max")
    p99.index = times
    return Frames(times=times, ratio=ratio(["service", "view"]),
                  edge_ratio=ratio(["service", "source", "view"]), p99=p99)
