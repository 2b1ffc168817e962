"""Traffic the mesh's configuration makes on purpose: mirrored copies and injected faults.

* **Mirroring** (a VirtualService's ``mirror`` / ``mirrors`` with ``mirrorPercentage``): the
  caller's proxy sends a copy and forgets it. Only the shadow's proxy reports the copy
  (``reporter="destination"``), and its answer never reaches the caller, so a failing shadow is
  neither a failing version nor part of the observed split.
* **Fault injection** (``fault.abort`` / ``fault.delay``): the *caller's* proxy answers the
  request itself (``FI``, typically 503) or holds it (``DI``) before any destination is picked;
  the destination never saw it.

The traffic checks judge what callers actually get from a destination, without either
(:func:`as_callers_see`); :func:`intended` reports them as info ("intended"), never as a cause.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import VIRTUAL_SERVICE, fqdn, host_matches, pick_resources, vs_destinations, vs_hosts
from meshobs.model import ConfigResource, Edge, Mesh, MeshSnapshot, Reporter, ServiceRef, WorkloadRef

from .base import Finding, Settings, check, finding, memo
from .config import destination_rules_for, subsets_for_host, workload_labels
from .inventory import selects

FAULT_FLAGS = frozenset({"FI"})  # aborted by the caller's fault filter
DELAY_FLAGS = frozenset({"DI"})  # held by it (the answer itself came from the destination)


@dataclass(frozen=True)
class Mirror:
    """One mirror of a VirtualService rule: the copies go to ``host`` (and ``subset``)."""

    virtual_service: ConfigResource
    rule: str  # the rule's name, or http[i]
    host: str  # FQDN
    subset: str | None
    percent: float | None

    def __str__(self) -> str:
        where = f"{self.host}" + (f" subset {self.subset}" if self.subset else "")
        share = f", {self.percent:g}%" if self.percent is not None else ""
        return (f"VirtualService {self.virtual_service.namespace}/{self.virtual_service.name} "
                f"({self.rule}: mirror to {where}{share})")


@dataclass(frozen=True)
class Fault:
    """A rule's fault injection for the hosts its VirtualService routes."""

    virtual_service: ConfigResource
    rule: str
    hosts: tuple[str, ...]
    abort: str  # "8% 503" or ""
    delay: str  # "5% 300ms" or ""

    def __str__(self) -> str:
        what = ", ".join(p for p in (f"abort {self.abort}" if self.abort else "",
                                     f"delay {self.delay}" if self.delay else "") if p)
        return (f"VirtualService {self.virtual_service.namespace}/{self.virtual_service.name} "
                f"({self.rule}: {what})")


def _rule_name(rule: Any, i: int) -> str:
    return str(rule.get("name")) if rule.get("name") else f"http[{i}]"


