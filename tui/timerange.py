"""The dashboard's time range: the rate window and the evaluation time (now, or a given time).

Pure. A live source re-queries with it (Prometheus rates and the sparklines' range queries
cover the window ending at the time); a recorded bundle holds one window and cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from meshobs.durations import parse_duration
from meshobs.raw import parse_iso

# What `w` cycles through, as in Grafana's and Kiali's quick ranges.
PRESETS = (300.0, 900.0, 3600.0, 21600.0)


def fmt_window(seconds: float) -> str:
    """``5m``, ``1h``, ``90s``, ``1h30m``."""
    s = int(seconds)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60}m"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


@dataclass(frozen=True)
class TimeRange:
    """``window_s`` ending at ``at`` (None: now, at every refresh)."""

    window_s: float = 300.0
    at: datetime | None = None

    def label(self) -> str:
        """``last 5m`` or ``5m to 11:00:00``."""
        if self.at is None:
            return f"last {fmt_window(self.window_s)}"
        return f"{fmt_window(self.window_s)} to {self.at:%m-%d %H:%M:%S}"

    def next_preset(self) -> TimeRange:
        """The next of :data:`PRESETS` (after the current window), keeping the time."""
        later = [p for p in PRESETS if p > self.window_s]
        return TimeRange(later[0] if later else PRESETS[0], self.at)


def parse_window(text: str) -> float:
    """``15m`` -> 900.0; ValueError in words for anything else (or a zero window)."""
    seconds = parse_duration(text.strip())
    if seconds <= 0:
        raise ValueError("the window must be longer than 0s")
    return seconds


def parse_at(text: str) -> datetime | None:
    """``now`` -> None; an RFC 3339 time (``2026-11-20T11:00:00Z``, naive = UTC) -> datetime."""
    text = text.strip()
    if text.lower() in ("now", ""):
        return None
    try:
        at = parse_iso(text)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use RFC 3339, e.g. 2026-11-20T11:00:00Z, or 'now')") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
