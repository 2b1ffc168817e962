"""What changed: when each symptom started, in which order, and what changed just before.

    timeline_of(snapshot, settings) -> Timeline

Reads the snapshot's metric history (:class:`meshobs.model.History`: an hour of request, error
and latency series per edge and service), finds the onset of each service's errors and latency
(:mod:`.onset`, on the per-service frames built by :mod:`.frame`), and pairs each onset with the latest
dated change (:mod:`.changes`) that touches the service -- or a service it calls -- and came at
most ``Settings.change_lookback_s`` before it: "errors on rides/booking-api started 11:40:15,
55 s after DestinationRule fares/surge-calculator changed".

numpy (and pandas, for a big history) is imported here only, when a timeline is built.
Built once per snapshot (``MeshSnapshot.derived``) and shared by the check that reports the
change (``config.changed_before_onset``), the engine (evidence on findings, the ranking) and renderers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from meshobs.model import MeshSnapshot, ServiceRef

from .changes import INTENT, KINDS, Change, changes_between

if TYPE_CHECKING:
    from meshobs.checks.base import Settings

ERRORS, LATENCY = "errors", "latency"  # the symptom kinds an onset can be of (as the catalogue's)
DELIVERY_S = 120.0  # a push or a certificate counts only this close before an onset


@dataclass(frozen=True)
class Onset:
    """When a symptom of ``service`` started (``started`` None: before the history began) and
    the change that came just before it, if any.

    ``before``/``after``: the level before and since (an error ratio, or a p99 in ms); ``view``:
    whose numbers showed it first (``callers`` or ``service``); ``edges``: the calling workloads
    whose own edge shows it; ``via``: the callee of ``service`` the change touches, when it does
    not touch ``service`` itself; ``lead_s``: seconds from the change to the onset.
    """

    service: ServiceRef
    signal: str  # ERRORS | LATENCY
    started: datetime | None
    before: float
    after: float
    view: str = "service"
    edges: tuple[str, ...] = ()
    change: Change | None = None
    lead_s: float | None = None
    via: ServiceRef | None = None

    @property
    def before_history(self) -> bool:
        return self.started is None

    def level(self, x: float) -> str:
        """A level of this onset's signal in words: ``18%``, ``120 ms``, ``2.4 s`` (``?``: unknown)."""
        if math.isnan(x):
            return "?"
        if self.signal == ERRORS:
            return f"{x * 100:.3g}%"
        return f"{x:.0f} ms" if x < 1000 else f"{x / 1000:.3g} s"


@dataclass(frozen=True)
class Unchecked:
    """A service and signal whose onset could not be judged, and why."""

    service: ServiceRef
    signal: str
    reason: str


@dataclass(frozen=True)
class Timeline:
    """Onsets (oldest first; those older than the history first of all), the changes in the
    history's span, what could not be checked. ``reason`` says why nothing could be (no
    history); ``resolution_s`` is the step onsets are known to."""

    start: datetime | None = None
    end: datetime | None = None
    resolution_s: float = 0.0
    lookback_s: float = 0.0
    onsets: tuple[Onset, ...] = ()
    changes: tuple[Change, ...] = ()
    unchecked: tuple[Unchecked, ...] = ()
    reason: str = ""
    services: frozenset[ServiceRef] = field(default_factory=frozenset)  # those judged
    covers: str = ""  # what the history was narrowed to, when not everything asked about

    @property
    def checked(self) -> bool:
        return not self.reason

    def onset(self, service: ServiceRef, signal: str) -> Onset | None:
        return self._index.first_onset.get((service, signal))

    def onsets_of(self, service: ServiceRef) -> list[Onset]:
        """The service's onsets, in the timeline's order (looked up, not scanned: see below)."""
        return [self.onsets[i] for i in self._index.onsets.get(service, ())]

    def unchecked_of(self, service: ServiceRef) -> list[Unchecked]:
        """The service's signals that could not be judged, in the timeline's order."""
        return [self.unchecked[i] for i in self._index.unchecked.get(service, ())]

    def for_services(self, services: Iterable[ServiceRef]) -> Timeline:
        """The part about ``services`` (a report's neighbourhood): their onsets, what could not
        be checked about them, and the changes that touch them, in the timeline's order.

        Looked up by service: a ``--all`` asks this of every service with its whole downstream,
        and scanning every onset and change each time was quadratic in the mesh."""
        keep = frozenset(services)
        index = self._index

        def picked(items: tuple[_T, ...], positions: dict[ServiceRef, list[int]]) -> tuple[_T, ...]:
            # Whichever side is smaller is walked: a downstream of thousands of services, or the
            # few services with an onset (the same positions either way).
            if len(positions) < len(keep):
                at = sorted({i for s, where in positions.items() if s in keep for i in where})
            else:
                at = sorted({i for s in keep for i in positions.get(s, ())})
            return tuple(items[i] for i in at)

        return replace(self, onsets=picked(self.onsets, index.onsets),
                       unchecked=picked(self.unchecked, index.unchecked),
                       changes=picked(self.changes, index.changes), services=self.services & keep)

    @cached_property
    def _index(self) -> _Index:
        return _Index.of(self)


