"""The diagnosis engine: run the checklist for a service, rank root causes, build a Report.

    diagnose(snapshot, service, settings, suppressions=(), checks=None) -> Report
    diagnose_all(snapshot, settings, suppressions=(), checks=None) -> MeshReport

Checks run in checklist order (proxy health -> configuration -> certificates -> traffic ->
slow hops); analyzers run once per snapshot and their findings join the report of every
service they touch (``runner``). A check whose inputs are missing is skipped with the reason,
one that cannot judge at run time says so, one that raises becomes an MSH0001 finding and the
run goes on; a diagnosis where nothing could be judged is ``unknown``. The services downstream
of the target are checked too, so that a cause one or two hops away can rank first
(see ``ranking``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from meshobs import cutoff
from meshobs.callgraph import MAX_DEPTH, callees_of, callers_of, downstream, nearest
from meshobs.catalogue import CALL_GRAPH_KINDS, CATALOGUE
from meshobs.checks import registry
from meshobs.checks.base import Analyzer, AnyCheck, Check, Finding, Settings, finding
from meshobs.checks.scope import Focus, role_and_mesh
from meshobs.model import MeshSnapshot, ServiceRef, SourceState, WorkloadRef
from meshobs.suppress import Suppression
from meshobs.suppress import apply as apply_suppressions
from meshobs.timeline import Timeline, timeline_of

from . import fanout
from .evidence import Related, hop_evidence, hop_failures
from .inputs import answered, availability
from .onsets import annotate
from .ranking import rank
from .report import (
    ERROR,
    PASS,
    SKIPPED,
    UNKNOWN,
    CheckResult,
    MeshReport,
    Report,
    SourceResult,
    TimelineBelow,
    gaps,
    judged,
    status_of,
    timeline_below,
    traffic_checked,
)
from .runner import Analysis, Checklist, analyze, joined, run_checks, run_service_checks, status, unique

__all__ = ["CheckResult", "MeshReport", "Report", "SourceResult", "checklist", "diagnose",
           "diagnose_all", "hop_failures", "hop_shows", "run_checks"]


def checklist(checks: Sequence[AnyCheck] | None = None) -> list[AnyCheck]:
    """Checks and analyzers in checklist order (category, then id): all registered ones, or
    the given selection (``--check`` / ``--skip``)."""
    return registry.checklist(registry.ALL if checks is None else checks)


def _rescore(results: list[CheckResult], kept: list[Finding]) -> list[CheckResult]:
    """After suppression, a check's status reflects only the findings still counted."""
    by_check: dict[str, list[Finding]] = {}
    for f in kept:
        by_check.setdefault(f.check, []).append(f)
    # Most statuses do not change: rebuild (dataclasses.replace, slow) only those that do. Most
    # checks kept no finding: a pass, without weighing nothing (350k lines in a --all).
    return [r if r.status in (SKIPPED, ERROR) or (now := status(found) if (found := by_check.get(r.id)) else PASS)
            == r.status else replace(r, status=now) for r in results]


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


def hop_shows(snapshot: MeshSnapshot, caller: ServiceRef, callee: ServiceRef, kind: str,
              settings: Settings | None = None) -> bool | None:
    """Does the hop caller -> callee carry evidence of that kind of failure, as the ranking walk
    asks (:mod:`.ranking`)? True / False, or None when the data cannot tell (not ruled out).

    Errors: more than the error threshold failed or were refused (401, 403) in either proxy's
    view (the caller's, or the callee's own answers behind the caller's retries), mirrored copies
    and injected faults left out; fewer errors do not rule the hop out (None). Latency: the caller's proxy timed the
    callee out (UT, DC, SI...), or the callee's p99 as the caller sees it is at least half the
    caller's own (the hop holds that share of its time). See :mod:`.evidence`.
    """
    return hop_evidence(snapshot, caller, callee, kind, (settings or Settings()).error_ratio)


@dataclass(frozen=True)
class _Deadline:
    """One finding with a deadline: the services holding it (each its own copy), and the
    services calling through one of them, with the hop count to the nearest and which it is."""

    holders: dict[ServiceRef, Finding]
    callers: dict[ServiceRef, tuple[int, ServiceRef]]


