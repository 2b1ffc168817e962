"""What a check is, what it returns, and the two kinds of check.

A **service check** judges one service: a pure function ``(snapshot, service, settings) ->
Iterable[Finding]`` declared with :func:`check`. It names the *inputs* it needs ("requests",
"latency", "proxies", ...); when one is absent the engine records the check as skipped with the
reason instead of calling it.

An **analyzer** judges configuration resources (or the mesh as a whole): a pure function
``(snapshot, settings) -> Iterable[Finding]`` declared with :func:`analyzer`. It names the
resource *kinds* it reads ("VirtualService", "Service", "Pod"...); it runs once per snapshot,
and each finding names the services it touches, so ``diagnose SERVICE`` shows the analyzer
findings that touch SERVICE and ``diagnose --all`` shows them all.

Both kinds share ids, codes, the catalogue, the report and suppressions, and both may raise
:class:`CouldNotCheck` at run time ("3 requests in the window, need 100"): the engine records a
skip with that reason, never a pass. Every check is listed once in ``meshobs.checks.registry``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar

from meshobs.catalogue import CATALOGUE, Category, Severity
from meshobs.model import (
    EMPTY,
    ConfigResource,
    FrozenDict,
    Mesh,
    MeshSnapshot,
    ServiceRef,
    SourceLocation,
    WorkloadRef,
    frozen_map,
)

if TYPE_CHECKING:
    from meshobs.config_model import Thresholds

    from .scope import Focus


@dataclass(frozen=True)
class Settings:
    """Thresholds, configurable under ``thresholds:`` in meshobs.yaml."""

    error_ratio: float = 0.01  # 1 % of requests failing
    p99_ms: float = 1000.0
    latency_regression: float = 2.0  # p99 more than twice the baseline
    root_cert_error_days: float = 7.0
    root_cert_warning_days: float = 30.0
    workload_cert_warning_fraction: float = 0.2  # less than 20 % of its lifetime left
    xds_stale_after_s: float = 600.0
    xds_unacked_after_s: float = 60.0  # a push sent this long ago and not acknowledged is stale
    baseline: MeshSnapshot | None = None  # an earlier window to compare latency against
    # A proxy up for less than this fraction of its peers' median uptime restarted recently.
    uptime_fraction: float = 0.1
    # Below this many requests per second an error ratio is noise, not a finding.
    min_request_rate: float = 0.0
    # A restart older than this (last termination, or a proxy's uptime) is history, not a finding.
    restart_recent_s: float = 3600.0
    # A change at most this long before a symptom started is named as what preceded it.
    change_lookback_s: float = 600.0
    # Asked for (diagnose --hops), not a threshold: where the requests' time goes (MSH0502)
    # even when nothing is slow.
    explain_hops: bool = False

    @classmethod
    def from_thresholds(cls, thresholds: Thresholds | Mapping[str, object] | None,
                        baseline: MeshSnapshot | None = None) -> Settings:
        """Settings from the config's ``thresholds:`` (the typed model, or its dict, validated
        by it: the defaults and ranges live in :class:`meshobs.config_model.Thresholds`)."""
        if thresholds is None or (isinstance(thresholds, Mapping) and not thresholds):
            # Nothing to validate: the defaults, without importing pydantic and building the
            # config model (~0.15 s of a replay or demo run with no config file).
            # tests/test_config_model.py holds these defaults equal to the model's.
            return cls(baseline=baseline)
        from meshobs.config_model import Thresholds

        typed = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_mapping(thresholds)
        return cls(baseline=baseline, **typed.settings_values())  # type: ignore[arg-type]  # thresholds only


@dataclass(frozen=True)
class Finding:
    """One problem found, with the numbers that made the check fire."""

    code: str
    check: str
    subject: str  # "Workload default/cart-v1", "Service default/database-service", ...
    fields: FrozenDict  # the template's named fields
    evidence: FrozenDict = EMPTY
    hint: str = ""
    service: ServiceRef | None = None  # the service the finding is about (for root-cause ranking)
    cause_of: tuple[str, ...] = ()  # set by the engine: subjects of symptoms this explains
    caused_by: tuple[str, ...] = ()  # set by the engine: "CODE subject" of the causes found
    magnitude: float = 0.0  # how bad, in the finding's own unit (req/s, endpoints...): ranks ties
    rank: int = 0  # set by the engine: 1 is the most likely root cause
    # An analyzer's finding: every service it touches (the engine files a copy under each,
    # with ``service`` set); empty for a mesh-level finding such as a Gateway conflict.
    services: tuple[ServiceRef, ...] = ()
    # Where the resource was written (manifests only): the file and the line of the field.
    file: str = ""
    line: int = 0
    # Configuration resources on the failing path of a symptom ("VirtualService ns/name"): the
    # ranking links findings about them (an analyzer's) to the symptom as its causes.
    related: tuple[str, ...] = ()
    # The workloads whose proxies the finding is about (a proxy's rejected push, the routes that
    # drifted): the ranking links configuration-delivery causes and symptoms through them.
    workloads: tuple[WorkloadRef, ...] = ()

    @property
    def severity(self) -> Severity:
        return CATALOGUE[self.code].severity

    @property
    def category(self) -> Category:
        return CATALOGUE[self.code].category

    @property
    def message(self) -> str:
        return CATALOGUE[self.code].render(dict(self.fields))

    @property
    def doc(self) -> str:
        return CATALOGUE[self.code].doc

    @property
    def location(self) -> str:
        """``file:line`` when the finding is on a manifest, else empty."""
        return f"{self.file}:{self.line}" if self.file and self.line else self.file

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two findings the same: code, subject and fields (one resource can carry
        two findings of one code, e.g. two undefined subsets). Rank and links do not count, nor
        which kind of check found it: a service check and an analyzer that see the same problem
        emit the same identity, and the engine keeps one."""
        return (self.code, self.subject, repr(sorted(self.fields.items())))


