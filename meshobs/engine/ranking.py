"""Root-cause ranking across the service graph: the walk down the failing path.

Findings are either *symptoms* (errors or latency that callers see: MSH0401/0402/0408,
MSH0403/0404...) or *causes* (a proxy not ready, endpoints ejected, a policy that denies, a
service slower than its callers' timeout...); each code declares which in the catalogue
(``Code.symptom`` / ``Code.effects``), and a cause may carry a *deadline* (``Code.deadline``:
a certificate that expires in hours).

**The walk.** From the diagnosed service it follows its calls down, hop by hop, for as long as
the hop carries evidence of the kind of failure being followed (``hop_shows(caller, callee,
kind)``: errors in either proxy's view, timeouts, latency share) -- any number of hops, each
service once -- and stops where the evidence ends. A symptom of service X is explained by

- the causes found on X itself (for an edge symptom X -> Y: those that name Y),
- the findings about the configuration resources its requests went through (``Finding.related``,
  e.g. the VirtualService that claims the host an ingress has no route for),
- and what explains the same kind of symptom on the callee the evidence leads to: its causes,
  or, recursively, what explains *its* symptoms; when nothing further down explains the callee's
  symptom, that symptom is where the failure starts (the callee fails, or is slow, on its own).

A cause whose code declares a *signature* (the status codes and Envoy flags of the requests it
breaks: 403 for an AuthorizationPolicy, UH for a subset without pods) is matched against how the
symptom's requests actually failed, at every hop of the walk: on the symptom itself for a cause
on its own service or on a resource its requests went through, on the calls over the hop for a
cause on a callee (an edge symptom's own breakdown when the hop has none). When those failures
are known and none carries the signature, the cause does not explain the symptom (and the walk
goes on below it, as if it were not there); when they do, the share that does ranks it. So the
misconfiguration the traffic points at comes before a cause that merely could explain errors.

A "routing" symptom (traffic split otherwise than configured) stays with its own service: it is
explained by what shapes that service's routes, never by a callee's.

Causes on the failing path are reported even when the diagnosed service shows no symptom above
its thresholds (retries hiding a callee's errors), and findings with a deadline anywhere
downstream are always reported: everything calling through them will fail (the engine looks for
them at any depth, running only the checks that can find one beyond the walk).

**The order.** Every finding gets an *effective severity*: its own, raised to that of the worst
symptom it explains (a warning-level cause of an error outranks the error); a deadline counts as
an error. Ranks then go by effective severity, then findings nobody explains before those they
explain, then current faults before deadlines, then the share of the explained failures that
carry the cause's signature, then depth on the path (deeper, i.e. further downstream, first),
then magnitude. Several independent faults are each ranked on their own.

Time is evidence too: among findings of the same effective severity that are equally explained,
equally current (no deadline-only finding moves) and matched by the failures' signatures, those
whose trouble is known to have begun earlier (their evidence names when: an onset in the metric
history, the change before it; :mod:`meshobs.engine.onsets`) rank before the later ones, in the
places such findings held; findings with no known start keep their places. A signature the
traffic carries is direct evidence; a start time only orders what is otherwise equal.

``rank`` is pure: the engine (``meshobs.engine``) supplies the findings per service, the call
graph, the hop evidence and how each hop's calls failed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from meshobs.callgraph import MAX_DEPTH as MAX_DEPTH
from meshobs.callgraph import downstream as downstream
from meshobs.callgraph import nearest as nearest
from meshobs.catalogue import CALL_GRAPH_KINDS, CATALOGUE, Severity
from meshobs.checks.base import Finding
from meshobs.model import ResponseStat, ServiceRef, WorkloadRef

from .delivery import links as delivery_links
from .onsets import began

# Symptoms a service does not pass on to its callers: traffic split differently from a
# service's weights is that service's routing, explained by what shapes its routes, never by a
# callee's.
LOCAL_KINDS = frozenset({"routing"})

# hop_shows(caller, callee, kind) -> True (the hop shows that kind of failure), None (no data to
# tell: not ruled out) or False (the hop is clean).
HopShows = Callable[[ServiceRef, ServiceRef, str], "bool | None"]


def symptom_kind(f: Finding) -> str | None:
    """"errors" or "latency" when the finding is a symptom callers see (its code says so)."""
    return CATALOGUE[f.code].symptom


def effects(f: Finding) -> frozenset[str]:
    """What kind of symptom a cause finding can produce upstream (empty for symptoms, info and
    internal findings); declared on the finding's code."""
    return CATALOGUE[f.code].causes