# What each process of :meth:`_Cache.prepare` hands back: a service's checks run (the parent's
# only), and the runs of the analyzers it took, by their place in the checklist's analyzers.
_Prepared = tuple[dict[str, tuple[CheckResult, list[Finding]]] | None, dict[int, Analysis]]

_UNASKED = object()  # a hop not judged yet (None is an answer: the data cannot tell)


class _Cache:
    """Findings per service for one snapshot, so ``--all`` checks each service once and runs
    the analyzers once."""

    def __init__(self, snapshot: MeshSnapshot, settings: Settings, checks: Sequence[AnyCheck] | None,
                 target: ServiceRef | None = None) -> None:
        self.snapshot, self.settings = snapshot, settings
        self.target = target  # one service diagnosed (None: every service, --all)
        self.checks = checklist(checks)
        self.available = availability(snapshot)
        self.sources = _sources(snapshot)  # once: a big mesh has a source per Envoy pod
        self.answered = answered(snapshot)
        self.results: dict[ServiceRef, tuple[list[CheckResult], list[Finding]]] = {}
        self._deadlines: list[_Deadline] | None = None
        self._hops: dict[tuple[ServiceRef, ServiceRef, str], bool | None] = {}
        self._analysis: Analysis | None = None
        self._focused: Analysis | None = None
        self._checklists: list[Checklist] = []
        self._timeline: Timeline | None = None
        self._callees: dict[ServiceRef, list[ServiceRef]] = {}
        self._followed: dict[ServiceRef, list[ServiceRef]] = {}
        # Each service as one object: the graph's callees are the edges' destinations, equal to
        # the listed services' refs but not the same objects, and every lookup by an equal but
        # other key compares them field by field (~500k times in a --all's rankings).
        self._refs = {s.ref: s.ref for s in snapshot.services}
        self._annotated: dict[ServiceRef | None, tuple[list[Finding], list[tuple[Finding, Suppression]]]] = {}
        self._annotated_for: Sequence[Suppression] | None = None
        self._reaching: set[ServiceRef] | None = None  # see quiet()
        # Per check, the symptom kinds its codes carry (what its being skipped leaves unjudged).
        self._symptoms = {c.id: [kind for code in c.codes if (kind := CATALOGUE[code].symptom) is not None]
                          for c in self.checks}
        # The checks that say whether a service's requests succeed and are fast: those whose
        # codes are symptoms (errors, latency) in the catalogue. Only they vouch for health.
        # What callers see (errors, latency) vouches for a service; a delivery or routing
        # symptom's check passing says nothing about whether its requests succeed.
        self.vouching = frozenset(c.id for c in self.checks
                                  if any(CATALOGUE[code].symptom in CALL_GRAPH_KINDS for code in c.codes))

    @property
    def timeline(self) -> Timeline:
        """When each symptom started and what changed before it (built once per snapshot, and
        kept here: a --all asks for it ~17 times per service, and ``timeline_of`` formats its
        key from the settings on every call)."""
        if self._timeline is None:
            self._timeline = timeline_of(self.snapshot, self.settings)
        return self._timeline

    @property
    def analysis(self) -> Analysis:
        """The analyzers' whole run over the snapshot."""
        if self._analysis is None:
            self._analysis = analyze(self.snapshot, self.settings,
                                     [c for c in self.checks if isinstance(c, Analyzer)], self.available)
        return self._analysis

    def analysis_for(self, service: ServiceRef) -> Analysis:
        """An analysis holding every analyzer finding about ``service``. For a question about one
        service, the analyzers that take a focus judge only what touches the services below it
        (:class:`meshobs.checks.scope.Focus`): a big mesh's configuration is otherwise judged
        whole for one service's report. A service outside it (a delivery fault's workloads'
        service) gets the whole run."""
        if self._analysis is not None or self.target is None:
            return self.analysis
        if self._focused is None:
            self._focused = analyze(self.snapshot, self.settings,
                                    [c for c in self.checks if isinstance(c, Analyzer)], self.available,
                                    focus=Focus(frozenset(self._below())))
        return self._focused if self._focused.complete_for(service) else self.analysis

    def mesh_causes(self) -> list[Finding]:
        """The analyzers' mesh-level findings that can explain a configuration-delivery fault:
        a focused run's are all there (an analyzer taking a focus emits no such code)."""
        return (self._focused if self._focused is not None and self._analysis is None else self.analysis).mesh_level

    def unjudged(self, results: list[CheckResult]) -> frozenset[str]:
        """Symptom kinds (errors, latency) whose checks were skipped: their data is missing."""
        kinds = self._symptoms
        return frozenset(kind for r in results if r.status == SKIPPED for kind in kinds.get(r.id, ()))

    def callees(self, service: ServiceRef) -> list[ServiceRef]:
        """:func:`callees_of`, one list per service for the run (read, never changed: the walks
        down and the ranking ask it ~20 times per service in a --all)."""
        found = self._callees.get(service)
        if found is None:
            refs = self._refs
            found = self._callees[service] = [refs.get(c, c) for c in callees_of(self.snapshot, service)]
        return found

    def about(self, workloads: Sequence[WorkloadRef], suppressions: Sequence[Suppression]) -> list[Finding]:
        """The (unsuppressed) findings about ``workloads``' proxies, from the reports of the
        services those workloads belong to: a proxy's rejected push is filed there, while the
        routes it left behind are filed under the service they route to."""
        wanted = set(workloads)
        services = {s for w in wanted for s in self.snapshot.services_of(w)}
        found = [f for s in sorted(services) for f in self.get(s)[1] if set(f.workloads) & wanted]
        return apply_suppressions(found, list(suppressions), self.snapshot.time)[0]

    def annotated(self, service: ServiceRef | None, suppressions: Sequence[Suppression],
                  ) -> tuple[list[Finding], list[tuple[Finding, Suppression]]]:
        """A service's findings (None: the mesh-level causes, :meth:`mesh_causes`) as every
        diagnosis walking through it reads them: (kept, annotated with their onsets; suppressed).
        Once per service and run, not once per diagnosis whose walk reaches it (~15 per service
        in a --all); read, never changed."""
        if suppressions is not self._annotated_for:
            self._annotated, self._annotated_for = {}, suppressions
        found = self._annotated.get(service)
        if found is None:
            if service is None:
                found = (apply_suppressions(self.mesh_causes(), list(suppressions), self.snapshot.time)[0], [])
            else:
                kept, hidden = apply_suppressions(self.get(service)[1], list(suppressions), self.snapshot.time)
                found = (annotate(kept, self.timeline), hidden)
            self._annotated[service] = found
        return found

    def prepare(self, first: ServiceRef | None = None) -> None:
        """Build now what every service's checklist reads (before workers are forked).

        ``first``: a service whose checklist is run here too, so that the mesh-wide indexes the
        checks build on first use (``memo``: the drift comparisons, the lookups by host...) are
        built once, in this process, rather than once in every worker (the drift against the
        Envoy layer alone is ~0.5 s of CPU at 5,000 services). Its results are kept.

        The analyzers (~0.8 s of CPU at 5,000 services, half of it the schema validation) need
        none of that, and the service checks need nothing of theirs: a forked child runs them
        from the last one back while this process builds the timeline and runs ``first``'s
        service checks (~0.5 s), then runs them from the first one on until the two meet
        (:class:`.fanout.Ends`). Before, the child ran them all and this process waited for it
        (~0.3 s of a core idle, before the first fork that shares the checklists). Each
        analyzer's run is its own :class:`Analysis`, joined in checklist order: the same as
        one run over all of them."""
        ran = None
        if self._analysis is None and first is not None:
            analyzers = [c for c in self.checks if isinstance(c, Analyzer)]
            ends = fanout.Ends(len(analyzers))
            try:
                here, there = fanout.fan_out(
                    [True, False], lambda warm: self._warm(first, analyzers, ends) if warm
                    else (None, self._analyze(analyzers, ends.back())))
            finally:
                ends.close()
            ran, pieces = here[0], {**there[1], **here[1]}
            # An analyzer taken by neither (the child died): run here.
            self._analysis = joined([pieces[k] if k in pieces else self._analyze(analyzers, iter([k]))[k]
                                     for k in range(len(analyzers))])
        self._checklist_for(self.analysis)
        _ = self.timeline
        if first is not None and first not in self.results:
            checklist = self._checklist_for(self.analysis_for(first))
            self.results[first] = run_checks(self.snapshot, first, self.settings, checklist=checklist, ran=ran)

    def _warm(self, first: ServiceRef, analyzers: list[Analyzer], ends: fanout.Ends) -> _Prepared:
        """The timeline, ``first``'s service checks (which build the checks' indexes), then the
        analyzers from the front of ``ends`` on."""
        _ = self.timeline
        service_checks = [c for c in self.checks if isinstance(c, Check)]
        planned = Checklist(self.snapshot, service_checks, self.available, Analysis())
        ran = run_service_checks(self.snapshot, first, self.settings, planned)
        return ran, self._analyze(analyzers, ends.front())

    def _analyze(self, analyzers: list[Analyzer], taken: Iterator[int]) -> dict[int, Analysis]:
        """Each analyzer ``taken``'s own run over the snapshot, by its place in ``analyzers``."""
        return {k: analyze(self.snapshot, self.settings, [analyzers[k]], self.available) for k in taken}

    def prepare_ranking(self) -> None:
        """Build now what every service's ranking reads beyond the checklists (before workers
        are forked again): the deadlines, found from the checklists already there, and (--all)
        the services that reach no finding."""
        if cutoff.reason is None:  # as _diagnose: past the deadline, nothing is walked
            self.deadlines()
            if self.target is None:
                self.quiet(None)

    def quiet(self, service: ServiceRef | None) -> bool:
        """--all: is nothing found on ``service`` nor on anything it calls, at any depth? Then
        its walk down can take no finding, so it is not walked (its ranking is empty, as the
        walk would leave it): ~60 % of the services of the generated 5,000-service mesh. Worked
        out once, after the deadlines (which check every service and callee): one walk up from
        every service holding a finding, over the same callees the walks down follow."""
        if self._reaching is None:
            if self.target is not None:
                return False
            self.deadlines()  # every service's and callee's checklist is there after it
            callers: dict[ServiceRef, list[ServiceRef]] = {}
            for svc in self.results:
                for callee in self.callees(svc):
                    callers.setdefault(callee, []).append(svc)
            self._reaching = set(nearest([s for s, (_r, found) in self.results.items() if found],
                                         lambda s: callers.get(s, [])))
        return service is not None and service in self.results and service not in self._reaching

    def get(self, service: ServiceRef) -> tuple[list[CheckResult], list[Finding]]:
        if service not in self.results:
            checklist = self._checklist_for(self.analysis_for(service))
            self.results[service] = run_checks(self.snapshot, service, self.settings, checklist=checklist)
        return self.results[service]

    def _checklist_for(self, analysis: Analysis) -> Checklist:
        """The checklist's plan over ``analysis`` (the whole run's or the focused one's), built once."""
        checklist = next((c for c in self._checklists if c.analysis is analysis), None)
        if checklist is None:
            checklist = Checklist(self.snapshot, self.checks, self.available, analysis)
            self._checklists.append(checklist)
        return checklist

    def hop(self, caller: ServiceRef, callee: ServiceRef, kind: str) -> bool | None:
        """:func:`hop_shows` with this run's threshold, remembered for the run (--all asks the
        same hops for every service above them)."""
        key = (caller, callee, kind)
        found = self._hops.get(key, _UNASKED)
        if found is _UNASKED:
            found = self._hops[key] = hop_shows(self.snapshot, caller, callee, kind, self.settings)
        return found  # type: ignore[return-value]

    def followed(self, caller: ServiceRef) -> list[ServiceRef]:
        """The callees the walk down goes on to beyond MAX_DEPTH: those whose hop shows any kind
        of failure it follows (remembered per caller: every service's walk asks it of the hops at
        its frontier, ~150k times in a --all at 5,000 services; a list per caller is one lookup
        where a judgement per hop was one each)."""
        found = self._followed.get(caller)
        if found is None:
            found = self._followed[caller] = [c for c in self.callees(caller)
                                              if any(self.hop(caller, c, k) for k in CALL_GRAPH_KINDS)]
        return found

    def deadlines(self) -> list[_Deadline]:
        """Every finding with a deadline (a certificate running out) below what is diagnosed:
        which services hold it, and for every service calling through one of them the hop
        count to the nearest holder.

        Found once per run, so a diagnosis surfaces them at any depth: from a service's checklist
        when it is checked anyway (every service of --all, the services a diagnosis has walked),
        else with only the checks that can emit one, not the whole checklist below it (a
        question about one service). One walk up per finding, from all its holders at once: a
        mesh CA running out is one finding held by every service, and --all must not walk the
        mesh once per service (neither down from each, nor up)."""
        if self._deadlines is None:
            checks = [c for c in self.checks
                      if isinstance(c, Check) and any(CATALOGUE[code].deadline for code in c.codes)]
            held: dict[tuple[str, str, str], dict[ServiceRef, Finding]] = {}
            planned = Checklist(self.snapshot, checks, self.available, Analysis())
            for svc in self._below() if checks else ():
                checked = self.results.get(svc)
                if checked is None and self.target is None:
                    checked = self.get(svc)  # --all checks it for its own report
                for f in (checked or run_checks(self.snapshot, svc, self.settings, checklist=planned))[1]:
                    if CATALOGUE[f.code].deadline:
                        held.setdefault(f.identity, {})[svc] = f
            self._deadlines = [_Deadline(holders, nearest(holders, lambda s: callers_of(self.snapshot, s)))
                               for holders in held.values()]
        return self._deadlines

    def _below(self) -> list[ServiceRef]:
        """The services a deadline can be surfaced from: below the target, or (--all) every
        service and every callee the graph names (a callee the service list lacks included)."""
        if self.target is not None:
            return sorted(downstream(self.target, lambda s: callees_of(self.snapshot, s), None))
        refs = {s.ref for s in self.snapshot.services} | {e.destination for e in self.snapshot.edges}
        return sorted(r for r in refs if not r.is_unknown)