def finding(code: str, check: str, subject: str = "", *, hint: str = "",
            service: ServiceRef | None = None, evidence: Mapping[str, object] | None = None,
            magnitude: float = 0.0, resource: ConfigResource | None = None, at: str = "",
            services: Iterable[ServiceRef] = (), related: Iterable[str] = (),
            workloads: Iterable[WorkloadRef] = (), located: SourceLocation | None = None,
            **fields: object) -> Finding:
    """Build a Finding; fails fast if the template's fields are not all supplied.

    A template field named ``service`` is filled from ``service=`` (the keyword is taken), else
    from the first of ``services=``.
    ``resource=`` names the configuration resource the finding is on: the subject defaults to
    ``"Kind namespace/name"`` and, when the resource came from a manifest, the finding carries
    its file and the line of the field ``at`` (``"spec.http[0].route[1].destination.subset"``).
    ``services=`` lists the services an analyzer's finding touches. ``related=`` names the
    configuration resources a symptom's requests went through (subjects, ``"Kind ns/name"``).
    ``workloads=`` the workloads whose proxies it is about (configuration delivery: see
    ``meshobs.engine.delivery``). ``located=`` gives the location of a topology object (a
    Service, a workload's manifest) the finding is on, when it is not a ``resource``.
    """
    services = tuple(dict.fromkeys(services))
    subject_service = service if service is not None else (services[0] if services else None)
    if subject_service is not None and "service" in CATALOGUE[code].fields:
        fields["service"] = str(subject_service)
    CATALOGUE[code].render(fields)
    if resource is not None and not subject:
        subject = f"{resource.kind} {resource.namespace}/{resource.name}"
    if not subject:
        raise ValueError(f"{code}: a finding needs a subject (or resource=)")
    where = resource.location if resource is not None else located
    return Finding(code=code, check=check, subject=subject, fields=frozen_map(fields),
                   evidence=frozen_map(evidence or {}), hint=hint, service=service,
                   magnitude=float(magnitude), services=services, related=tuple(dict.fromkeys(related)),
                   workloads=tuple(dict.fromkeys(workloads)),
                   file=where.file if where else "", line=where.line_of(at) if where else 0)


