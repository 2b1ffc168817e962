"""Running checks and analyzers: inputs, mesh scope, run-time skips, internal errors.

Service checks run per service; analyzers run once per snapshot and their findings are filed
under every service they touch. Either kind may be skipped before it runs (an input is missing,
it judges another mesh), skip itself at run time (``CouldNotCheck``), or raise (an MSH0001
finding; the checklist goes on).
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from time import perf_counter

from meshobs import cutoff
from meshobs.catalogue import Severity
from meshobs.checks.base import Analyzer, AnyCheck, Check, CouldNotCheck, Finding, Settings, finding
from meshobs.checks.scope import Focus, not_applicable_in, role_and_mesh
from meshobs.model import Mesh, MeshSnapshot, ServiceRef
from meshobs.telemetry import add_times, timed, tracing

from .inputs import availability, data_gap, missing
from .report import ERROR, FAIL, JUDGED, PASS, SKIPPED, WARN, CheckResult


def could_not_check(reason: str) -> str:
    return f"could not check: {reason}"


def status(found: Iterable[Finding]) -> str:
    """pass | warn | fail, from the worst severity found."""
    if isinstance(found, list) and not found:  # most checks of most services find nothing
        return PASS
    worst = max((f.severity.weight for f in found), default=0)
    if worst >= Severity.ERROR.weight:
        return FAIL
    if worst >= Severity.WARNING.weight:
        return WARN
    return PASS


def _internal_error(c: AnyCheck, exc: Exception, service: ServiceRef | None) -> tuple[CheckResult, Finding]:
    where = traceback.extract_tb(exc.__traceback__)[-1]
    error = f"{type(exc).__name__}: {exc}"
    f = finding("MSH0001", c.id, f"Check {c.id}", service=service, check_id=c.id, error=error,
                evidence={"exception": type(exc).__name__, "message": str(exc),
                          "at": f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno}"},
                hint="a bug in meshobs: please report it with the bundle (meshobs snapshot)")
    return CheckResult(c.id, c.category, ERROR, error, c.doc, c.kind), f


# A verdict without a reason (pass, warn, fail) says the same for every service: one shared
# (frozen) CheckResult per check and status, not one built per service and check (a --all at
# 5,000 services builds ~300k checklist lines, most of them passes).
_VERDICTS: dict[tuple[str, str], CheckResult] = {}


def verdict(c: AnyCheck, found: str) -> CheckResult:
    """``CheckResult(c.id, c.category, found, "", c.doc, c.kind)``, shared."""
    key = (c.id, found)
    result = _VERDICTS.get(key)
    if result is None or result.category is not c.category or result.description != c.doc or result.kind != c.kind:
        result = _VERDICTS[key] = CheckResult(c.id, c.category, found, "", c.doc, c.kind)
    return result


def _run(c: AnyCheck, run: Callable[[], Iterable[Finding]], service: ServiceRef | None,
         spent: dict[str, list[float]] | None = None, passed: CheckResult | None = None,
         ) -> tuple[CheckResult, list[Finding]]:
    """Call one check and consume its findings; a run-time skip keeps what was found before it.
    ``spent``: the check's time is added there (check id -> [seconds, calls, failures], for
    :func:`meshobs.telemetry.add_times`) rather than through a span of its own; ``passed``: the
    check's shared pass line (``verdict(c, PASS)``), already looked up. Past the run's deadline
    (:mod:`meshobs.cutoff`) the check is not called: "could not check"."""
    if cutoff.reason is not None:
        return cutoff.not_run(c), []
    found: list[Finding] = []
    try:
        if spent is None:
            with timed("check", c.id):
                found.extend(run())  # what was found before a raise stays in ``found``
        else:
            _timed_into(spent, c.id, run, found)
    except Exception as exc:  # a broken check must not stop the checklist
        return _raised(c, exc, found, service)
    if not found and passed is not None:
        return passed, found
    return verdict(c, status(found)), found


def _raised(c: AnyCheck, exc: Exception, found: list[Finding], service: ServiceRef | None,
            ) -> tuple[CheckResult, list[Finding]]:
    """The line of a check that raised: a run-time skip (``CouldNotCheck``) keeps what was found
    before it; anything else is an internal error (MSH0001)."""
    if isinstance(exc, CouldNotCheck):
        reason = could_not_check(exc.reason)
        return CheckResult(c.id, c.category, status(found) if found else SKIPPED, reason, c.doc, c.kind,
                           could_not_check=not found), found
    result, f = _internal_error(c, exc, service)
    return result, [f]


def _timed_into(spent: dict[str, list[float]], name: str, run: Callable[[], Iterable[Finding]],
                found: list[Finding]) -> None:
    """``found.extend(run())``, its time, call and failure (a raise: a skip too, as a span
    counts it) added to ``spent[name]``."""
    total = spent.get(name)
    if total is None:
        total = spent[name] = [0.0, 0, 0]
    start = perf_counter()
    try:
        found.extend(run())
    except BaseException:
        total[2] += 1
        raise
    finally:
        total[0] += perf_counter() - start
        total[1] += 1


@dataclass
class Analysis:
    """The analyzers' verdicts on one snapshot: a mesh-wide result per analyzer, and their
    findings filed by the services they touch (those touching none are mesh-level).

    With a ``focus``, the analyzers that take one judged only what touches its services: the
    findings filed under those services are all there, those of other services and the
    mesh-level ones of such analyzers are not (the results' verdicts, judged or not, are the
    whole run's)."""

    results: dict[str, CheckResult] = field(default_factory=dict)
    by_service: dict[ServiceRef, list[Finding]] = field(default_factory=dict)
    mesh_level: list[Finding] = field(default_factory=list)
    focus: Focus | None = None
    # Analyzers taking a focus that raised, the crash traced to the services it touches
    # (:func:`_crashed_on`): each such service's error line. Every other service has the
    # analyzer's findings about it, as if it had not raised.
    crashed: dict[str, dict[ServiceRef, CheckResult]] = field(default_factory=dict)

    def complete_for(self, service: ServiceRef) -> bool:
        """Are all the analyzers' findings about ``service`` here?"""
        return self.focus is None or service in self.focus.services


def analyze(snapshot: MeshSnapshot, settings: Settings, analyzers: Sequence[Analyzer],
            available: dict[str, str | None] | None = None, focus: Focus | None = None) -> Analysis:
    """Run every analyzer once over the snapshot (those taking a ``focus``, over what can touch
    its services only: :class:`meshobs.checks.scope.Focus`)."""
    available = availability(snapshot) if available is None else available
    out = Analysis(focus=focus)
    for a in analyzers:
        reason = missing(a.needs, available)
        if reason is not None:
            gap = data_gap(a.needs, available, snapshot)
            out.results[a.id] = CheckResult(a.id, a.category, SKIPPED, reason, a.doc, a.kind,
                                            could_not_check=gap, missing_data=gap)
            continue
        focused = focus is not None and a.focusable
        result, found = _run(a, functools.partial(a, snapshot, settings, focus) if focused
                             else functools.partial(a.run, snapshot, settings), None)
        out.results[a.id] = result
        if result.status == ERROR and a.focusable:
            traced = _crashed_on(a, snapshot, settings, focus.services if focus is not None else _services(snapshot))
            if traced is not None:
                out.crashed[a.id], touching = traced
                for s, fs in touching.items():
                    out.by_service.setdefault(s, []).extend(fs)
        for f in found:
            if not f.services and not (focused and f.code in a.codes):  # a focused run's are incomplete
                out.mesh_level.append(f)
            for s in f.services:
                if focus is None or not a.focusable or s in focus.services:
                    out.by_service.setdefault(s, []).append(replace(f, service=s))
    return out


def joined(runs: Iterable[Analysis]) -> Analysis:
    """Runs of :func:`analyze` over consecutive analyzers of a whole run (none focused), as one
    run over all of them in that order: each analyzer's results, crashes and findings are its
    own, added in its turn (a service's findings in the order the analyzers found them, the
    services in the order they were first touched)."""
    out = Analysis()
    for run in runs:
        out.results.update(run.results)
        out.crashed.update(run.crashed)
        for s, found in run.by_service.items():
            out.by_service.setdefault(s, []).extend(found)
        out.mesh_level.extend(run.mesh_level)
    return out


def _services(snapshot: MeshSnapshot) -> list[ServiceRef]:
    """The services a whole run's findings are filed under: listed, or named as a callee."""
    refs = {s.ref for s in snapshot.services} | {e.destination for e in snapshot.edges}
    return sorted(r for r in refs if not r.is_unknown)


def _crashed_on(a: Analyzer, snapshot: MeshSnapshot, settings: Settings, services: Iterable[ServiceRef],
                ) -> tuple[dict[ServiceRef, CheckResult], dict[ServiceRef, list[Finding]]] | None:
    """Which of ``services`` an analyzer taking a focus crashes on, after its run over them raised:
    each one's error line, and the findings about the others. A question about one service runs
    it focused on the services below it, a whole run over all of them: without this, the first
    shows "pass" where the crash is outside its focus and the second "error" for every service.

    Its focused run judges the subjects touching the focus's services, so it raises when one of
    theirs does: halves of ``services`` are run apart, a half that raises is halved again, down
    to the single services whose own run raises (their error line is that run's, the same in
    both kinds of question). A half that did not raise holds every finding about its services
    (:class:`meshobs.checks.scope.Focus`). None when the run's deadline left a part unjudged."""
    crashed: dict[ServiceRef, CheckResult] = {}
    touching: dict[ServiceRef, list[Finding]] = {}
    parts = _halves(sorted(services))
    while parts:
        part = parts.pop()
        result, found = _run(a, functools.partial(a, snapshot, settings, Focus(frozenset(part))), None)
        if result.status == ERROR:
            if len(part) == 1:
                crashed[part[0]] = result
            else:
                parts.extend(_halves(part))
            continue
        if result.status not in JUDGED:  # past the deadline (or a skip the whole run did not make)
            return None
        wanted = set(part)
        for f in found:
            for s in f.services:
                if s in wanted:
                    touching.setdefault(s, []).append(replace(f, service=s))
    return crashed, {s: touching[s] for s in sorted(touching)}


def _halves(part: list[ServiceRef]) -> list[list[ServiceRef]]:
    middle = len(part) // 2
    return [half for half in (part[:middle], part[middle:]) if half]


# What a checklist line does for one service, decided once per (role, mesh): ``RUN`` the check,
# take the ``ANALYZER``'s findings touching the service, say it is ``NOT_APPLICABLE`` (the reason
# names the service), or give a ``FIXED`` line (the same for every service: an input missing from
# the whole snapshot, an analyzer that did not judge). A ``RUN`` or ``ANALYZER`` step carries the
# line it gives when nothing is found (the shared pass: most checks of most services).
RUN, ANALYZER, NOT_APPLICABLE, FIXED = range(4)
Step = tuple[int, AnyCheck, CheckResult | None]


class Checklist:
    """The checks of one run over one snapshot, with everything about them that does not depend
    on the service found once: the inputs each misses (from the snapshot's availability), each
    analyzer's overall verdict, and whether each applies to a service's role and mesh.

    ``--all`` asks these of every check for every service (~300k times at 5,000 services), and
    their answers are the same for all services of a role and mesh.
    """

    def __init__(self, snapshot: MeshSnapshot, checks: Sequence[AnyCheck], available: dict[str, str | None],
                 analysis: Analysis) -> None:
        self.checks, self.analysis = checks, analysis
        # Per check: the line it gives when it applies but cannot run (None: it runs).
        self._fixed: list[CheckResult | None] = []
        for c in checks:
            if isinstance(c, Analyzer):
                overall = analysis.results.get(c.id)
                judged_ = overall is not None and (overall.status in JUDGED or c.id in analysis.crashed)
                self._fixed.append(None if judged_ else
                                   overall or CheckResult(c.id, c.category, SKIPPED, "not run", c.doc, c.kind))
                continue
            reason = missing(c.needs, available)
            gap = reason is not None and data_gap(c.needs, available, snapshot)
            self._fixed.append(None if reason is None else CheckResult(
                c.id, c.category, SKIPPED, reason, c.doc, c.kind, could_not_check=gap, missing_data=gap))
        self._steps: dict[tuple[str | None, Mesh], list[Step]] = {}

    def steps(self, role: str | None, mesh: Mesh, service: ServiceRef) -> list[Step]:
        """The lines for a service of this role and mesh (``service``: the first one asked)."""
        found = self._steps.get((role, mesh))
        if found is None:
            found = self._steps[(role, mesh)] = [self._step(c, fixed, role, mesh, service)
                                                 for c, fixed in zip(self.checks, self._fixed, strict=True)]
        return found

    @staticmethod
    def _step(c: AnyCheck, fixed: CheckResult | None, role: str | None, mesh: Mesh, service: ServiceRef) -> Step:
        # The order of the questions is the checklist's: an analyzer that did not judge says so
        # on every service; a check that cannot judge this role or mesh says that before it says
        # an input is missing. Whether a check applies never depends on the service itself.
        if isinstance(c, Analyzer) and fixed is not None:
            return FIXED, c, fixed
        if not_applicable_in(c, role, mesh, service) is not None:
            return NOT_APPLICABLE, c, None
        if fixed is not None:
            return FIXED, c, fixed
        return (ANALYZER if isinstance(c, Analyzer) else RUN), c, verdict(c, PASS)


def run_checks(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings,
               checks: Sequence[AnyCheck] | None = None, available: dict[str, str | None] | None = None,
               analysis: Analysis | None = None, checklist: Checklist | None = None,
               ran: dict[str, tuple[CheckResult, list[Finding]]] | None = None,
               ) -> tuple[list[CheckResult], list[Finding]]:
    """The checklist for one service (every registered check, or ``checks``): a result per
    check, analyzers judged by the findings that touch this service, and the service's
    unranked findings, each problem once. ``checklist``: the same checks, inputs and analysis
    already planned (a run diagnosing many services passes one). ``ran``: the service checks
    already run for this service (:func:`run_service_checks`), not run again."""
    if checklist is None:
        if checks is None:
            from meshobs.checks.registry import ALL
            from meshobs.checks.registry import checklist as registered

            checks = registered(ALL)
        available = availability(snapshot) if available is None else available
        if analysis is None:
            analysis = analyze(snapshot, settings, [c for c in checks if isinstance(c, Analyzer)], available)
        checklist = Checklist(snapshot, checks, available, analysis)
    touching: dict[str, list[Finding]] = {}
    for f in checklist.analysis.by_service.get(service, ()):
        touching.setdefault(f.check, []).append(f)
    results: list[CheckResult] = []
    findings: list[Finding] = []
    role, mesh = role_and_mesh(snapshot, service)
    # Without a tracer provider the checks' times are kept here and added to the totals once per
    # service: a span object, a provider lookup and a lock per check cost ~0.3 s of a --all at
    # 5,000 services (135k checks).
    spent: dict[str, list[float]] | None = None if tracing() else {}
    for step, c, line in checklist.steps(role, mesh, service):
        if step == RUN:
            assert isinstance(c, Check) and line is not None
            got = ran.get(c.id) if ran is not None else None
            result, found = got if got is not None else _check(c, snapshot, service, settings, spent, line)
            if found:  # most checks of most services find nothing
                findings.extend(f if f.service is not None else replace(f, service=service) for f in found)
            results.append(result)
        elif step == ANALYZER:
            assert line is not None
            mine = touching.get(c.id)
            crashed = checklist.analysis.crashed.get(c.id) if checklist.analysis.crashed else None
            if crashed is not None and service in crashed:  # it raised on what touches this service
                results.append(crashed[service])
            elif mine:
                findings.extend(mine)
                results.append(verdict(c, status(mine)))
            else:
                results.append(line)
        elif step == NOT_APPLICABLE:
            # A check that cannot judge this service's role or mesh (an Istio config check on an
            # App Mesh service): skipped with the reason, never passed.
            reason = not_applicable_in(c, role, mesh, service)
            assert reason is not None
            results.append(CheckResult(c.id, c.category, SKIPPED, reason, c.doc, c.kind))
        else:  # an input absent from the whole snapshot, an analyzer that did not judge
            assert line is not None
            results.append(line)
    if spent:
        add_times("check", spent)
    return results, unique(findings)


def _check(c: Check, snapshot: MeshSnapshot, service: ServiceRef, settings: Settings,
           spent: dict[str, list[float]] | None, passed: CheckResult) -> tuple[CheckResult, list[Finding]]:
    """One service check's line and findings, its time added to ``spent`` (see :func:`_run`)."""
    if spent is None or cutoff.reason is not None:  # spans, or past the run's deadline
        return _run(c, functools.partial(c.run, snapshot, service, settings), service, spent, passed)
    # _run and _timed_into written out: ~135k checks in a --all at 5,000 services, whose
    # two calls, partial and lookups per check cost more than most checks themselves.
    total = spent.get(c.id)
    if total is None:
        total = spent[c.id] = [0.0, 0, 0]
    found: list[Finding] = []
    raised: Exception | None = None
    start = perf_counter()
    try:
        found.extend(c.run(snapshot, service, settings))  # kept when it raises
    except Exception as exc:
        raised = exc
    total[0] += perf_counter() - start
    total[1] += 1
    if raised is not None:
        total[2] += 1
        return _raised(c, raised, found, service)
    return (verdict(c, status(found)) if found else passed), found


def run_service_checks(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings, checklist: Checklist,
                       ) -> dict[str, tuple[CheckResult, list[Finding]]]:
    """The service checks (not the analyzers) of ``service``'s checklist, run and timed as
    :func:`run_checks` runs them: by check id, the line and the findings of each. Their lines do
    not depend on the analyzers' findings, so they can run before the analyzers are done, and
    be handed to :func:`run_checks` (``ran``)."""
    role, mesh = role_and_mesh(snapshot, service)
    spent: dict[str, list[float]] | None = None if tracing() else {}
    ran: dict[str, tuple[CheckResult, list[Finding]]] = {}
    for step, c, line in checklist.steps(role, mesh, service):
        if step == RUN:
            assert isinstance(c, Check) and line is not None
            ran[c.id] = _check(c, snapshot, service, settings, spent, line)
    if spent:
        add_times("check", spent)
    return ran


def unique(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per problem: when a service check and an analyzer (or two copies of one
    finding) share an identity, the first is kept, or the one that names a file and line."""
    kept: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        seen = kept.get(f.identity)
        if seen is None or (f.file and not seen.file):
            kept[f.identity] = f
    return list(kept.values())


__all__ = ["WARN", "Analysis", "Checklist", "analyze", "could_not_check", "joined", "run_checks", "run_service_checks",
           "status", "unique"]
