"""The "what changed" part of a diagnosis, for every output: when each symptom started, in which
order the services went wrong, and the dated changes around it.

Text and Markdown list one line per event in time order (the changes someone made, each onset
with the change just before it), then the services in the order their trouble began. Pushes to
proxies and certificate renewals happen all the time: they are listed only where they came just
before an onset, and counted otherwise (``-o json`` lists them all).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from meshobs.model import ServiceRef
from meshobs.timeline import Change, Onset, Timeline
from meshobs.timeline.changes import INTENT


def _clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t is not None else ""


def _view(onset: Onset) -> str:
    if onset.signal != "errors":
        return "p99"
    return {"callers": "as its callers see it", "service": "as it reports it",
            "outbound": "of its calls to no service of the mesh"}.get(onset.view, onset.view)


def onset_line(onset: Onset) -> str:
    """"errors on rides/booking-api started (0% -> 18%, as its callers see it), 40 s after ..."."""
    levels = (onset.level(onset.after) if onset.before_history
              else f"{onset.level(onset.before)} -> {onset.level(onset.after)}")
    text = f"{onset.signal} on {onset.service} {'already there' if onset.before_history else 'started'} " \
           f"({levels}, {_view(onset)})"
    change = onset.change
    if change is not None and onset.lead_s is not None:
        lead = "at the same time as" if abs(onset.lead_s) < 1 else f"{onset.lead_s:.0f} s after"
        text += f", {lead} {change.subject} {change.what} ({_clock(change.at)})"
        if onset.via is not None:
            text += f", which touches {onset.via}, a service it calls"
    return text


def order(timeline: Timeline) -> list[tuple[ServiceRef, datetime | None]]:
    """Services by when their first symptom started (those already there when the history began
    first), each once."""
    first: dict[ServiceRef, datetime | None] = {}
    for o in timeline.onsets:  # already in time order
        first.setdefault(o.service, o.started)
    return list(first.items())


def _shown_changes(timeline: Timeline) -> tuple[list[Change], int]:
    """The changes worth a line (someone's change inside the history, or any change just before
    an onset) and how many others there are."""
    paired = {o.change for o in timeline.onsets if o.change is not None}
    start = timeline.start
    shown = [c for c in timeline.changes
             if c in paired or (c.kind in INTENT and (start is None or c.at >= start))]
    return shown, len(timeline.changes) - len(shown)


def text_lines(timeline: Timeline, indent: str = "  ") -> list[str]:
    """The "What changed" section as text lines (header included)."""
    if not timeline.checked:
        return [f"What changed: could not check ({timeline.reason})"]
    covers = f"; timed: {timeline.covers}" if timeline.covers else ""
    lines = [f"What changed (history {_clock(timeline.start)}-{_clock(timeline.end)}, "
             f"{timeline.resolution_s:g} s steps{covers})"]
    changes, hidden = _shown_changes(timeline)
    events: list[tuple[float, int, str]] = []
    for c in changes:
        events.append((c.at.timestamp(), 0, f"{_clock(c.at)} {c.describe()}"))
    for o in timeline.onsets:
        at = o.started.timestamp() if o.started is not None else -math.inf
        stamp = _clock(o.started) if o.started is not None else f"before {_clock(timeline.start)}"
        events.append((at, 1, f"{stamp} {onset_line(o)}"))
    for _at, _n, text in sorted(events, key=lambda e: (e[0], e[1])):
        lines.append(indent + text)
    if not timeline.onsets:
        lines.append(f"{indent}no symptom started in this history")
    ranked = order(timeline)
    if len(ranked) > 1:
        lines.append(f"{indent}order of onset: " + _order_text(ranked))
    if hidden:
        lines.append(f"{indent}(+{hidden} proxy pushes and certificate renewals not near an onset; -o json lists them)")
    for u in timeline.unchecked:
        lines.append(f"{indent}could not check {u.signal} on {u.service}: {u.reason}")
    return lines


def _order_text(ranked: list[tuple[ServiceRef, datetime | None]]) -> str:
    parts: list[str] = []
    previous: datetime | str | None = "unset"
    for svc, t in ranked:
        sep = "" if not parts else (" = " if t == previous else " < ")
        parts.append(f"{sep}{svc} ({_clock(t) if t is not None else 'before the history'})")
        previous = t
    return "".join(parts)


def change_dict(c: Change) -> dict[str, Any]:
    return {"at": c.at.isoformat(), "kind": c.kind, "subject": c.subject, "what": c.what,
            "detail": c.detail or None, "services": [str(s) for s in c.services]}


def _number(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


def onset_dict(o: Onset) -> dict[str, Any]:
    return {"service": str(o.service), "signal": o.signal,
            "started": o.started.isoformat() if o.started is not None else None,
            "before_history": o.before_history, "before": _number(o.before), "after": _number(o.after),
            "seen_by": o.view, "edges": list(o.edges),
            "change": change_dict(o.change) if o.change is not None else None,
            "lead_s": round(o.lead_s, 1) if o.lead_s is not None else None,
            "through": str(o.via) if o.via is not None else None}


def timeline_dict(timeline: Timeline) -> dict[str, Any]:
    """The timeline as plain data (the ``timeline`` key of ``diagnose -o json``)."""
    return {
        "checked": timeline.checked, "reason": timeline.reason or None,
        "start": timeline.start.isoformat() if timeline.start is not None else None,
        "end": timeline.end.isoformat() if timeline.end is not None else None,
        "resolution_s": timeline.resolution_s or None, "lookback_s": timeline.lookback_s or None,
        "covers": timeline.covers or None,
        "onsets": [onset_dict(o) for o in timeline.onsets],
        "order": [str(s) for s, _t in order(timeline)],
        "changes": [change_dict(c) for c in timeline.changes],
        "unchecked": [{"service": str(u.service), "signal": u.signal, "reason": u.reason} for u in timeline.unchecked],
    }


def markdown_lines(timeline: Timeline, level: str = "##") -> list[str]:
    """The section as Markdown: the text lines as a list."""
    head, *rest = text_lines(timeline, indent="")
    return [f"{level} {head}", "", *(f"- {line}" for line in rest), ""] if rest else [f"{level} {head}", ""]
