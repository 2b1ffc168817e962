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

Causes on the failing path are reported even when the diagnosed service shows no symptom above
its thresholds (retries hiding a callee's errors), and findings with a deadline anywhere
downstream are always reported: everything calling through them will fail (the engine looks for
them at any depth, running only the checks that can find one beyond the walk).

**The order.** Every finding gets an *effective severity*: its own, raised to that of the worst
symptom it explains (a warning-level cause of an error outranks the error); a deadline counts as
an error. Ranks then go by effective severity, then findings nobody explains before those they
explain, then current faults before deadlines, then depth on the path (deeper, i.e. further
downstream, first), then magnitude. Several independent faults are each ranked on their own.

``rank`` is pure: the engine (``meshobs.engine``) supplies the findings per service, the call
graph and the hop evidence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from meshobs.catalogue import CALL_GRAPH_KINDS, CATALOGUE, Severity
from meshobs.checks.base import Finding
from meshobs.model import ServiceRef, WorkloadRef

from .delivery import links as delivery_links

# How far every downstream service is looked at (its causes, deadlines), whatever the evidence;
# beyond it the walk goes on only through hops that carry evidence (``downstream(follow=...)``).
MAX_DEPTH = 3

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


def passes_on(f: Finding) -> str | None:
    """The kind of failure below that may explain this cause (``Code.passes_on``)."""
    return CATALOGUE[f.code].passes_on


def has_deadline(f: Finding) -> bool:
    """A cause that has not failed yet but will (a certificate running out)."""
    return CATALOGUE[f.code].deadline and CATALOGUE[f.code].severity is not Severity.INFO


def downstream(target: ServiceRef, callees: Callable[[ServiceRef], list[ServiceRef]],
               max_depth: int | None = MAX_DEPTH,
               follow: Callable[[ServiceRef, ServiceRef], bool] | None = None) -> dict[ServiceRef, int]:
    """Services reachable from ``target`` through calls, with their shortest hop count.

    Every service within ``max_depth`` hops (None: no limit); beyond it, only through hops that
    ``follow(caller, callee)`` says carry evidence of a failure, however deep.
    """
    depth = {target: 0}
    queue = deque([target])
    while queue:
        s = queue.popleft()
        beyond = max_depth is not None and depth[s] >= max_depth
        if beyond and follow is None:
            continue
        for c in callees(s):
            if c not in depth and (not beyond or (follow is not None and follow(s, c))):
                depth[c] = depth[s] + 1
                queue.append(c)
    return depth


def nearest(sources: Iterable[ServiceRef], neighbours: Callable[[ServiceRef], list[ServiceRef]]
            ) -> dict[ServiceRef, tuple[int, ServiceRef]]:
    """Every service reachable from any of ``sources`` through ``neighbours``, with its hop
    count to the nearest source and that source (the first in order on a tie): one walk for
    them all, however many sources there are."""
    found = {s: (0, s) for s in sources}
    queue = deque(found)
    while queue:
        s = queue.popleft()
        d, origin = found[s]
        for n in neighbours(s):
            if n not in found:
                found[n] = (d + 1, origin)
                queue.append(n)
    return found


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
                 related: Callable[[str], list[Finding]]) -> None:
        self.by_service, self.depth, self.callees = by_service, depth, callees
        self.hop_shows, self.related = hop_shows, related
        self._roles: dict[ServiceRef, tuple[list[Finding], dict[str, list[Finding]]]] = {}
        self.explains: dict[str, set[str]] = {}  # cause key -> symptom keys
        self.explained_by: dict[str, set[str]] = {}
        self.included: dict[str, Finding] = {}
        self._memo: dict[tuple[str, ServiceRef], frozenset[str]] = {}
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
                        below |= self.through(callee, kind)
                self.link(f, below)
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
        found: set[str] = set()
        dest = _edge_destination(symptom)
        for c in self.causes(at, kind):
            if c is not symptom and (dest is None or _names(c, dest)):
                found.add(self.include(c))
        for subject in symptom.related:
            for c in self.related(subject):
                if kind in effects(c):
                    found.add(self.include(c))
        for callee in ([dest] if dest is not None else self.callees(at)):
            if self.hop(at, callee, kind) is not False:
                found |= self.through(callee, kind)
        found.discard(_key(symptom))
        self.link(symptom, found)
        return found

    def through(self, callee: ServiceRef, kind: str) -> frozenset[str]:
        """What explains a ``kind`` failure its callers see when calling ``callee``: its causes,
        and its own symptoms with what explains them (or themselves, where nothing does)."""
        key = (kind, callee)
        if key in self._memo:
            return self._memo[key]
        if key in self._busy:  # a cycle in the call graph: this branch adds nothing new
            return frozenset()
        self._busy.add(key)
        found: set[str] = {self.include(c) for c in self.causes(callee, kind)}
        for s in self.symptoms(callee, kind):
            self.include(s)
            deeper = self.explain(s, callee, kind)
            found |= deeper or {_key(s)}
        if not found:
            # No finding here, but the evidence may go on below (a hop without a symptom of its
            # own passing a failure through): keep following it.
            for c in self.callees(callee):
                if self.hop(callee, c, kind):
                    found |= self.through(c, kind)
        self._busy.discard(key)
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
                    self.through(c, kind)


def rank(target: ServiceRef, by_service: Mapping[ServiceRef, list[Finding]],
         depth: Mapping[ServiceRef, int],
         callees: Callable[[ServiceRef], list[ServiceRef]],
         hop_shows: HopShows = lambda _x, _c, _k: True,
         unjudged: frozenset[str] = frozenset(),
         related: Callable[[str], list[Finding]] = lambda _subject: [],
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
    Configuration delivery (the "config" kind) is linked by proxies, not by the call graph
    (:mod:`.delivery`): ``mesh_causes`` are the mesh-level findings (the control plane),
    ``delivery_candidates(f)`` the findings about the workloads ``f`` concerns, wherever they
    are filed, and ``target_workloads`` the target's own (whose drifted routes are filed under
    the service they route to).
    """
    walk = _Walk(by_service, depth, callees, hop_shows, related)
    own = list(by_service.get(target, []))
    for f in own:
        walk.include(f)
    for f in own:
        if (kind := symptom_kind(f)) in CALL_GRAPH_KINDS:
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

    def sort_key(k: str) -> tuple[int, int, int, int, float, str]:
        f = everything[k]
        d = depth.get(f.service, 0) if f.service is not None else 0
        deadline_only = 1 if has_deadline(f) and not walk.explains.get(k) else 0
        return (-effective(k), 1 if walk.explained_by.get(k) else 0, deadline_only, -d, -f.magnitude, _label(f))

    ranked: list[Finding] = []
    for n, k in enumerate(sorted(everything, key=sort_key), start=1):
        f = everything[k]
        ranked.append(replace(f, rank=n, cause_of=_labels(walk.explains.get(k, ())),
                              caused_by=_labels(walk.explained_by.get(k, ()))))
    return ranked


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


def _names(cause: Finding, destination: ServiceRef) -> bool:
    """Does a cause on the caller concern its calls to ``destination``? (It names it as its
    ``destination`` evidence: a policy blocking those calls, the caller's route to it.)"""
    named = cause.evidence.get("destination")
    return named is not None and str(named) == str(destination)
