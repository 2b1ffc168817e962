"""What a diagnosis produces: the checklist, the ranked findings, the sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshobs.callgraph import callees_of, downstream
from meshobs.catalogue import CATALOGUE, Category, Severity
from meshobs.checks.base import Finding
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.suppress import Suppression
from meshobs.timeline import Timeline

PASS, WARN, FAIL, SKIPPED, ERROR = "pass", "warn", "fail", "skipped", "error"
JUDGED = (PASS, WARN, FAIL)  # the check looked at data and reached a verdict


@dataclass(frozen=True)
class CheckResult:
    """One line of the checklist. ``reason`` says why a check was skipped or errored."""

    id: str
    category: Category
    status: str  # pass | warn | fail | skipped | error
    reason: str = ""
    description: str = ""
    kind: str = "check"  # check (judges a service) | analyzer (judges configuration resources)
    # Ran, but the data could not support a verdict (CouldNotCheck: no requests in the window...).
    could_not_check: bool = False
    # Skipped because data a configured source should have delivered is missing (it answered
    # with nothing, failed, or answered in part): a gap in what the run could judge.
    missing_data: bool = False


@dataclass(frozen=True)
class SourceResult:
    name: str
    status: str  # ok | error | no data
    error: str = ""
    kind: str = ""


def timeline_below(whole: Timeline, snapshot: MeshSnapshot, service: ServiceRef) -> Timeline:
    """The part of ``whole`` (the snapshot's timeline) about ``service`` and everything it
    calls, however deep: where a fault began several hops down, the order of onsets shows it."""
    if not whole.checked:
        return whole
    reach = downstream(service, lambda s: callees_of(snapshot, s), len(snapshot.services) + 1)
    return whole.for_services(reach)


class TimelineBelow:
    """:func:`timeline_below`, worked out when first read: a ``--all`` report's own timeline.

    ``--all`` prints only the mesh's timeline, and a service's part costs a walk of everything
    below it (1.1-1.4 s at 5,000 services with an hour of history, and a set of its reach held
    per report). Whoever reads ``Report.timeline`` gets the same timeline as ever; a report
    pickled (the dashboard's load process sends its diagnosis) carries it worked out, not the
    snapshot. Equal to the :class:`Timeline` it stands for."""

    __slots__ = ("_done", "_service", "_snapshot", "_whole")

    def __init__(self, whole: Timeline, snapshot: MeshSnapshot, service: ServiceRef) -> None:
        self._whole, self._snapshot, self._service = whole, snapshot, service
        self._done: Timeline | None = None

    def get(self) -> Timeline:
        if self._done is None:
            self._done = timeline_below(self._whole, self._snapshot, self._service)
        return self._done

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimelineBelow):
            other = other.get()
        return self.get() == other if isinstance(other, Timeline) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.get())

    def __repr__(self) -> str:
        return repr(self.get())

    def __reduce__(self) -> tuple[Any, ...]:
        return _worked_out, (self.get(),)


def _worked_out(timeline: Timeline) -> Timeline:
    """What a pickled :class:`TimelineBelow` reads back as: its timeline."""
    return timeline


@dataclass(frozen=True)
class Report:
    """The diagnosis of one service. ``findings`` are ranked: ``findings[0]`` is rank 1."""

    service: ServiceRef
    status: str  # healthy | clean | partial | degraded | failing | unknown (see status_of)
    findings: tuple[Finding, ...]
    checks: tuple[CheckResult, ...]
    sources: tuple[SourceResult, ...]
    suppressed: tuple[tuple[Finding, Suppression], ...] = ()
    time: datetime | None = None
    origin: str = ""
    # When the symptoms of the service and of what it calls started, and what changed before
    # (read it as ``timeline``): --all gives it to be worked out when read (TimelineBelow).
    timeline_or_below: Timeline | TimelineBelow = field(default_factory=Timeline)

    @property
    def timeline(self) -> Timeline:
        t = self.timeline_or_below
        return t if isinstance(t, Timeline) else t.get()

    @property
    def namespace(self) -> str:
        return self.service.namespace

    def worst(self) -> Severity | None:
        """The highest severity among the (unsuppressed) findings."""
        return max((f.severity for f in self.findings), key=lambda s: s.weight, default=None)


@dataclass(frozen=True)
class MeshReport:
    """``diagnose --all``: one report per service, plus the mesh-wide status."""

    reports: tuple[Report, ...]
    status: str
    sources: tuple[SourceResult, ...]
    time: datetime | None = None
    origin: str = ""
    # Not tied to a service: sources that failed (MSH0002), analyzer findings touching no
    # service (a Gateway conflict, a selector matching nothing).
    mesh_findings: tuple[Finding, ...] = field(default=())
    analyzers: tuple[CheckResult, ...] = ()  # each analyzer's verdict on the whole mesh
    timeline: Timeline = field(default_factory=Timeline)  # the whole mesh's

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.mesh_findings + tuple(f for r in self.reports for f in r.findings)


HEALTHY, PARTIAL, DEGRADED, FAILING, UNKNOWN = "healthy", "partial", "degraded", "failing", "unknown"
CLEAN = "clean"


def status_of(findings: tuple[Finding, ...] | list[Finding], answered: bool, judged: bool = True,
              partial: bool = False, traffic: bool = True) -> str:
    """The run's word for a service or the mesh (no data is never health):

    * ``unknown``: no source answered, or nothing could vouch for it (:func:`judged`) and no
      warning or error was found about the mesh (exit 3: could not check). Findings about
      meshobs itself (the internal codes: a source could not be read, a check raised) are no
      verdict on a service: beside nothing judged they leave it unknown; they still list;
    * ``failing`` / ``degraded``: an error / a warning was found (whatever could not be checked:
      the status line says that too);
    * ``partial``: no warning or error, but part of the data a configured source should have
      delivered was missing (:func:`gaps`), so "healthy" would claim more than was judged;
    * ``clean``: as healthy, but ``traffic`` is False: no check that says whether its requests
      succeed reached it (:func:`traffic_checked`: a configuration-only run, ``--config-only``,
      ``-f`` manifests alone, the traffic checks not selected; or a service none of them applies
      to, a waypoint). What was checked is clean; health is not claimed (exit 0, as
      ``istioctl analyze`` finding no issue);
    * ``healthy``: judged, nothing found, nothing missing, traffic judged.
    """
    if not answered:
        return UNKNOWN
    # Prometheus unreachable beside answering manifests: its MSH0002 warning alone would read
    # "degraded" (exit 0) although no request was judged; the README promises exit 3.
    weights = {f.severity.weight for f in findings
               if judged or CATALOGUE[f.code].category is not Category.INTERNAL}
    if Severity.ERROR.weight in weights:
        return FAILING
    if Severity.WARNING.weight in weights:
        return DEGRADED
    if not judged:
        return UNKNOWN
    if partial:
        return PARTIAL
    return HEALTHY if traffic else CLEAN


def judged(results: tuple[CheckResult, ...] | list[CheckResult], vouching: frozenset[str] | None = None) -> bool:
    """Can the checks vouch for the service? At least one reached a verdict, and when the
    checks that say whether its requests succeed and are fast (``vouching``: the checks whose
    codes carry a symptom role in the catalogue; by default the traffic category) ran into
    data, at least one of them judged: traffic is what says a service works, so a window
    without its requests leaves its health unknown however well its proxies and configuration
    look (an idle service is "unknown", never "healthy"). A vouching check skipped because no
    source of its data is configured does not count either way (a configuration-only run)."""
    if not any(r.status in JUDGED for r in results):
        return False
    traffic = _reached(results, vouching)
    return not traffic or any(r.status in JUDGED for r in traffic)


def traffic_checked(results: tuple[CheckResult, ...] | list[CheckResult],
                    vouching: frozenset[str] | None = None) -> bool:
    """Did a check that says whether the service's requests succeed (``vouching``, as for
    :func:`judged`) reach the service: judge it, or find its data missing or its window empty
    ("could not check")? Not when none was selected or no source of their data is configured
    (a configuration-only run), nor for a service none of them applies to (a waypoint, whose
    requests are the services'; an ingress gateway when only the checks of what its callers see
    run): nothing found there is ``clean``, never ``healthy`` (:func:`status_of`)."""
    return bool(_reached(results, vouching))


def _reached(results: tuple[CheckResult, ...] | list[CheckResult],
             vouching: frozenset[str] | None) -> list[CheckResult]:
    """The vouching checks that judged the service or could not check it (two comprehensions, no
    call per line: a --all at 5,000 services asks this twice of ~70 lines per service)."""
    if vouching is None:
        return [r for r in results if r.category is Category.TRAFFIC and (r.status in JUDGED or r.could_not_check)]
    return [r for r in results if r.id in vouching and (r.status in JUDGED or r.could_not_check)]


def gaps(results: tuple[CheckResult, ...] | list[CheckResult]) -> list[CheckResult]:
    """Checks skipped because data a configured source should have delivered is missing (it
    answered with nothing, failed, or answered in part): what a partial run could not check.
    Run-time skips ("no requests into X": a service nobody calls) are not gaps; they show in
    the checklist, and leave a service ``unknown`` only when nothing vouches for it."""
    return [r for r in results if r.missing_data]


def unchecked_line(results: tuple[CheckResult, ...] | list[CheckResult], limit: int = 6) -> str:
    """``traffic.error_rate, traffic.latency (no request metrics, no latency metrics: prometheus
    answered with no data)``: the checks that could not check and why, in one line (the reasons
    of several checks share their causes; the checklist has each in full)."""
    ids: list[str] = []
    why: dict[str, list[str]] = {}  # cause -> what it left missing
    # What a configured source failed to deliver first, and the traffic checks before the rest:
    # they are why a run is unknown or partial, and the line shows only the first few.
    ordered = sorted(results, key=lambda r: (not r.missing_data, r.category is not Category.TRAFFIC))
    for r in ordered:
        if not (r.could_not_check or r.missing_data):
            continue
        ids.append(r.id)
        for atom in r.reason.removeprefix("could not check: ").split("; "):
            atom = atom.replace(" (see Sources)", "").strip()
            what, sep, cause = atom.partition(": ")
            if not sep:
                what, cause = "", atom
            missing = why.setdefault(cause, [])
            if what and what not in missing:
                missing.append(what)
    if not ids:
        return ""
    shown = ", ".join(dict.fromkeys(ids[:limit])) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
    causes = [f"{', '.join(what)}: {cause}" if what else cause for cause, what in list(why.items())[:2]]
    if len(why) > 2:
        causes.append(f"{len(why) - 2} more reasons")
    return f"{shown} ({'; '.join(causes)})"
