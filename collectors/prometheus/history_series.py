"""History-query payloads (``history:<name>``) -> the snapshot's :class:`~meshobs.model.History`.

The answers are kept as the server gave them: one series per edge and reporter (requests,
errors) or per service (p99), each point at the server's own timestamp. Putting them on one
time axis is :mod:`meshobs.timeline`'s job. A failed history query costs the onsets of its
signal, never the instant numbers; a bundle recorded without history has none (``None``).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from meshobs.model import History, HistorySeries, ServiceRef, WorkloadRef
from meshobs.model.history import ERRORS, P99_MS, REQUESTS
from meshobs.raw import RawSource
from meshobs.redact import redact_text

from ..promql import HISTORY_QUERIES
from .history import matrix
from .labels import UNKNOWN

SIGNAL_OF = {"requests": REQUESTS, "errors": ERRORS, "latency_p99": P99_MS}


def read_history(raw: RawSource) -> tuple[History | None, list[str]]:
    """The history the ``history:*`` payloads hold (None when none was collected) and what went
    wrong with them, for the source's status."""
    problems: list[str] = []
    series: list[HistorySeries] = []
    signals: set[str] = set()
    bounds: tuple[float, float, float] | None = None
    rate_window = 0.0
    for name in HISTORY_QUERIES:
        payload = raw.get(f"history:{name}")
        if payload is None:
            continue
        if bounds is None:
            bounds = _bounds(payload.params)
            rate_window = _rate_window(str(payload.params.get("query", "")))
        if (why := payload.failure()) is not None:
            problems.append(why if name in why else f"history query {name}: {why}")
            continue
        try:
            rows = matrix(payload)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        signals.add(SIGNAL_OF[name])
        series.extend(_series(SIGNAL_OF[name], row) for row in rows)
    # They travel into reports (a reason for "could not check"): URLs may carry credentials.
    problems = [redact_text(p) for p in problems]
    if bounds is None:
        return _not_sent(raw), problems
    start, end, step = bounds
    note = raw.meta.get("history")
    covers = str(note.get("covers", "")) if isinstance(note, dict) else ""
    return History(start=datetime.fromtimestamp(start, tz=UTC), end=datetime.fromtimestamp(end, tz=UTC),
                   step_s=step, series=tuple(series), signals=frozenset(signals),
                   problems=tuple(problems), rate_window_s=rate_window, covers=covers), problems


def _not_sent(raw: RawSource) -> History | None:
    """The history of a run that sent no history query on purpose (``meta["history"]``, see
    :mod:`.history_scope`): empty and complete when nothing failed, else empty with the reason."""
    note = raw.meta.get("history")
    if not isinstance(note, dict) or (bounds := _bounds(note)) is None:
        return None
    start, end, step = bounds
    empty = bool(note.get("empty"))
    return History(start=datetime.fromtimestamp(start, tz=UTC), end=datetime.fromtimestamp(end, tz=UTC),
                   step_s=step, signals=frozenset(SIGNAL_OF.values()) if empty else frozenset(),
                   problems=() if empty else (f"history not read: {note.get('skipped', 'not sent')}",))


def _bounds(params: dict[str, Any]) -> tuple[float, float, float] | None:
    """(start, end, step) of a range query as it was sent."""
    try:
        start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
    except (KeyError, TypeError, ValueError):
        return None
    return (start, end, step) if end > start and step > 0 else None


def _rate_window(promql: str) -> float:
    """The range of the query's rate() as it was sent (``[1m]``); 0 when it cannot be read."""
    from meshobs.durations import parse_duration

    found = re.search(r"\[([0-9][0-9a-z.]*)\]", promql)
    try:
        return parse_duration(found.group(1)) if found else 0.0
    except ValueError:
        return 0.0


def _series(signal: str, row: dict[str, Any]) -> HistorySeries:
    m: dict[str, str] = row.get("metric") or {}
    # Requests to no service of the mesh keep what Istio names them: BlackHoleCluster,
    # PassthroughCluster (namespace "unknown"); the timeline files them under their caller.
    name = m.get("destination_service_name") or UNKNOWN
    ns = m.get("destination_service_namespace") or UNKNOWN
    src, src_ns = m.get("source_workload"), m.get("source_workload_namespace")
    source = WorkloadRef(src_ns, src) if src and src_ns and UNKNOWN not in (src, src_ns) else None
    points = []
    for t, v in row.get("values", []):
        x = float(v)
        if not (math.isnan(x) or math.isinf(x)):
            points.append((float(t), x))
    return HistorySeries(signal, ServiceRef(ns, name), m.get("reporter", ""), source, tuple(points))
