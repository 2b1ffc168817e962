"""The history on one time axis: each service's error ratio and p99 on the history's grid.

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

Two ways to the same frames: a big history (a mesh-wide question's) is pivoted with pandas; a
small one (a single service's neighbourhood: a few thousand points) is summed in plain Python,
because importing pandas alone costs a live ``diagnose SERVICE`` about 0.25 s of its critical
path, ten times the summing. Both add a cell's values in the order they come, with the same
compensated (Kahan) summation, so they give the same bits (tests/test_timeline.py compares them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from meshobs.model import UNKNOWN_SERVICE, History, ServiceRef, WorkloadRef
from meshobs.model.history import ERRORS, P99_MS, REQUESTS

if TYPE_CHECKING:
    import numpy as np

CALLERS, SERVICE, OUTBOUND = "callers", "service", "outbound"  # the views of a service's errors
_VIEW = {"source": CALLERS, "destination": SERVICE}
# Points (one per series and step) up to which the frames are summed in plain Python; above,
# pandas pivots them once it is imported (the dashboard's load process). Its import (~0.2 s of
# CPU) pays for itself only past IMPORT_PAYS points: the hot 5,000-service question's 29,448
# points take 0.07 s in Python and 0.05 s pivoted, 294,480 take 0.81 s and 0.50 s.
SMALL = 20_000
IMPORT_PAYS = 250_000

Row = tuple[str, str, str, str, float, float]  # signal, service, view, source, time, value


@dataclass(frozen=True)
class Series:
    """One column on the grid: ``values[i]`` at ``index[i]`` (unix seconds), NaN for a gap."""

    index: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @property
    def iloc(self) -> np.ndarray:
        return self.values

    def notna(self) -> np.ndarray:
        import numpy as np

        known: np.ndarray = ~np.isnan(self.values)
        return known


@dataclass
class Frames:
    """Per-service series on the history's grid (``times``: unix seconds of each step)."""

    times: np.ndarray
    ratio: dict[tuple[str, str], np.ndarray]  # (service, view): error ratio
    edge_ratio: dict[tuple[str, str, str], np.ndarray]  # (service, source workload, view)
    p99: dict[str, np.ndarray]  # service: p99 ms

    def views(self, service: ServiceRef) -> dict[str, Series]:
        """The error ratio of ``service`` per view (callers, service) that has data."""
        key = str(service)
        return {view: Series(self.times, self.ratio[(key, view)]) for view in (CALLERS, SERVICE, OUTBOUND)
                if (key, view) in self.ratio}

    def edges(self, service: ServiceRef, view: str) -> dict[str, Series]:
        """The error ratio on each calling edge of ``service`` (by source workload) in ``view``."""
        return {src: Series(self.times, values) for src, values in self._edges_of.get((str(service), view), ())}

    @cached_property
    def _edges_of(self) -> dict[tuple[str, str], list[tuple[str, np.ndarray]]]:
        """The calling edges' series by (service, view), ordered by source workload: sorted once,
        not the whole mesh's edges per service with an onset."""
        out: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
        for (svc, src, v), values in sorted(self.edge_ratio.items()):
            if src:
                out.setdefault((svc, v), []).append((src, values))
        return out

    def latency(self, service: ServiceRef) -> Series | None:
        values = self.p99.get(str(service))
        return None if values is None else Series(self.times, values)

    @property
    def services(self) -> list[ServiceRef]:
        names = {c[0] for c in self.ratio} | set(self.p99)
        return sorted(ServiceRef.parse(n) for n in names)


