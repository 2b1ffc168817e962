"""Durations as people write them in config and flags: ``30s``, ``5m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; a bare number is seconds. Raises ValueError with the bad text."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"negative duration {text!r}")
        return float(text)
    s = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)")
    return total


def seconds(value: float) -> str:
    """A duration for a message: ``1.2``, ``5``, ``0.25`` (not ``1.20501``; a budget cut to what is
    left of the run's deadline is such a number)."""
    return f"{round(value, 2 if value < 1 else 1):g}"


def format_duration(seconds: float) -> str:
    """Compact form for PromQL ranges and display: 300 -> ``5m``, 90 -> ``90s``, 0.5 -> ``500ms``
    (a window not a whole number of seconds, which PromQL reads in milliseconds; rounded to
    seconds, ``--window 500ms`` became a ``[0s]`` range, a parse error that lost every query)."""
    if seconds != round(seconds):
        return f"{round(seconds * 1000)}ms"
    s = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"