@dataclass(frozen=True)
class Failures:
    """How failing requests ended: requests per second by HTTP status code and by Envoy
    response flag (``-``: none), out of ``total``. A map is empty when the source does not say
    (CloudWatch reports code classes, no flags): unknown, not "none of them"."""

    total: float
    by_code: Mapping[str, float] = field(default_factory=dict)
    by_flag: Mapping[str, float] = field(default_factory=dict)


# hop_failures(caller, callee): how the calls over that hop failed (None: no such calls, or the
# source does not say).
HopFailures = Callable[[ServiceRef, ServiceRef], "Failures | None"]


def symptom_failures(f: Finding) -> Failures | None:
    """The failures an error symptom's evidence breaks down (``by_code``, ``by_flag``). A code is
    read as the model names outcomes (:meth:`ResponseStat.of_outcome`): a gRPC call failed inside
    an HTTP 200 (``200 grpc-status 14 UNAVAILABLE``) counts as its HTTP equivalent (503), as the
    calls over a hop do (:func:`meshobs.engine.evidence.hop_failures`)."""
    evidence = f.evidence
    codes = evidence.get("by_code")
    flags = evidence.get("by_flag")
    by_code: dict[str, float] = {}
    for k, v in (codes.items() if isinstance(codes, Mapping) else ()):
        if (calls := ResponseStat.of_outcome(str(k))) is not None:
            code = calls.http_equivalent
            by_code[code] = by_code.get(code, 0.0) + float(v)
    by_flag: dict[str, float] = {}
    for k, v in (flags.items() if isinstance(flags, Mapping) else ()):
        rate = v.get("rps") if isinstance(v, Mapping) else v
        if str(k) != "n/a" and isinstance(rate, int | float):
            by_flag[str(k)] = float(rate)
    total = evidence.get("error_rps")
    total = float(total) if isinstance(total, int | float) else sum(by_code.values())
    return Failures(total, by_code, by_flag) if total > 0 and (by_code or by_flag) else None


def signature_share(f: Finding, failures: Failures | None) -> float | None:
    """The share of ``failures`` carrying the cause's signature (0: none of them, although
    how they failed is known), or None when it cannot be told (no signature, no breakdown)."""
    signature = CATALOGUE[f.code].signature
    if not signature or failures is None or failures.total <= 0:
        return None
    shares = []
    codes = [t for t in signature if t.isdigit()]
    flags = [t for t in signature if not t.isdigit()]
    if codes and failures.by_code:
        shares.append(sum(failures.by_code.get(c, 0.0) for c in codes) / failures.total)
    if flags and failures.by_flag:
        shares.append(sum(failures.by_flag.get(fl, 0.0) for fl in flags) / failures.total)
    return min(1.0, max(shares)) if shares else None


def passes_on(f: Finding) -> str | None:
    """The kind of failure below that may explain this cause (``Code.passes_on``)."""
    return CATALOGUE[f.code].passes_on


def has_deadline(f: Finding) -> bool:
    """A cause that has not failed yet but will (a certificate running out)."""
    return CATALOGUE[f.code].deadline and CATALOGUE[f.code].severity is not Severity.INFO


def _key(f: Finding) -> str:
    """A finding's identity: code and subject, plus its fields, because one resource can carry
    two findings of one code (a VirtualService routing to two undefined subsets)."""
    return f"{_label(f)}\x00{f.identity[2]}"


def _label(f: Finding) -> str:
    return f"{f.code} {f.subject}"


def _labels(keys: Iterable[str]) -> tuple[str, ...]:
    """How causal links are shown: "MSH0406 Service shop/database-service"."""
    return tuple(sorted({k.split("\x00", 1)[0] for k in keys}))