# What a diagnosis of one service finds (status, ranked findings, checklist, suppressed): a
# Report without what every report of the run shares (sources, time, origin, timeline), which
# is what a forked worker of --all hands back (meshobs.engine.fanout).
Judged = tuple[str, tuple[Finding, ...], tuple[CheckResult, ...], tuple[tuple[Finding, Suppression], ...]]


def _diagnose(cache: _Cache, service: ServiceRef, suppressions: Sequence[Suppression],
              with_sources: bool) -> Report:
    return _report(cache, service, _judge(cache, service, suppressions, with_sources))


def _report(cache: _Cache, service: ServiceRef, judged_: Judged) -> Report:
    snapshot = cache.snapshot
    status, findings, checks, suppressed = judged_
    return Report(service=service, status=status, findings=findings, checks=checks,
                  sources=cache.sources, suppressed=suppressed, time=snapshot.time, origin=snapshot.origin,
                  # --all prints only the mesh's timeline: a service's part is worked out if read.
                  timeline_or_below=(TimelineBelow(cache.timeline, snapshot, service) if cache.target is None
                                     else timeline_below(cache.timeline, snapshot, service)))


def _judge(cache: _Cache, service: ServiceRef, suppressions: Sequence[Suppression],
           with_sources: bool) -> Judged:
    snapshot = cache.snapshot
    # A service reached after the run's deadline (meshobs.cutoff: --all, cut short) is not
    # walked below: the checks of what it calls would not run either, and its report is its
    # checklist ("could not check") with what the analyzers, judged before, found about it.
    walk = cutoff.reason is None
    results, own = cache.get(service)
    depth = (downstream(service, cache.callees, MAX_DEPTH, followed=cache.followed)
             if walk and not cache.quiet(service) else {service: 0})
    by_service: dict[ServiceRef, list[Finding]] = {}
    hidden_all: list[tuple[Finding, Suppression]] = []
    for svc in depth:
        if svc == service and with_sources:
            kept, hidden = apply_suppressions(_source_findings(snapshot) + own, list(suppressions), snapshot.time)
            by_service[svc] = annotate(kept, cache.timeline)
        else:
            by_service[svc], hidden = cache.annotated(svc, suppressions)
        if svc == service:
            hidden_all = hidden
    # A fault with a deadline anywhere below is every caller's business, however deep and
    # whatever the traffic says today: its nearest holder joins the walk.
    walked = set(depth)
    beyond: dict[ServiceRef, list[Finding]] = {}
    for deadline in cache.deadlines() if walk else ():
        near = deadline.callers.get(service)
        if near is not None and near[1] not in walked:
            depth[near[1]] = near[0]
            beyond.setdefault(near[1], []).append(deadline.holders[near[1]])
    for svc, found in beyond.items():
        by_service[svc] = annotate(apply_suppressions(found, list(suppressions), snapshot.time)[0], cache.timeline)
    mesh_causes = cache.annotated(None, suppressions)[0]
    ranked = rank(service, by_service, depth, cache.callees,
                  cache.hop, cache.unjudged(results),
                  # The findings about a resource a symptom names, wherever filed: the whole run's,
                  # asked for only when a symptom names one (rarely).
                  related=Related(lambda: cache.analysis, suppressions, snapshot.time),
                  hop_failures=lambda x, c: hop_failures(snapshot, x, c),
                  mesh_causes=mesh_causes, delivery_candidates=lambda f: cache.about(f.workloads, suppressions),
                  target_workloads=frozenset(w.ref for w in snapshot.workloads_of(service)))
    # A service no vouching check reached (a configuration-only run, a waypoint) is "clean" at
    # best: what was checked found nothing, its requests were not judged.
    status = status_of(ranked, cache.answered, judged(results, cache.vouching), bool(gaps(results)),
                       traffic_checked(results, cache.vouching))
    return status, tuple(ranked), tuple(_rescore(results, by_service[service])), tuple(hidden_all)


