"""App Mesh durations (``{value, unit}``, milliseconds in the layout) as Istio duration text."""

from __future__ import annotations


def duration_text(ms: float) -> str:
    """Milliseconds -> ``10s`` / ``1500ms`` (Istio's precision is the millisecond)."""
    whole = round(ms)
    return f"{whole // 1000}s" if whole % 1000 == 0 else f"{whole}ms"
