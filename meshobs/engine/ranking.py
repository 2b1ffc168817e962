"""Root-cause ranking across the service graph.

Findings are either *symptoms* (errors or latency that callers see: MSH0401/0402/0408,
MSH0403/0404) or *causes* (a proxy not ready, endpoints ejected, a subset selecting no pods, an
expired certificate, a slow hop...); each code declares which in the catalogue
(``Code.symptom`` / ``Code.effects``). A symptom of service X is explained by

- the causes found on X itself, and
- the causes found on a callee C of X (for an edge symptom X -> Y, only on Y), and, when C
  shows the same kind of symptom, recursively by what explains C's symptom (bounded depth);
  when nothing explains C's symptom, C's symptom itself is the explanation (C fails or is
  slow on its own).

A cause whose code declares a *signature* (the status codes and Envoy flags of the requests it
breaks: 403 for an AuthorizationPolicy, UH for a subset without pods) is matched against how the
symptom's requests actually failed: on the symptom itself for a cause on its own service, on
the calls over the hop for a cause on a callee. When those failures are known and none carries
the signature, the cause does not explain the symptom; when they do, the share that does ranks
it. So the misconfiguration the traffic points at comes before a cause that merely could
explain errors.

Every finding gets an *effective severity*: its own, raised to that of the worst symptom it
explains, so a warning-level cause of an error outranks the error. Ranks then go by effective
severity, then explained findings after the findings that explain them, then the share of the
explained failures that carry the cause's signature, then causal depth (deeper, i.e. further
downstream, first), then magnitude.

Time is evidence too: among findings of the same effective severity that are equally explained
and matched by the failures' signatures, those whose trouble is known to have begun earlier
(their evidence names when: an onset in the metric history, the change before it;
:mod:`meshobs.engine.onsets`) rank before the later ones, in the places such findings held;
findings with no known start keep their places. A signature the traffic carries is direct
evidence; a start time only orders what is otherwise equal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from meshobs.catalogue import CALL_GRAPH_KINDS, CATALOGUE
from meshobs.checks.base import Finding
from meshobs.model import ServiceRef, WorkloadRef

from .delivery import links as delivery_links
from .onsets import began

MAX_DEPTH = 3
# Symptoms a service does not pass on to its callers: traffic split differently from a
# service's weights is that service's routing, explained by what shapes its routes, never by a
# callee's.
LOCAL_KINDS = frozenset({"routing"})


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


def symptom_failures(f: Finding) -> Failures | None:
    """The failures an error symptom's evidence breaks down (``by_code``, ``by_flag``)."""
    evidence = f.evidence
    codes = evidence.get("by_code")
    flags = evidence.get("by_flag")
    by_code = {str(k): float(v) for k, v in codes.items() if str(k).isdigit()} if isinstance(codes, Mapping) else {}
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


def downstream(target: ServiceRef, callees: Callable[[ServiceRef], list[ServiceRef]],
               max_depth: int = MAX_DEPTH) -> dict[ServiceRef, int]:
    """Services reachable from ``target`` through calls, with their shortest hop count."""
    depth = {target: 0}
    queue = deque([target])
    while queue:
        s = queue.popleft()
        if depth[s] >= max_depth:
            continue
        for c in callees(s):
            if c not in depth:
                depth[c] = depth[s] + 1
                queue.append(c)
    return depth


def _key(f: Finding) -> str:
    """A finding's identity: code and subject, plus its fields, because one resource can carry
    two findings of one code (a VirtualService routing to two undefined subsets)."""
    return f"{_label(f)}\x00{f.identity[2]}"


def _label(f: Finding) -> str:
    return f"{f.code} {f.subject}"


def _labels(keys: Iterable[str]) -> tuple[str, ...]:
    """How causal links are shown: "MSH0406 Service shop/database-service"."""
    return tuple(sorted({k.split("\x00", 1)[0] for k in keys}))