def diagnose(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings | None = None,
             suppressions: Sequence[Suppression] = (), checks: Sequence[AnyCheck] | None = None) -> Report:
    """Diagnose one service: the checklist (every check, or the ``checks`` selected), the
    analyzer findings that touch it, then its findings and their downstream causes, ranked."""
    return _diagnose(_Cache(snapshot, settings or Settings(), checks, service), service, suppressions, True)


# Below this many services --all stays in one process: the second core saves next to nothing.
# Measured in-process (generated meshes, loaded machine, CPU s of the parent, which bounds an
# idle machine's wall): 300 services 0.19-0.25 in one process, 0.15 with a worker; 500: 0.41-0.63
# against 0.29-0.30; 5,000: 4.2-4.3 against 2.7-2.8 (benchmarks/results/replay-fork-s23.md).
FORK_MIN_SERVICES = 500


def diagnose_all(snapshot: MeshSnapshot, settings: Settings | None = None,
                 suppressions: Sequence[Suppression] = (), checks: Sequence[AnyCheck] | None = None,
                 jobs: int | None = None) -> MeshReport:
    """Diagnose every service of the mesh; each report ranks its own causes. Analyzer findings
    that touch no service, and failed sources, are the mesh-level findings.

    ``jobs``: processes to share the work (None: one per core this process may use, on a mesh of
    at least FORK_MIN_SERVICES; see :func:`_diagnose_forked`). The reports are the same."""
    cache = _Cache(snapshot, settings or Settings(), checks)
    refs = [s.ref for s in sorted(snapshot.services, key=lambda s: s.ref) if not s.ref.is_unknown]
    n = fanout.workers(jobs, len(refs), FORK_MIN_SERVICES)
    reports = (tuple(_diagnose(cache, ref, suppressions, False) for ref in refs) if n <= 1
               else _diagnose_forked(cache, refs, suppressions, n))
    analysis = cache.analysis
    # Analyzer findings about services the snapshot does not list have no report to join.
    listed = {r.service for r in reports}
    orphans = [replace(f, service=None) for s, fs in analysis.by_service.items() if s not in listed for f in fs]
    mesh_findings, _hidden = apply_suppressions(_source_findings(snapshot) + unique(analysis.mesh_level + orphans),
                                                list(suppressions), snapshot.time)
    everything = list(mesh_findings) + [f for r in reports for f in r.findings]
    mesh_findings = [replace(f, rank=n) for n, f in enumerate(mesh_findings, start=1)]
    verdicts = _mesh_verdicts(cache, mesh_findings, reports)
    traffic = any(traffic_checked(r.checks, cache.vouching) for r in reports)
    return MeshReport(reports=reports, status=status_of(everything, cache.answered,
                                                        _mesh_judged(verdicts, reports, cache.vouching, traffic),
                                                        _mesh_partial(verdicts, reports), traffic),
                      sources=cache.sources, time=snapshot.time, origin=snapshot.origin,
                      mesh_findings=tuple(mesh_findings), analyzers=tuple(verdicts), timeline=cache.timeline)