_T = TypeVar("_T")


@dataclass
class _Index:
    """Where each service's onsets, unchecked signals and changes are in a :class:`Timeline`."""

    onsets: dict[ServiceRef, list[int]]
    unchecked: dict[ServiceRef, list[int]]
    changes: dict[ServiceRef, list[int]]
    first_onset: dict[tuple[ServiceRef, str], Onset]

    @classmethod
    def of(cls, timeline: Timeline) -> _Index:
        onsets: dict[ServiceRef, list[int]] = {}
        unchecked: dict[ServiceRef, list[int]] = {}
        first: dict[tuple[ServiceRef, str], Onset] = {}
        for i, o in enumerate(timeline.onsets):
            onsets.setdefault(o.service, []).append(i)
            first.setdefault((o.service, o.signal), o)
        for i, u in enumerate(timeline.unchecked):
            unchecked.setdefault(u.service, []).append(i)
        return cls(onsets, unchecked, touching(timeline.changes), first)


def timeline_of(snapshot: MeshSnapshot, settings: Settings) -> Timeline:
    """The snapshot's timeline under ``settings`` (built once per snapshot and settings)."""
    key = (f"timeline:{settings.error_ratio}:{settings.latency_regression}:{settings.p99_ms}:"
           f"{settings.change_lookback_s}")
    return snapshot.derived(key, lambda s: build(s, settings))


def build(snapshot: MeshSnapshot, settings: Settings) -> Timeline:
    """Onsets of every service in the history, each paired with the change before it."""
    history = snapshot.history
    if history is None or not history.signals:
        return Timeline(reason=f"no metric history: {_no_history(snapshot)}")
    from .frame import frames
    from .onset import Thresholds, detect

    fr = frames(history, snapshot.services_of)
    step = history.step_s
    # An error onset: the ratio now over the alarm threshold, a rise of at least half of it, and
    # three times what it was (0.3 % -> 1.1 % is background noise crossing a line, not an onset).
    errors = Thresholds(floor=settings.error_ratio, min_rise=settings.error_ratio / 2, ratio=3.0,
                        alarm=settings.error_ratio)
    # A latency onset: the regression factor the latency check uses, and tens of ms more.
    latency = Thresholds(floor=0.0, min_rise=max(50.0, 0.05 * settings.p99_ms), ratio=settings.latency_regression,
                         alarm=settings.p99_ms)
    ramp = history.rate_window_s
    onsets: list[Onset] = []
    unchecked: list[Unchecked] = []
    for service in fr.services:
        views = fr.views(service)
        found: list[tuple[str, object]] = []
        reasons: list[str] = []
        for view, series in views.items():
            verdict = detect(series, errors, ramp)
            if verdict.unchecked:
                reasons.append(f"{view}' view: {verdict.unchecked}")
            elif verdict.found:
                found.append((view, verdict))
        if found:
            onsets.append(_earliest(service, ERRORS, found, fr, errors))
        elif reasons and len(reasons) == len(views):
            unchecked.append(Unchecked(service, ERRORS, "; ".join(reasons)))
        p99 = fr.latency(service)
        if p99 is not None:
            # No moving back for a quantile: its p99 jumps as soon as the slow requests pass 1 %
            # of the window, not along a ramp.
            verdict = detect(p99, latency)
            if verdict.unchecked:
                unchecked.append(Unchecked(service, LATENCY, verdict.unchecked))
            elif verdict.found:
                onsets.append(Onset(service, LATENCY, _when(verdict.started), verdict.before, verdict.after))
    changes = changes_between(snapshot, history.start - timedelta(seconds=settings.change_lookback_s), history.end)
    index = touching(changes)
    onsets = [_paired(snapshot, o, changes, index, step, settings.change_lookback_s) for o in onsets]
    onsets.sort(key=lambda o: (o.started is not None, o.started or history.start, str(o.service), o.signal))
    return Timeline(start=history.start, end=history.end, resolution_s=step, lookback_s=settings.change_lookback_s,
                    onsets=tuple(onsets), changes=tuple(changes), unchecked=tuple(unchecked),
                    services=frozenset(fr.services), covers=history.covers)


