"""Onsets as evidence: when each finding's symptom began, and what changed just before.

The timeline (:mod:`meshobs.timeline`) knows when each service's errors and latency started.
Every finding on such a service that is about that kind of symptom -- the symptom itself, or a
cause that produces it -- carries it in its evidence: ``errors_started`` / ``latency_started``
(an ISO time, or "before <the history's start>") and, when a change came just before,
``after_change`` ("DestinationRule fares/surge-calculator changed at 11:39:20, 40 s before").

The ranking reads the same evidence back (:func:`began`): among findings it cannot otherwise
tell apart, the one whose trouble began first ranks first -- the root cause usually starts
first, and a change that came before everything it explains starts earliest of all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from meshobs.catalogue import CATALOGUE
from meshobs.checks.base import Finding
from meshobs.model import frozen_map
from meshobs.timeline import Onset, Timeline

# Evidence keys with a start time, as the ranking reads them; the change check's own "changed".
STARTED = ("errors_started", "latency_started")
CHANGED = "changed"
_BEFORE = "before "


def kinds_of(f: Finding) -> tuple[str, ...]:
    """The symptom kinds a finding is about: its own (a symptom) or those it causes."""
    code = CATALOGUE[f.code]
    return (code.symptom,) if code.symptom is not None else tuple(sorted(code.causes))


def annotate(findings: Iterable[Finding], timeline: Timeline) -> list[Finding]:
    """``findings`` with the onsets of their service's symptoms (and the change before them) in
    their evidence."""
    out = []
    for f in findings:
        extra: dict[str, object] = {}
        for kind in kinds_of(f) if f.service is not None and timeline.checked else ():
            onset = timeline.onset(f.service, kind)  # type: ignore[arg-type]
            key = f"{kind}_started"
            if onset is None or key in f.evidence:
                continue
            extra[key] = started_text(onset, timeline)
            if onset.change is not None and "after_change" not in f.evidence:
                extra["after_change"] = after_change(onset)
        out.append(replace(f, evidence=frozen_map({**f.evidence, **extra})) if extra else f)
    return out


def started_text(onset: Onset, timeline: Timeline) -> str:
    """The evidence value of an onset: its ISO time, or "before <history start>"."""
    if onset.started is not None:
        return onset.started.isoformat()
    start = timeline.start.isoformat() if timeline.start is not None else "the history"
    return f"{_BEFORE}{start}"


def after_change(onset: Onset) -> str:
    """"DestinationRule fares/surge-calculator changed at 11:39:20, 40 s before"."""
    change = onset.change
    assert change is not None and onset.lead_s is not None
    lead = "at the same time" if abs(onset.lead_s) < 1 else f"{onset.lead_s:.0f} s before"
    through = f" (it touches {onset.via}, which {onset.service} calls)" if onset.via is not None else ""
    return f"{change.subject} {change.what} at {change.at.strftime('%H:%M:%S')}, {lead}{through}"


def began(f: Finding) -> float | None:
    """When the trouble a finding reports began (seconds since the epoch), from its evidence:
    the earliest of its change and onset times; None when it names none."""
    times = []
    for key in (CHANGED, *STARTED):
        value = f.evidence.get(key)
        if not isinstance(value, str):
            continue
        text, before = (value[len(_BEFORE):], True) if value.startswith(_BEFORE) else (value, False)
        try:
            t = datetime.fromisoformat(text).timestamp()
        except ValueError:
            continue
        times.append(t - 1.0 if before else t)
    return min(times, default=None)