def frames(history: History, services_of: Callable[[WorkloadRef], list[ServiceRef]]) -> Frames:
    """The history as per-service frames on its grid (``services_of``: a workload's services,
    to file calls to no service of the mesh under their caller)."""
    import numpy as np

    start, step = history.start.timestamp(), history.step_s
    n = round(history.span_s / step) + 1
    times = start + step * np.arange(n)
    rows: list[Row] = []
    for s in history.series:
        if s.destination.namespace != UNKNOWN_SERVICE.namespace:
            key = (str(s.destination), _VIEW.get(s.reporter, SERVICE), str(s.source or ""))
            rows.extend((s.signal, *key, t, v) for t, v in s.points)
        callers = services_of(s.source) if s.source is not None and s.reporter == "source" else []
        if callers and (s.signal == REQUESTS or s.destination.namespace == UNKNOWN_SERVICE.namespace):
            # Outbound: every request the caller sent, the errors of those that reached no service.
            rows.extend((s.signal, str(callers[0]), OUTBOUND, "", t, v) for t, v in s.points)
    cells = (_cells_pandas if pandas_pays(len(rows), "pandas" in sys.modules) else _cells)(rows, start, step, n)

    def table(signal: str, columns: tuple[int, ...]) -> dict[Any, np.ndarray]:
        return {key: values for (sig, cols), by_key in cells.items() if sig == signal and cols == columns
                for key, values in by_key.items()}

    def ratio(columns: tuple[int, ...]) -> dict[Any, np.ndarray]:
        errors = table(ERRORS, columns)
        out = {}
        for key, requests in sorted(table(REQUESTS, columns).items()):
            failed = errors.get(key)
            # Requests but no error series yet: none failed. No requests: nothing to judge (NaN).
            failed = np.where(np.isnan(requests), np.nan, 0.0) if failed is None else \
                np.where(np.isnan(failed) & ~np.isnan(requests), 0.0, failed)
            out[key] = failed / np.where(requests > 0, requests, np.nan)
        return out

    return Frames(times=times, ratio=ratio(BY_VIEW), edge_ratio=ratio(BY_EDGE), p99=table(P99_MS, BY_SERVICE))


# The columns of a row each table is keyed by (service, view, source: 1, 2, 3).
BY_VIEW, BY_EDGE, BY_SERVICE = (1, 2), (1, 3, 2), (1,)
_TABLES = ((REQUESTS, BY_VIEW), (REQUESTS, BY_EDGE), (ERRORS, BY_VIEW), (ERRORS, BY_EDGE), (P99_MS, BY_SERVICE))
Cells = dict[tuple[str, tuple[int, ...]], dict[Any, "np.ndarray"]]


def pandas_pays(points: int, imported: bool) -> bool:
    """Is pivoting ``points`` with pandas cheaper than summing them in Python (``imported``:
    pandas is already loaded in this process)? Either way gives the same bits."""
    return points > IMPORT_PAYS or (imported and points > SMALL)


def _cells(rows: list[Row], start: float, step: float, n: int) -> Cells:
    """Each table's columns, summed (p99: the largest value) per grid step, in plain Python."""
    import numpy as np

    # Each table reads the rows of its signal, in their order: grouped once, not five passes
    # over every row; the key is read by itemgetter (as _key reads it, in C).
    by_signal: dict[str, list[Row]] = {}
    for row in rows:
        by_signal.setdefault(row[0], []).append(row)
    out: Cells = {}
    for signal, columns in _TABLES:
        sums: dict[Any, list[float]] = {}
        comps: dict[Any, list[float]] = {}
        key_of = itemgetter(*columns)
        for row in by_signal.get(signal, ()):
            slot = round((row[4] - start) / step)
            if not 0 <= slot < n:
                continue
            key, value = key_of(row), row[5]
            values = sums.get(key)
            if values is None:
                values = sums[key] = [np.nan] * n
                comps[key] = [0.0] * n
            now = values[slot]
            if signal == P99_MS:
                values[slot] = value if now != now or value > now else now
            elif now != now:
                values[slot] = value
            else:
                # pandas' grouped sum, step by step: compensated, in the rows' order.
                comp = comps[key]
                y = value - comp[slot]
                t = now + y
                comp[slot] = t - now - y
                values[slot] = t
        out[(signal, columns)] = {key: np.array(values, dtype=float) for key, values in sums.items()}
    return out


def _cells_pandas(rows: list[Row], start: float, step: float, n: int) -> Cells:
    """The same as :func:`_cells`, pivoted by pandas (a big history)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=["signal", "service", "view", "source", "t", "value"])
    df["slot"] = ((df["t"] - start) / step).round().astype("int64")
    df = df[(df["slot"] >= 0) & (df["slot"] < n)]
    names = ("signal", "service", "view", "source")
    out: Cells = {}
    for signal, columns in _TABLES:
        part = df[df["signal"] == signal]
        if part.empty:
            out[(signal, columns)] = {}
            continue
        wide = part.pivot_table(index="slot", columns=[names[c] for c in columns], values="value",
                                aggfunc="max" if signal == P99_MS else "sum").reindex(range(n))
        # One conversion, then a copy per column: thousands of ``wide[key]`` lookups on a
        # multi-level column index cost more than the pivot itself.
        block = wide.to_numpy(dtype=float).T
        out[(signal, columns)] = {key: block[i].copy() for i, key in enumerate(wide.columns)}
    return out
