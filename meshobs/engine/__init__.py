"""The diagnosis engine: run the checklist for a service, rank root causes, build a Report.

    diagnose(snapshot, service, settings, suppressions=()) -> Report
    diagnose_all(snapshot, settings, suppressions=()) -> MeshReport

Checks run in checklist order (proxy health -> configuration -> certificates -> traffic ->
slow hops). A check whose inputs are missing is skipped with the reason; a check that raises
becomes an MSH0001 finding and the run goes on. The services downstream of the target are
checked too, so that a cause one or two hops away can rank first (see ``ranking``).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from dataclasses import replace

from meshobs.catalogue import Severity
from meshobs.checks import registry
from meshobs.checks.base import Check, Finding, Settings, finding
from meshobs.checks.scope import not_applicable
from meshobs.checks.traffic import outbound_edges
from meshobs.model import MeshSnapshot, ServiceRef, SourceState
from meshobs.suppress import Suppression
from meshobs.suppress import apply as apply_suppressions
from meshobs.telemetry import timed

from .inputs import answered, availability, missing
from .ranking import MAX_DEPTH, downstream, rank
from .report import ERROR, FAIL, PASS, SKIPPED, WARN, CheckResult, MeshReport, Report, SourceResult, status_of

__all__ = ["CheckResult", "MeshReport", "Report", "SourceResult", "checklist", "diagnose",
           "diagnose_all", "run_checks"]


def checklist() -> list[Check]:
    """Every registered check in checklist order (category, then id)."""
    return sorted(registry.load().values(), key=lambda c: (c.category.order, c.id))


def run_checks(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings,
               checks: Sequence[Check] | None = None,
               available: dict[str, str | None] | None = None,
               ) -> tuple[list[CheckResult], list[Finding]]:
    """Run the checklist for one service: per-check results and the (unranked) findings."""
    checks = checklist() if checks is None else checks
    available = availability(snapshot) if available is None else available
    results: list[CheckResult] = []
    findings: list[Finding] = []
    for c in checks:
        # Absent inputs for the whole snapshot, or a check that cannot judge this service's mesh
        # (an Istio config check on an App Mesh service): skipped with the reason, never passed.
        reason = not_applicable(c.id, snapshot, service) or missing(c.needs, available)
        if reason is not None:
            results.append(CheckResult(c.id, c.category, SKIPPED, reason, c.doc))
            continue
        try:
            with timed("check", c.id):
                found = [f if f.service is not None else replace(f, service=service)
                         for f in c.run(snapshot, service, settings)]
        except Exception as exc:  # a broken check must not stop the checklist
            where = traceback.extract_tb(exc.__traceback__)[-1]
            error = f"{type(exc).__name__}: {exc}"
            findings.append(finding(
                "MSH0001", c.id, f"Check {c.id}", service=service, check_id=c.id, error=error,
                evidence={"exception": type(exc).__name__, "message": str(exc),
                          "at": f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno}"},
                hint="a bug in meshobs: please report it with the bundle (meshobs snapshot)"))
            results.append(CheckResult(c.id, c.category, ERROR, error, c.doc))
            continue
        findings.extend(found)
        results.append(CheckResult(c.id, c.category, _status(found), "", c.doc))
    return results, findings


def _status(found: Iterable[Finding]) -> str:
    worst = max((f.severity.weight for f in found), default=0)
    if worst >= Severity.ERROR.weight:
        return FAIL
    if worst >= Severity.WARNING.weight:
        return WARN
    return PASS


def _rescore(results: list[CheckResult], kept: list[Finding]) -> list[CheckResult]:
    """After suppression, a check's status reflects only the findings still counted."""
    by_check: dict[str, list[Finding]] = {}
    for f in kept:
        by_check.setdefault(f.check, []).append(f)
    return [r if r.status in (SKIPPED, ERROR) else replace(r, status=_status(by_check.get(r.id, [])))
            for r in results]


def _sources(snapshot: MeshSnapshot) -> tuple[SourceResult, ...]:
    return tuple(SourceResult(s.name, s.state.value, s.message if not s.ok else "", s.kind)
                 for s in snapshot.sources)