class CouldNotCheck(Exception):  # Linkerd's SkipError: a verdict, not a failure
    """Raised by a check that cannot judge at run time, with the reason a person reads:
    ``raise CouldNotCheck("3 requests in the 5m window, need 100")``.

    The engine records the check as skipped ("could not check: ...") and never as passed; when
    no check of a diagnosis could judge anything, the status is ``unknown`` (exit 3). Findings
    yielded before the raise still count.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


T = TypeVar("T")

CheckFn = Callable[[MeshSnapshot, ServiceRef, Settings], Iterable[Finding]]
# An analyzer may also take ``focus`` (a keyword, :class:`meshobs.checks.scope.Focus` or None):
# then a question about one service has it judge only what can touch that question's services.
AnalyzerFn = Callable[..., Iterable[Finding]]

# The inputs a service check may need, as meshobs.engine.inputs names them (kept equal by a
# test; the engine imports the checks, not the other way round). The edges' data comes in four
# kinds because sources deliver them separately: the graph (who calls whom, call counts),
# request rates by response code, latency, and connection security.
INPUTS = ("pods", "graph", "requests", "latency", "security", "proxies", "config", "certs", "traces",
          "control_plane", "history")
# What an analyzer may read besides configuration kinds: the topology, always present in the
# model (possibly empty; see meshobs.checks.inventory for what the input can vouch for).
TOPOLOGY_KINDS = ("Service", "Workload", "Pod")


@functools.cache  # asked for every checklist line: 70 checks x 5,000 services in a --all
def _doc_line(fn: Callable[..., object]) -> str:
    """The docstring's first paragraph on one line: what the check judges."""
    return " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())


def _validate(kind: str, id: str, codes: tuple[str, ...]) -> None:
    for c in codes:
        if c not in CATALOGUE:
            raise ValueError(f"{kind} {id} names unknown code {c}")