def _diagnose_forked(cache: _Cache, refs: list[ServiceRef], suppressions: Sequence[Suppression],
                     n: int) -> tuple[Report, ...]:
    """--all in ``n`` processes (:mod:`.fanout`), in two phases, because one service's ranking
    reads the checklists of most of the mesh below it (stop 22 measured ~90 %: split by service
    in one phase, each half would check nearly every service again):

    1. the checklists: each process checks its part of the services; the parent keeps them all;
    2. the rankings: forked again, each process ranks its part with every checklist at hand,
       and hands back what it judged (not the reports: their shared parts stay here).

    What every service reads is built once before the fork that needs it (the analyzers, the plan
    of the checklist, the timeline and the checks' mesh-wide indexes before the first; the
    deadlines, from the checklists, before the second), so no worker builds it again."""
    cache.prepare(_warming(cache.snapshot, refs))
    parts = fanout.split(refs, n)
    for results in fanout.fan_out(parts, lambda part: {ref: cache.get(ref) for ref in part}):
        cache.results.update(results)
    cache.prepare_ranking()
    judged_ = fanout.fan_out(parts, lambda part: [_judge(cache, ref, suppressions, False) for ref in part])
    return tuple(_report(cache, ref, j) for ref, j in zip(refs, fanout.join(judged_), strict=True))


