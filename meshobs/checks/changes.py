"""What changed: the mesh resource edited (or created) right before a service's symptom began.

The metric history says when a service's errors or latency started (:mod:`meshobs.timeline`);
the API server dates every write to a mesh resource (``creationTimestamp``, ``managedFields``,
``metadata.generation``). A resource that touches the service -- or a service it calls, when
that one shows nothing of its own -- and changed at most ``Settings.change_lookback_s`` before
the onset is the first thing to look at: its edit is when the symptom's mechanism (a circuit
breaker, a denial, a blackhole) was put in place. It ranks as a cause; as it predates what it
explains, the ranking puts it before the mechanism's own finding.

Rollouts, restarts, pushes and certificates preceding an onset are named in the evidence and
the timeline, not here: they are how a mesh runs every day, not a change of its intent.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.model import MeshSnapshot, ServiceRef, WorkloadRef
from meshobs.timeline import ERRORS, Onset, timeline_of

from .base import CouldNotCheck, Finding, Settings, check, finding
from .intended import as_callers_see
from .traffic import error_breakdown, outbound_edges


@check("config.changed_before_onset", Category.CONFIG, ("history", "config"), ("MSH0290",),
       uses=("pods", "proxies", "certs", "graph", "requests"))  # requests: what fails now, as evidence
def change_before_onset(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A mesh resource touching the service changed right before its errors or latency started."""
    timeline = timeline_of(snapshot, settings)
    if not timeline.checked:
        raise CouldNotCheck(timeline.reason)
    # Looked up by service: scanning every onset (and building a set of every judged service)
    # for each service was quadratic in the mesh, 14.6 s of a 5,000-service --all.
    mine = timeline.onsets_of(service)
    for onset in mine:
        if onset.change is None or onset.change.kind != "config" or onset.started is None:
            continue
        if onset.via is not None and timeline.onset(onset.via, onset.signal) is not None:
            continue  # the callee the change touches shows the symptom itself: filed there
        yield _finding(onset, service, _failing_with(snapshot, onset))
    unchecked = timeline.unchecked_of(service)
    if unchecked and not mine:
        raise CouldNotCheck("; ".join(f"{u.signal}: {u.reason}" for u in unchecked))


def _failing_with(snapshot: MeshSnapshot, onset: Onset) -> str | None:
    """How the requests fail now, in the words of the traffic checks ("429 RL = rate limited
    locally, 30 req/s"): the change's finding ranks first, so it says what the change broke,
    not only when -- whatever the failure class, read off the codes and flags the proxies saw."""
    if onset.signal != ERRORS:
        return None
    if onset.via is not None:
        edges = [e for e in outbound_edges(snapshot, onset.service) if e.destination == onset.via]
    else:
        edges = snapshot.served_edges(onset.service)
    _codes, _flags, top = error_breakdown(as_callers_see(snapshot, edges))
    return None if top == "none" else top


def _finding(onset: Onset, service: ServiceRef, failing_with: str | None) -> Finding:
    change = onset.change
    assert change is not None and onset.started is not None and onset.lead_s is not None
    lead = _lead(onset.lead_s)
    level = _level(onset) + (f"; now mostly {failing_with}" if failing_with else "")
    return finding(
        "MSH0290", "config.changed_before_onset", change.subject, service=service,
        # The callers whose own calls show the onset: their proxies apply the change, so a
        # delivery fault on them explains it (meshobs.engine.delivery).
        workloads=[WorkloadRef(*e.split("/", 1)) for e in onset.edges if "/" in e],
        changed_object=change.subject, what=change.what, changed_at=_clock(change.at), lead=lead,
        signal=onset.signal, started_at=_clock(onset.started), level=level,
        evidence={"changed": change.at.isoformat(), **({"change": change.detail} if change.detail else {}),
                  f"{onset.signal}_started": onset.started.isoformat(), "lead_s": round(onset.lead_s, 1),
                  "before": _round(onset.before), "after": _round(onset.after), "seen_by": onset.view,
                  **({"failing_with": failing_with} if failing_with else {}),
                  **({"edges": list(onset.edges)} if onset.edges else {}),
                  **({"through": str(onset.via)} if onset.via is not None else {})},
        magnitude=onset.after,
        hint=f"see what the change did (kubectl get {change.subject.split()[0].lower()} -o yaml, your Git "
             f"history, the managedFields' manager); undo it if the symptom is its doing")


def _clock(t: object) -> str:
    from datetime import datetime

    assert isinstance(t, datetime)
    return t.strftime("%H:%M:%S")


def _lead(seconds: float) -> str:
    if seconds < 1:
        return "0 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _round(x: float) -> float | None:
    import math

    return None if math.isnan(x) else round(x, 4)


def _level(onset: Onset) -> str:
    """"0% -> 18%" or "120 ms -> 2.4 s"."""
    return f"{onset.level(onset.before)} -> {onset.level(onset.after)}"