@dataclass(frozen=True)
class Check:
    """A service check. Call it like the function it wraps."""

    kind: ClassVar[str] = "check"
    id: str
    category: Category
    # inputs, all required: keys of meshobs.engine.inputs.INPUTS ("pods", "graph", "requests",
    # "latency", "security", "proxies", "config", "certs", "traces"); "pods|proxies" means
    # either one will do.
    needs: tuple[str, ...]
    codes: tuple[str, ...]  # the codes it may emit
    run: CheckFn = field(repr=False)
    # The only mesh whose services it can judge (None: any). Its checklist line on a service of
    # another mesh says why it did not run (meshobs.checks.scope).
    mesh: Mesh | None = None
    # Meshes whose sources do not carry the signal it reads -> why, for "could not check".
    blind_on: FrozenDict = EMPTY
    # Inputs it reads when present (evidence, a second way to find something) but can judge
    # without: their absence does not skip it.
    uses: tuple[str, ...] = ()
    # It judges what the service's callers see of it (their requests' latency, their proxies'
    # view of its endpoints): nothing to judge for an ingress gateway, whose callers are outside
    # the mesh, or a waypoint, whose traffic is reported as the services' it serves.
    callers: bool = False

    def __call__(self, snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
        return self.run(snapshot, service, settings)

    @property
    def doc(self) -> str:
        return _doc_line(self.run)

    @property
    def requires(self) -> str:
        """What it needs, as ``meshobs checks`` shows it (optional inputs in brackets)."""
        return ", ".join([*self.needs, *(f"[{u}]" for u in self.uses)]) or "-"


@dataclass(frozen=True)
class Analyzer:
    """A configuration analyzer. Call it like the function it wraps."""

    kind: ClassVar[str] = "analyzer"
    id: str
    category: Category
    reads: tuple[str, ...]  # resource kinds: "VirtualService", "ServiceEntry", "Service", "Pod" ...
    codes: tuple[str, ...]
    run: AnalyzerFn = field(repr=False)
    mesh: Mesh | None = None  # the mesh whose configuration it reads (None: any)
    # The inputs it cannot judge without: configuration, or for the control plane's analyzers
    # the control-plane data.
    inputs: tuple[str, ...] = ("config",)
    # Its function takes ``focus``: given one, it yields every finding of its whole run that
    # touches a service of the focus (more is allowed, never a finding the whole run lacks), in
    # the whole run's order, and raises CouldNotCheck exactly when the whole run would (before
    # finding anything). Its findings touching no service (mesh-level) are then incomplete.
    focusable: bool = False

    def __call__(self, snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterable[Finding]:
        return self.run(snapshot, settings, focus=focus) if self.focusable else self.run(snapshot, settings)

    @property
    def blind_on(self) -> FrozenDict:
        """Analyzers read configuration, which every mesh's sources carry."""
        return EMPTY

    @property
    def needs(self) -> tuple[str, ...]:
        """Analyzers judge configuration: they need a configuration source, nothing else (what
        they read of the topology is judged only where the input holds it); the control plane's
        analyzers need control-plane data instead."""
        return self.inputs

    @property
    def doc(self) -> str:
        return _doc_line(self.run)

    @property
    def requires(self) -> str:
        return ", ".join(self.reads)


AnyCheck = Check | Analyzer


def check(id: str, category: Category, needs: tuple[str, ...], codes: tuple[str, ...], *,
          mesh: Mesh | None = None, blind_on: Mapping[Mesh, str] | None = None, uses: tuple[str, ...] = (),
          callers: bool = False) -> Callable[[CheckFn], Check]:
    """Declare a service check under a stable id; list it in ``registry.ALL`` to run it."""
    _validate("check", id, codes)
    for need in (*needs, *uses):
        unknown = set(need.split("|")) - set(INPUTS)
        if unknown:
            raise ValueError(f"check {id} needs unknown input(s) {', '.join(sorted(unknown))}")

    def declare(fn: CheckFn) -> Check:
        return Check(id=id, category=category, needs=needs, codes=codes, run=fn, mesh=mesh,
                     blind_on=frozen_map({str(m): why for m, why in (blind_on or {}).items()}), uses=uses,
                     callers=callers)

    return declare


def analyzer(id: str, category: Category, reads: tuple[str, ...], codes: tuple[str, ...], *,
             mesh: Mesh | None = None, needs: tuple[str, ...] = ("config",)) -> Callable[[AnalyzerFn], Analyzer]:
    """Declare an analyzer under a stable id; list it in ``registry.ALL`` to run it. ``needs``:
    the inputs without which it is skipped (configuration; ``control_plane`` for istiod's)."""
    _validate("analyzer", id, codes)
    if not reads:
        raise ValueError(f"analyzer {id} must declare the resource kinds it reads")
    for need in needs:
        if set(need.split("|")) - set(INPUTS):
            raise ValueError(f"analyzer {id} needs unknown input {need}")

    def declare(fn: AnalyzerFn) -> Analyzer:
        focusable = "focus" in inspect.signature(fn).parameters
        if focusable and (delivery := [c for c in codes if "config" in CATALOGUE[c].causes]):
            # A configuration-delivery cause touching no service concerns every proxy: a focused
            # run, which leaves such findings out, would lose it (meshobs.engine.delivery).
            raise ValueError(f"analyzer {id} takes a focus but emits {', '.join(delivery)}, which explain "
                             "configuration delivery mesh-wide")
        return Analyzer(id=id, category=category, reads=reads, codes=codes, run=fn, mesh=mesh, inputs=needs,
                        focusable=focusable)

    return declare


def memo(snapshot: MeshSnapshot, key: str, build: Callable[[MeshSnapshot], T]) -> T:
    """An index derived from ``snapshot`` alone, built once per snapshot and shared by checks.

    Checks stay pure (the value depends only on the snapshot); this only avoids rebuilding
    mesh-wide indexes once per service when ``--all`` diagnoses thousands of services. The cache
    lives on the snapshot itself, so it goes when the snapshot goes and is never shared.
    """
    return snapshot.derived(key, build)


def now_of(snapshot: MeshSnapshot) -> datetime:
    """Checks judge time against the snapshot's evaluation time, never the wall clock."""
    return snapshot.time