def _warming(snapshot: MeshSnapshot, refs: list[ServiceRef]) -> ServiceRef | None:
    """The service whose checklist :meth:`_Cache.prepare` runs before the first fork, to build
    the checks' indexes: the first that is neither an ingress gateway nor a waypoint, whose
    checklist leaves out the checks judging what its callers see (their proxies' clusters...).
    The first of a generated mesh is its ingress gateway: each worker then built the callers'
    clusters index again (~0.06 s of CPU at 5,000 services, in each)."""
    return next((r for r in refs if role_and_mesh(snapshot, r)[0] is None), refs[0] if refs else None)


def _mesh_judged(verdicts: list[CheckResult], reports: Sequence[Report], vouching: frozenset[str],
                 traffic: bool) -> bool:
    """Can the run vouch for the mesh? When the checks that judge traffic reached some service
    (``traffic``: :func:`traffic_checked`), at least one service they reached must have been
    judged: the analyzers' verdict on the configuration says nothing about whether requests
    succeed (a window without samples is unknown however clean the configuration), nor does a
    service they do not apply to (a waypoint judged by its proxies alone). Without such checks
    (configuration only), an analyzer's verdict is enough."""
    if traffic:
        return any(r.status != UNKNOWN and traffic_checked(r.checks, vouching) for r in reports)
    return judged(verdicts) or any(r.status != UNKNOWN for r in reports)


def _mesh_partial(verdicts: list[CheckResult], reports: Sequence[Report]) -> bool:
    """Did a configured source leave a gap anywhere (no data, failed, answered in part)?"""
    return bool(gaps(verdicts)) or any(gaps(r.checks) for r in reports)


def _mesh_verdicts(cache: _Cache, kept: list[Finding], reports: Sequence[Report]) -> list[CheckResult]:
    """Each analyzer's verdict on the whole mesh, counting only the findings not suppressed."""
    counted: dict[str, list[Finding]] = {}
    for f in [*kept, *(f for r in reports for f in r.findings)]:
        counted.setdefault(f.check, []).append(f)
    out: list[CheckResult] = []
    for c in cache.checks:
        result = cache.analysis.results.get(c.id)
        if result is not None:
            out.append(result if result.status in (SKIPPED, ERROR)
                       else replace(result, status=status(counted.get(c.id, []))))
    return out