class _Walk:
    """One diagnosis's walk: which findings explain which, and what the report includes."""

    def __init__(self, by_service: Mapping[ServiceRef, list[Finding]], depth: Mapping[ServiceRef, int],
                 callees: Callable[[ServiceRef], list[ServiceRef]], hop_shows: HopShows,
                 related: Callable[[str], list[Finding]], hop_failures: HopFailures) -> None:
        self.by_service, self.depth, self.callees = by_service, depth, callees
        self.hop_shows, self.related, self.hop_failures = hop_shows, related, hop_failures
        self._roles: dict[ServiceRef, tuple[list[Finding], dict[str, list[Finding]]]] = {}
        self.explains: dict[str, set[str]] = {}  # cause key -> symptom keys
        self.explained_by: dict[str, set[str]] = {}
        self.included: dict[str, Finding] = {}
        self.matched: dict[str, float] = {}  # cause key -> the largest share of failures it matches
        self._memo: dict[tuple[str, ServiceRef, bool], frozenset[str]] = {}
        self._busy: set[tuple[str, ServiceRef]] = set()

    def _of(self, svc: ServiceRef) -> tuple[list[Finding], dict[str, list[Finding]]]:
        """(causes, symptoms by kind) of a service, sorted out when the walk first gets there."""
        if svc not in self._roles:
            causes: list[Finding] = []
            symptoms: dict[str, list[Finding]] = {}
            for f in self.by_service.get(svc, ()):
                if (kind := symptom_kind(f)) is not None:
                    symptoms.setdefault(kind, []).append(f)
                elif effects(f):
                    causes.append(f)
            self._roles[svc] = (causes, symptoms)
        return self._roles[svc]

    def causes(self, svc: ServiceRef, kind: str) -> list[Finding]:
        return [c for c in self._of(svc)[0] if kind in effects(c)]

    def symptoms(self, svc: ServiceRef, kind: str) -> list[Finding]:
        return self._of(svc)[1].get(kind, [])

    def include(self, f: Finding) -> str:
        k = _key(f)
        if k not in self.included:
            self.included[k] = f
            if (kind := passes_on(f)) is not None and f.service is not None:
                # Callers time out on it, but it may only be waiting on its own callee: what
                # the evidence leads to below explains it.
                below: set[str] = set()
                for callee in self.callees(f.service):
                    if self.hop(f.service, callee, kind):
                        below |= self.through(f.service, callee, kind)
                self.link(f, below)
        return k

    def take(self, cause: Finding, failures: Failures | None) -> str | None:
        """Include ``cause`` as an explanation of ``failures`` (how the explained requests
        failed, None: not known) unless they rule it out: known, and none carries its
        signature. Its key, or None when ruled out."""
        share = signature_share(cause, failures)
        if share == 0.0:
            return None
        k = self.include(cause)
        self.matched[k] = max(self.matched.get(k, 0.0), share or 0.0)
        return k

    def link(self, symptom: Finding, causes: Iterable[str]) -> None:
        """``causes`` explain ``symptom`` (a symptom, or a cause that passes a failure on)."""
        s = _key(symptom)
        for c in causes:
            if c != s:
                self.explained_by.setdefault(s, set()).add(c)
                self.explains.setdefault(c, set()).add(s)

    def hop(self, caller: ServiceRef, callee: ServiceRef, kind: str) -> bool | None:
        if callee not in self.depth or callee == caller:
            return False
        return self.hop_shows(caller, callee, kind)

    def explain(self, symptom: Finding, at: ServiceRef, kind: str) -> set[str]:
        """Keys of the findings explaining ``symptom`` (a ``kind`` symptom seen at ``at``)."""
        dest = _edge_destination(symptom)
        # How the symptom's own requests failed: what a cause on its service, or on a resource
        # its requests went through, must look like; a cause about the service's calls to one
        # callee (a policy refusing them) must look like how those calls failed.
        own = symptom_failures(symptom) if kind == "errors" else None
        found: set[str] = set()
        for c in self.causes(at, kind):
            named = _destination(c)
            if c is symptom or (dest is not None and named != dest):
                continue
            failures = own
            if named is not None and kind == "errors":
                failures = self.hop_failures(at, named) or (own if named == dest else None)
            if (k := self.take(c, failures)) is not None:
                found.add(k)
        for subject in symptom.related:
            for c in self.related(subject):
                if kind in effects(c) and (k := self.take(c, own)) is not None:
                    found.add(k)
        if kind not in LOCAL_KINDS:
            for callee in ([dest] if dest is not None else self.callees(at)):
                if self.hop(at, callee, kind) is not False:
                    # An edge symptom's own breakdown is that hop's, when the hop has none.
                    found |= self.through(at, callee, kind, own if dest is not None else None)
        found.discard(_key(symptom))
        self.link(symptom, found)
        return found

    def through(self, caller: ServiceRef, callee: ServiceRef, kind: str,
                fallback: Failures | None = None) -> frozenset[str]:
        """What explains a ``kind`` failure ``caller`` sees when calling ``callee``: the
        callee's causes that how the calls failed does not rule out (``fallback``: the failures
        to match when the hop's own are not known), and its own symptoms with what explains
        them (or themselves, where nothing does)."""
        failures = (self.hop_failures(caller, callee) or fallback) if kind == "errors" else None
        taken = {k for c in self.causes(callee, kind) if (k := self.take(c, failures)) is not None}
        return frozenset(taken) | self._below(callee, kind, onward=not taken)

    def _below(self, callee: ServiceRef, kind: str, onward: bool) -> frozenset[str]:
        """The callee's own ``kind`` symptoms and what explains them; with ``onward`` (no cause
        taken there), where it shows none, what the evidence leads to below it."""
        key = (kind, callee, onward)
        if key in self._memo:
            return self._memo[key]
        if (kind, callee) in self._busy:  # a cycle in the call graph: this branch adds nothing new
            return frozenset()
        self._busy.add((kind, callee))
        found: set[str] = set()
        for s in self.symptoms(callee, kind):
            self.include(s)
            deeper = self.explain(s, callee, kind)
            found |= deeper or {_key(s)}
        if not found and onward:
            # No finding here, but the evidence may go on below (a hop without a symptom of its
            # own passing a failure through): keep following it.
            for c in self.callees(callee):
                if self.hop(callee, c, kind):
                    found |= self.through(callee, c, kind)
        self._busy.discard((kind, callee))
        self._memo[key] = frozenset(found)
        return self._memo[key]

    def along_the_path(self, target: ServiceRef, kind: str) -> None:
        """Causes on the services the evidence leads to from the target, linked or not."""
        seen = {target}
        queue = deque([target])
        while queue:
            s = queue.popleft()
            for c in self.callees(s):
                if c not in seen and self.hop(s, c, kind):
                    seen.add(c)
                    queue.append(c)
                    self.through(s, c, kind)