def _no_history(snapshot: MeshSnapshot) -> str:
    """Why the snapshot holds no history, in the words of the source that should have it."""
    history = snapshot.history
    if history is not None and history.problems:
        return history.problems[0]
    sources = snapshot.sources_of_kind("prometheus")
    if not sources:
        return "no Prometheus source"
    said = next((str(s.inputs["history"]) for s in sources if s.inputs.get("history")), None)
    if said is not None:
        return f"{sources[0].name}: {said}"
    if not sources[0].ok:
        return f"{sources[0].name} failed (see Sources)"
    return f"{sources[0].name}: not asked for it (a bundle recorded without the history queries)"


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def _earliest(service: ServiceRef, signal: str, found: list[tuple[str, object]], fr: object,
              limits: object) -> Onset:
    """The onset of the view that shows the symptom first, with the calling edges showing it."""
    from .frame import CALLERS, Frames
    from .onset import Thresholds, Verdict, detect

    assert isinstance(fr, Frames) and isinstance(limits, Thresholds)
    verdicts = [(view, v) for view, v in found if isinstance(v, Verdict)]
    view, first = min(verdicts, key=lambda x: (x[1].started is not None, x[1].started or 0.0, x[0] != CALLERS))
    edges = tuple(sorted(src for src, series in fr.edges(service, view).items() if detect(series, limits).found))
    return Onset(service, signal, _when(first.started), first.before, first.after, view, edges)


def touching(changes: Sequence[Change]) -> dict[ServiceRef, list[int]]:
    """Where the changes touching each service are in ``changes``."""
    at: dict[ServiceRef, list[int]] = {}
    for i, c in enumerate(changes):
        for service in set(c.services):
            at.setdefault(service, []).append(i)
    return at


def _touching(changes: list[Change], index: dict[ServiceRef, list[int]],
              services: Iterable[ServiceRef]) -> list[Change]:
    """The changes that touch any of ``services``, in their order in ``changes``."""
    return [changes[i] for i in sorted({i for s in services for i in index.get(s, ())})]


def _paired(snapshot: MeshSnapshot, onset: Onset, changes: list[Change], index: dict[ServiceRef, list[int]],
            step: float, lookback_s: float) -> Onset:
    """``onset`` with the latest change that touches its service (else a service it calls) and
    came at most ``lookback_s`` before it (or within one step after: the onset is known to a
    step)."""
    if onset.started is None:
        return onset
    t = onset.started

    def lead(c: Change) -> float:
        return (t - c.at).total_seconds()

    # What someone changed (a resource, a rollout, a restart) counts within the lookback; how the
    # mesh delivered something (a push to the proxies, a new certificate) happens all the time,
    # so it counts only right before the onset, and only when no intended change does.
    # Only the changes that touch the service or its callees are looked at (``index``, from
    # :func:`touching`): a recorded 5,000-service history holds ~19k (pushes, certificates, most
    # within any onset's lookback), and every onset scanning them all was 5 s of a --all.
    callees = set(snapshot.callees(onset.service)) - {onset.service}
    near = [c for c in _touching(changes, index, {onset.service, *callees})
            if -step <= lead(c) <= (lookback_s if c.kind in INTENT else min(lookback_s, DELIVERY_S))]
    direct = [c for c in near if onset.service in c.services]
    via = [c for c in near if callees & set(c.services)]
    tiers = ([c for c in direct if c.kind in INTENT], [c for c in via if c.kind in INTENT], direct, via)
    candidates = next((tier for tier in tiers if tier), [])
    chosen = max(candidates, key=lambda c: (c.at, -KINDS.index(c.kind)), default=None)
    if chosen is None:
        return onset
    through = None if onset.service in chosen.services else min(callees & set(chosen.services))
    return replace(onset, change=chosen, lead_s=(t - chosen.at).total_seconds(), via=through)


__all__ = ["ERRORS", "LATENCY", "Change", "Onset", "Timeline", "Unchecked", "build", "timeline_of"]
