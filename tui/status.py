"""The status line's words (pure): origin, health counts, time range, refresh state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .timerange import fmt_window
from .viewmodel import ServiceRow

if TYPE_CHECKING:
    from .data import Analysis


def health_counts(rows: list[ServiceRow]) -> str:
    """``4 failing · 1 healthy · 0 unknown``. Unknown (could not judge) is always
    counted apart from healthy; degraded and partial (judged in part), and clean (nothing found
    in what was checked, its requests not judged: a waypoint), only when there is one.

    While the diagnosis runs: ``diagnosing…`` before the first one (nothing is judged yet, so
    nothing is counted as healthy), else the previous refresh's counts, named as such."""
    counts = {"failing": 0, "degraded": 0, "partial": 0, "clean": 0, "healthy": 0, "unknown": 0, "pending": 0}
    previous = False
    for r in rows:
        counts[r.health if r.health in counts else "unknown"] += 1
        previous = previous or r.previous
    if rows and counts["pending"] == len(rows):
        return "diagnosing…"
    parts = [f"{counts['failing']} failing"]
    parts += [f"{counts[k]} {k}" for k in ("degraded", "partial", "clean") if counts[k]]
    parts += [f"{counts['healthy']} healthy", f"{counts['unknown']} unknown"]
    if counts["pending"]:
        parts.append(f"{counts['pending']} diagnosing")
    text = " · ".join(parts)
    return f"diagnosing… (previous refresh: {text})" if previous else text


def range_label(analysis: Analysis) -> str:
    """``last 5m at 12:00:03`` for a live range ending now, else ``5m to 2026-11-20 12:00``."""
    snap = analysis.snapshot
    wanted = analysis.time_range
    window = fmt_window(wanted.window_s if wanted is not None else snap.window_s)
    if wanted is not None and wanted.at is None:
        return f"last {window} at {snap.time:%H:%M:%S}"
    return f"{window} to {snap.time:%Y-%m-%d %H:%M}"


def summary_line(analysis: Analysis | None, description: str, refresh: str, screen: object = None) -> str:
    """The status line. ``screen`` may word the service count (``services_label``)."""
    if analysis is None:
        return " · ".join((description, refresh))
    origin = analysis.snapshot.origin or description
    label = getattr(screen, "services_label", None)
    count = label(len(analysis.rows)) if label is not None else f"{len(analysis.rows)} services"
    parts = [origin, refresh, count, analysis.counts or health_counts(analysis.rows), range_label(analysis)]
    if analysis.rows and not any(r.has_history for r in analysis.rows):
        parts.append("no history")
    if analysis.diagnosis_error:
        parts.append(f"could not diagnose: {analysis.diagnosis_error}")
    return " · ".join(parts)