def _percent(block: Any) -> float | None:
    value = block.get("value") if hasattr(block, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _mirrors(snapshot: MeshSnapshot) -> list[Mirror]:
    out: list[Mirror] = []
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        rules = [r for r in vs.spec.get("http") or () if hasattr(r, "get")]
        for d in vs_destinations(vs):
            if not d.mirror:
                continue
            i = int(d.path.split("[", 2)[1].split("]", 1)[0])
            rule = rules[i] if i < len(rules) else {}
            percent = _percent(rule.get("mirrorPercentage"))
            if ".mirrors[" in d.path:
                k = int(d.path.split(".mirrors[", 1)[1].split("]", 1)[0])
                entry = (rule.get("mirrors") or ())[k]
                percent = _percent(entry.get("percentage")) if hasattr(entry, "get") else percent
            out.append(Mirror(vs, _rule_name(rule, i), d.host, d.subset, percent))
    return out


def _faults(snapshot: MeshSnapshot) -> list[Fault]:
    out: list[Fault] = []
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        for i, rule in enumerate(vs.spec.get("http") or ()):
            fault = rule.get("fault") if hasattr(rule, "get") else None
            if not hasattr(fault, "get") or not fault:
                continue
            abort, delay = fault.get("abort") or {}, fault.get("delay") or {}
            abort_text = delay_text = ""
            if abort:
                pct = _percent(abort.get("percentage"))
                code = abort.get("httpStatus") or abort.get("grpcStatus") or "?"
                abort_text = f"{pct:g}% {code}" if pct is not None else str(code)
            if delay:
                pct = _percent(delay.get("percentage"))
                fixed = delay.get("fixedDelay") or delay.get("exponentialDelay") or "?"
                delay_text = f"{pct:g}% {fixed}" if pct is not None else str(fixed)
            hosts = {d.host for d in vs_destinations(vs) if not d.mirror and d.path.startswith(f"spec.http[{i}]")}
            out.append(Fault(vs, _rule_name(rule, i), tuple(sorted(set(vs_hosts(vs)) | hosts)),
                             abort_text, delay_text))
    return out


def _reporting_callers(snapshot: MeshSnapshot) -> frozenset[WorkloadRef]:
    """Workloads whose own proxy reports their calls: a caller with a sidecar."""
    out = {e.source for e in snapshot.edges if e.reporter in (Reporter.SOURCE, Reporter.BOTH)}
    out.update(w.ref for w in snapshot.workloads if w.meshed)
    return frozenset(out)


def _hosts_of(snapshot: MeshSnapshot, service: ServiceRef) -> set[str]:
    svc = snapshot.service(service)
    hosts = {fqdn(service.name, service.namespace)}
    if svc is not None:
        hosts.update(fqdn(h, service.namespace) for h in svc.hosts)
    return hosts


def mirror_of(snapshot: MeshSnapshot, edge: Edge) -> Mirror | None:
    """The mirror that made ``edge``, when it is mirrored traffic: only the destination reported
    it although the caller's own proxy reports its calls, and a VirtualService mirrors that host
    (and subset) -- a caller without a sidecar is seen destination-side only too, and is real."""
    if edge.reporter is not Reporter.DESTINATION or edge.destination_workload is None:
        return None
    if edge.source not in memo(snapshot, "intended.reporting", _reporting_callers):
        return None
    hosts = _hosts_of(snapshot, edge.destination)
    w = snapshot.workload(edge.destination_workload)
    for m in memo(snapshot, "intended.mirrors", _mirrors):
        if m.host not in hosts:
            continue
        if m.subset is None:
            return m
        subsets = subsets_for_host(destination_rules_for(snapshot, [m.host]), m.host)
        selector = subsets.get(m.subset, (None, {}))[1]
        if w is not None and selector and selects(selector, workload_labels(w)):
            return m
    return None


def faults_for(snapshot: MeshSnapshot, destination: ServiceRef) -> list[Fault]:
    """The fault injections configured for the destination's hosts."""
    hosts = _hosts_of(snapshot, destination)
    return [f for f in memo(snapshot, "intended.faults", _faults)
            if any(host_matches(h, x) for h in f.hosts for x in hosts)]


def _injected(edge: Edge) -> float:
    return sum(r.rate for r in edge.responses if FAULT_FLAGS & set(r.flag_list))


def _delayed(edge: Edge) -> float:
    return sum(r.rate for r in edge.responses if DELAY_FLAGS & set(r.flag_list))


def _as_seen(snapshot: MeshSnapshot) -> dict[Edge, Edge | None]:
    out: dict[Edge, Edge | None] = {}
    for e in snapshot.edges:
        if mirror_of(snapshot, e) is not None:
            out[e] = None
        elif _injected(e) > 0:
            out[e] = e.with_responses(tuple(r for r in e.responses if not FAULT_FLAGS & set(r.flag_list)))
    return out


def as_callers_see(snapshot: MeshSnapshot, edges: Iterable[Edge]) -> list[Edge]:
    """``edges`` as their destination served the callers: mirrored copies dropped, requests the
    caller's own fault filter aborted (FI) taken out. Shared by every check that judges a
    destination by its errors or its split, so intended traffic is never blamed."""
    changed = memo(snapshot, "intended.as_seen", _as_seen)
    if not changed:  # no mirror, no injected fault (most meshes): spares hashing every edge
        return list(edges)
    out: list[Edge] = []
    for e in edges:
        if e not in changed:
            out.append(e)
        elif (kept := changed[e]) is not None and (kept.request_rate > 0 or kept.responses):
            out.append(kept)
    return out


def _r(x: float) -> float:
    return round(x, 4)


@check("traffic.intended", Category.TRAFFIC, ("requests",), ("MSH0410", "MSH0411"), uses=("config",),
       mesh=Mesh.ISTIO)
def intended(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Traffic the configuration makes on purpose, shown so nobody mistakes it for a fault:
    requests the callers' fault injection aborted or delayed, and copies mirrored to it."""
    from .traffic import require_requests  # traffic reads this module's view of the edges

    require_requests(snapshot, service, snapshot.edges_into(service), "into")
    for e in snapshot.edges_into(service):
        m = mirror_of(snapshot, e)
        if m is not None and e.destination_workload is not None:
            ratio = e.error_ratio
            yield finding("MSH0411", "traffic.intended", f"Workload {e.destination_workload}", service=service,
                          evidence={"source": str(e.source), "rps": _r(e.request_rate),
                                    "error_rps": _r(e.error_rate), "reporter": e.reporter.value,
                                    "mirror": str(m), "mirror_percent": m.percent},
                          hint="mirrored requests are fire-and-forget: judge the shadow version by its own "
                               "logs before sending it real traffic",
                          workload=str(e.destination_workload), rps=_r(e.request_rate), source=str(e.source),
                          configured_by=str(m), ratio_pct=f"{100 * ratio:.2g}")
    by_source: dict[str, tuple[float, float, set[str]]] = {}
    for e in snapshot.edges_into(service):
        aborted, delayed = _injected(e), _delayed(e)
        if aborted <= 0 and delayed <= 0:
            continue
        caller = str(snapshot.caller_of(e) or e.source)
        a, d, flags = by_source.get(caller, (0.0, 0.0, set()))
        codes = {f"{r.outcome} {r.flags}" for r in e.responses if FAULT_FLAGS & set(r.flag_list)}
        by_source[caller] = (a + aborted, d + delayed, flags | codes)
    if not by_source:
        return
    faults = faults_for(snapshot, service)
    configured = "; ".join(str(f) for f in faults) or "no VirtualService fault in the configuration read " \
                                                       "(an EnvoyFilter, or a VirtualService not collected)"
    for source, (aborted, delayed, codes) in sorted(by_source.items()):
        yield finding("MSH0410", "traffic.intended", f"Edge {source} -> {service}", service=service,
                      evidence={"aborted_rps": _r(aborted), "delayed_rps": _r(delayed),
                                "abort_responses": sorted(codes), "faults": [str(f) for f in faults]},
                      hint="remove the VirtualService's fault block when the experiment is over",
                      source=source, destination=str(service), aborted_rps=_r(aborted),
                      abort_flag=", ".join(sorted(codes)) or "FI", delayed_rps=_r(delayed),
                      configured_by=configured)