def _source_findings(snapshot: MeshSnapshot) -> list[Finding]:
    hint = ("meshobs diagnosed with the other sources; checks needing this one are skipped"
            if answered(snapshot) else
            "no source answered, so nothing could be checked: fix the sources first (see the reason)")
    out = [finding("MSH0002", "sources", f"Source {s.name}", source=s.name,
                   reason=s.message or "failed", evidence={"kind": s.kind, "message": s.message},
                   hint=hint)
           for s in snapshot.sources if s.state is SourceState.ERROR]
    # Items left out of an answer that was otherwise used: the rest was diagnosed, but a person
    # must know which resource or endpoint meshobs could not read (and why).
    out += [finding("MSH0003", "sources", f"Source {s.name}", source=s.name, count=len(s.problems),
                    first=s.problems[0], evidence={"kind": s.kind, "items": list(s.problems)},
                    magnitude=len(s.problems),
                    hint="fix the items named in the evidence; the rest of the source was used")
            for s in snapshot.sources if s.problems]
    return out


def callees_of(snapshot: MeshSnapshot, service: ServiceRef) -> list[ServiceRef]:
    """Services that ``service`` calls, in a stable order."""
    return sorted({e.destination for e in outbound_edges(snapshot, service)
                   if not e.destination.is_unknown and e.destination != service})


def hop_shows(snapshot: MeshSnapshot, caller: ServiceRef, callee: ServiceRef, kind: str) -> bool:
    """Do the calls caller -> callee carry errors? (Latency is judged by the callee's findings.)

    Without traffic data for the hop (the graph came from elsewhere) the hop is not ruled out.
    """
    if kind != "errors":
        return True
    edges = [e for e in outbound_edges(snapshot, caller) if e.destination == callee]
    return not edges or any(e.error_rate > 0 for e in edges)


class _Cache:
    """Findings per service for one snapshot, so ``--all`` checks each service once."""

    def __init__(self, snapshot: MeshSnapshot, settings: Settings) -> None:
        self.snapshot, self.settings = snapshot, settings
        self.checks = checklist()
        self.available = availability(snapshot)
        self.sources = _sources(snapshot)  # once: a big mesh has a source per Envoy pod
        self.answered = answered(snapshot)
        self.results: dict[ServiceRef, tuple[list[CheckResult], list[Finding]]] = {}

    def get(self, service: ServiceRef) -> tuple[list[CheckResult], list[Finding]]:
        if service not in self.results:
            self.results[service] = run_checks(self.snapshot, service, self.settings,
                                               self.checks, self.available)
        return self.results[service]


def _diagnose(cache: _Cache, service: ServiceRef, suppressions: Sequence[Suppression],
              with_sources: bool) -> Report:
    snapshot = cache.snapshot
    results, own = cache.get(service)
    depth = downstream(service, lambda s: callees_of(snapshot, s), MAX_DEPTH)
    by_service: dict[ServiceRef, list[Finding]] = {}
    hidden_all: list[tuple[Finding, Suppression]] = []
    for svc in depth:
        found = own if svc == service else cache.get(svc)[1]
        if svc == service and with_sources:
            found = _source_findings(snapshot) + found
        kept, hidden = apply_suppressions(found, list(suppressions), snapshot.time)
        by_service[svc] = kept
        if svc == service:
            hidden_all = hidden
    ranked = rank(service, by_service, depth, lambda s: callees_of(snapshot, s),
                  lambda x, c, kind: hop_shows(snapshot, x, c, kind))
    return Report(service=service, status=status_of(ranked, cache.answered), findings=tuple(ranked),
                  checks=tuple(_rescore(results, by_service[service])),
                  sources=cache.sources, suppressed=tuple(hidden_all),
                  time=snapshot.time, origin=snapshot.origin)


def diagnose(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings | None = None,
             suppressions: Sequence[Suppression] = ()) -> Report:
    """Diagnose one service: the checklist, then its findings and their downstream causes, ranked."""
    return _diagnose(_Cache(snapshot, settings or Settings()), service, suppressions, True)


def diagnose_all(snapshot: MeshSnapshot, settings: Settings | None = None,
                 suppressions: Sequence[Suppression] = ()) -> MeshReport:
    """Diagnose every service of the mesh; each report ranks its own causes."""
    cache = _Cache(snapshot, settings or Settings())
    reports = tuple(_diagnose(cache, s.ref, suppressions, False)
                    for s in sorted(snapshot.services, key=lambda s: s.ref) if not s.ref.is_unknown)
    mesh_findings, _hidden = apply_suppressions(_source_findings(snapshot), list(suppressions),
                                                snapshot.time)
    ok = cache.answered
    everything = list(mesh_findings) + [f for r in reports for f in r.findings]
    mesh_findings = [replace(f, rank=n) for n, f in enumerate(mesh_findings, start=1)]
    return MeshReport(reports=reports, status=status_of(everything, ok), sources=cache.sources,
                      time=snapshot.time, origin=snapshot.origin,
                      mesh_findings=tuple(mesh_findings))