def rank(target: ServiceRef, by_service: Mapping[ServiceRef, list[Finding]],
         depth: Mapping[ServiceRef, int],
         callees: Callable[[ServiceRef], list[ServiceRef]],
         hop_shows: Callable[[ServiceRef, ServiceRef, str], bool] = lambda _x, _c, _k: True,
         unjudged: frozenset[str] = frozenset(),
         mesh_causes: Sequence[Finding] = (),
         delivery_candidates: Callable[[Finding], Iterable[Finding]] = lambda _f: (),
         target_workloads: frozenset[WorkloadRef] = frozenset(),
         hop_failures: Callable[[ServiceRef, ServiceRef], Failures | None] = lambda _x, _c: None,
         ) -> list[Finding]:
    """The target's findings plus the downstream findings that explain them, ranked 1..n.

    ``hop_shows(x, c, kind)`` says whether the calls from x to c show that kind of symptom
    (errors on the edge); a callee whose calls are fine cannot explain the caller's errors.
    ``unjudged`` are the symptom kinds the target could not be checked for (their data is
    missing, e.g. Prometheus is down): no symptom can then rule anything out, so every cause of
    that kind downstream is reported too (unlinked), instead of vanishing with the symptom.
    Configuration delivery (the "config" kind) is linked by proxies, not by the call graph
    (:mod:`.delivery`): ``mesh_causes`` are the mesh-level findings (the control plane),
    ``delivery_candidates(f)`` the findings about the workloads ``f`` concerns, wherever they
    are filed, and ``target_workloads`` the target's own (whose drifted routes are filed under
    the service they route to).
    ``hop_failures(x, c)`` says how the calls from x to c failed (status codes, flags), to match
    the causes found on c against (see ``signature_share``).
    """
    causes_of: dict[ServiceRef, list[Finding]] = {}
    symptoms_of: dict[ServiceRef, dict[str, list[Finding]]] = {}
    for svc, fs in by_service.items():
        causes_of[svc] = [f for f in fs if effects(f)]
        symptoms_of[svc] = {}
        for f in fs:
            kind = symptom_kind(f)
            if kind is not None:
                symptoms_of[svc].setdefault(kind, []).append(f)

    explains: dict[str, set[str]] = {}  # cause key -> symptom keys
    explained_by: dict[str, set[str]] = {}
    chain: dict[str, Finding] = {}  # downstream findings to include
    matched: dict[str, float] = {}  # cause key -> the largest share of failures it matches

    def take(c: Finding, failures: Failures | None, found: set[str]) -> None:
        share = signature_share(c, failures)
        if share == 0.0:
            return  # the failures are known and none looks like what this cause does
        found.add(_key(c))
        chain[_key(c)] = c
        matched[_key(c)] = max(matched.get(_key(c), 0.0), share or 0.0)

    def explain(symptom: Finding, at: ServiceRef, kind: str, only: ServiceRef | None,
                hops: int, seen: frozenset[ServiceRef]) -> set[str]:
        found: set[str] = set()
        own_failures = symptom_failures(symptom) if kind == "errors" else None
        if only is None:  # causes on the symptom's own service (an edge symptom looks further)
            for c in causes_of.get(at, []):
                if kind in effects(c):
                    take(c, own_failures, found)
        if hops >= MAX_DEPTH or kind in LOCAL_KINDS:
            return found
        for callee in ([only] if only is not None else callees(at)):
            if callee in seen or callee not in depth or not hop_shows(at, callee, kind):
                continue
            # How the calls over this hop failed; an edge symptom's own breakdown is that hop's.
            failures = (hop_failures(at, callee) or (own_failures if only is not None else None)
                        if kind == "errors" else None)
            for c in causes_of.get(callee, []):
                if kind in effects(c):
                    take(c, failures, found)
            for s in symptoms_of.get(callee, {}).get(kind, []):
                # A callee showing the same symptom passes on what explains it.
                deeper = explain(s, callee, kind, _edge_destination(s), hops + 1, seen | {callee})
                chain[_key(s)] = s
                if deeper:
                    explained_by.setdefault(_key(s), set()).update(deeper)
                    for d in deeper:
                        explains.setdefault(d, set()).add(_key(s))
                    found.update(deeper)
                else:
                    # Nothing further down explains it: the callee's own failure (or slowness)
                    # is where the symptom starts.
                    found.add(_key(s))
        return found

    own = list(by_service.get(target, []))
    for f in own:
        kind = symptom_kind(f)
        if kind in CALL_GRAPH_KINDS or kind in LOCAL_KINDS:
            causes = explain(f, target, kind, _edge_destination(f), 0, frozenset({target}))
            causes.discard(_key(f))
            if causes:
                explained_by.setdefault(_key(f), set()).update(causes)
                for c in causes:
                    explains.setdefault(c, set()).add(_key(f))

    pool = {_key(f): f for f in own}
    pool.update(chain)
    pool.update({_key(f): f for fs in by_service.values() for f in fs if set(f.workloads) & target_workloads})
    for cause, f in delivery_links(pool.values(), mesh_causes, delivery_candidates):
        kc, kf = _key(cause), _key(f)
        chain.setdefault(kc, cause)
        chain.setdefault(kf, f)
        explains.setdefault(kc, set()).add(kf)
        explained_by.setdefault(kf, set()).add(kc)

    for kind in sorted(unjudged & set(CALL_GRAPH_KINDS)):
        for svc in depth:
            for cause in causes_of.get(svc, []):
                if kind in effects(cause):
                    chain.setdefault(_key(cause), cause)

    everything: dict[str, Finding] = {_key(f): f for f in own}
    for k, f in chain.items():
        everything.setdefault(k, f)

    def effective(k: str) -> int:
        own_weight = everything[k].severity.weight
        return max([own_weight] + [everything[s].severity.weight
                                   for s in _closure(k, explains) if s in everything])

    def sort_key(k: str) -> tuple[int, int, float, int, float, str]:
        f = everything[k]
        d = depth.get(f.service, 0) if f.service is not None else 0
        return (-effective(k), 1 if explained_by.get(k) else 0, -matched.get(k, 0.0), -d, -f.magnitude, _label(f))

    ordered = _earliest_first(sorted(everything, key=sort_key), lambda k: sort_key(k)[:3],
                              lambda k: began(everything[k]))
    ranked: list[Finding] = []
    for n, k in enumerate(ordered, start=1):
        f = everything[k]
        ranked.append(replace(f, rank=n, cause_of=_labels(explains.get(k, ())),
                              caused_by=_labels(explained_by.get(k, ()))))
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