def rank(target: ServiceRef, by_service: Mapping[ServiceRef, list[Finding]],
         depth: Mapping[ServiceRef, int],
         callees: Callable[[ServiceRef], list[ServiceRef]],
         hop_shows: HopShows = lambda _x, _c, _k: True,
         unjudged: frozenset[str] = frozenset(),
         related: Callable[[str], list[Finding]] = lambda _subject: [],
         hop_failures: HopFailures = lambda _x, _c: None,
         mesh_causes: Sequence[Finding] = (),
         delivery_candidates: Callable[[Finding], Iterable[Finding]] = lambda _f: (),
         target_workloads: frozenset[WorkloadRef] = frozenset(),
         ) -> list[Finding]:
    """The target's findings plus the downstream findings that explain them, ranked 1..n.

    ``by_service``: the findings of the target and of the services downstream (``depth``: their
    hop count from the target). ``hop_shows(x, c, kind)`` says whether the calls from x to c
    show that kind of failure (True), are clean (False) or cannot tell (None); a clean hop
    cannot pass a failure up. ``unjudged`` are the symptom kinds the target could not be checked
    for (their data is missing, e.g. Prometheus is down): no symptom can then rule anything out,
    so every cause of that kind downstream is reported too (unlinked), instead of vanishing with
    the symptom. ``related(subject)`` returns the findings about a configuration resource (by
    subject, ``"VirtualService ns/name"``), whichever service they were filed under.
    ``hop_failures(x, c)`` says how the calls from x to c failed (status codes, flags), to match
    the causes found on c against (see ``signature_share``).
    Configuration delivery (the "config" kind) is linked by proxies, not by the call graph
    (:mod:`.delivery`): ``mesh_causes`` are the mesh-level findings (the control plane),
    ``delivery_candidates(f)`` the findings about the workloads ``f`` concerns, wherever they
    are filed, and ``target_workloads`` the target's own (whose drifted routes are filed under
    the service they route to).
    """
    if not any(by_service.values()):
        # Nothing found on the target nor below it: nothing to include, explain or link (every
        # finding the walk takes comes from ``by_service``, a delivery link pairs two of them).
        # Most services of a big mesh (3,087 of 4,973 in the generated 5,000-service one).
        return []
    walk = _Walk(by_service, depth, callees, hop_shows, related, hop_failures)
    own = list(by_service.get(target, []))
    for f in own:
        walk.include(f)
    for f in own:
        if (kind := symptom_kind(f)) is not None and (kind in CALL_GRAPH_KINDS or kind in LOCAL_KINDS):
            walk.explain(f, target, kind)
    for kind in CALL_GRAPH_KINDS:
        walk.along_the_path(target, kind)

    pool = dict(walk.included)
    pool.update({_key(f): f for fs in by_service.values() for f in fs if set(f.workloads) & target_workloads})
    for cause, f in delivery_links(pool.values(), mesh_causes, delivery_candidates):
        walk.include(f)
        walk.link(f, {walk.include(cause)})

    walked = unjudged & set(CALL_GRAPH_KINDS)
    for svc in depth:
        for f in by_service.get(svc, []):
            if has_deadline(f) or (effects(f) & walked):
                walk.include(f)

    everything = walk.included

    def effective(k: str) -> int:
        f = everything[k]
        own_weight = max(f.severity.weight, Severity.ERROR.weight if has_deadline(f) else 0)
        return max([own_weight] + [everything[s].severity.weight
                                   for s in _closure(k, walk.explains) if s in everything])

    def sort_key(k: str) -> tuple[int, int, int, float, int, float, str]:
        f = everything[k]
        d = depth.get(f.service, 0) if f.service is not None else 0
        deadline_only = 1 if has_deadline(f) and not walk.explains.get(k) else 0
        return (-effective(k), 1 if walk.explained_by.get(k) else 0, deadline_only, -walk.matched.get(k, 0.0),
                -d, -f.magnitude, _label(f))

    # The block: effective severity, explained or not, deadline only, signature share.
    ordered = _earliest_first(sorted(everything, key=sort_key), lambda k: sort_key(k)[:4],
                              lambda k: began(everything[k]))
    ranked: list[Finding] = []
    for n, k in enumerate(ordered, start=1):
        f = everything[k]
        ranked.append(replace(f, rank=n, cause_of=_labels(walk.explains.get(k, ())),
                              caused_by=_labels(walk.explained_by.get(k, ()))))
    return ranked


def _earliest_first(keys: list[str], block: Callable[[str], object],
                    start: Callable[[str], float | None]) -> list[str]:
    """Within each run of keys in the same ``block`` (same effective severity, equally
    explained, equally matched by a signature), the ones with a known ``start`` reordered
    earliest first, in the slots they held."""
    out = list(keys)
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and block(out[j]) == block(out[i]):
            j += 1
        slots = [n for n in range(i, j) if start(out[n]) is not None]
        dated = sorted((out[n] for n in slots), key=lambda k: start(k) or 0.0)
        for n, k in zip(slots, dated):
            out[n] = k
        i = j
    return out


def _closure(k: str, graph: Mapping[str, set[str]]) -> set[str]:
    out: set[str] = set()
    stack = [k]
    while stack:
        for n in graph.get(stack.pop(), ()):
            if n not in out:
                out.add(n)
                stack.append(n)
    return out


def _edge_destination(f: Finding) -> ServiceRef | None:
    """For an edge symptom (X -> Y, its evidence names the ``destination``), the one callee
    that can explain it."""
    dest = f.evidence.get("destination") if symptom_kind(f) is not None else None
    return ServiceRef.parse(str(dest)) if dest else None


def _destination(cause: Finding) -> ServiceRef | None:
    """The callee a cause on the caller is about, when it concerns the calls to one (it names it
    as its ``destination`` evidence: a policy blocking those calls, the caller's route to it)."""
    named = cause.evidence.get("destination")
    return ServiceRef.parse(str(named)) if named else None
