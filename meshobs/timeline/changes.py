"""Changes the sources can date, and the services each one touches.

Every source that keeps a time says something changed then:

* Kubernetes: a mesh resource's ``creationTimestamp`` and its ``managedFields`` times (who wrote
  it, how; ``metadata.generation`` counts the spec changes), pods' start times (a rollout) and
  their containers' last termination (a restart);
* Envoy: when each proxy last accepted a cluster, listener or route configuration (the config
  dump's ``last_updated``; EDS is left out, endpoints change all the time) -- only the latest
  push is visible, an earlier one that a later push replaced is not;
* certificates: when a workload's certificate was issued (``not_before``).

A change *touches* the services whose traffic it can alter: the hosts a VirtualService,
DestinationRule or ServiceEntry names (and a VirtualService's destinations), the workloads a
policy's selector picks (every service of its namespace without one, of the mesh in the root
namespace), the services of a workload that rolled out or restarted, of a proxy that took new
configuration and the services it calls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshobs.model import ConfigResource, Layer, MeshSnapshot, ServiceRef, WorkloadRef
from meshobs.words import plural

# The kinds of change, in the order a tie is broken (a resource edit explains more than a push).
KINDS = ("config", "rollout", "restart", "xds", "cert")
INTENT = ("config", "rollout", "restart")  # someone changed something (the rest is delivery)
# Resources that pick workloads with a selector (spec.selector.matchLabels or
# spec.workloadSelector.labels); without one they apply to their whole namespace.
_SELECTING = ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Sidecar",
              "EnvoyFilter", "Telemetry", "WasmPlugin", "WorkloadEntry")
_XDS = {"cds": "clusters (CDS)", "lds": "listeners (LDS)", "rds": "routes (RDS)"}


@dataclass(frozen=True)
class Change:
    """One dated change. ``subject`` names the changed object as findings do
    ("DestinationRule fares/surge-calculator", "Workload rides/booking-api-v15")."""

    at: datetime
    kind: str  # one of KINDS
    subject: str
    what: str  # "changed", "created", "rolled out", "restarted", "took new routes (RDS)", ...
    detail: str = ""  # "kubectl-edit (Update), generation 2", "3 of 3 pods", "OOMKilled"
    services: tuple[ServiceRef, ...] = ()  # the services it touches

    def describe(self) -> str:
        """"DestinationRule fares/surge-calculator changed (kubectl-edit, generation 2)"."""
        return f"{self.subject} {self.what}" + (f" ({self.detail})" if self.detail else "")


def changes_between(snapshot: MeshSnapshot, start: datetime, end: datetime) -> list[Change]:
    """Every dated change in ``[start, end]``, oldest first."""
    out = [*_config_changes(snapshot, start, end), *_pod_changes(snapshot), *_proxy_changes(snapshot),
           *_cert_changes(snapshot)]
    return sorted((c for c in out if start <= c.at <= end),
                  key=lambda c: (c.at, KINDS.index(c.kind), c.subject))


# -- Kubernetes resources --------------------------------------------------------------------

def _config_changes(snapshot: MeshSnapshot, start: datetime, end: datetime) -> Iterable[Change]:
    """The live resources' changes; those of a resource with none in ``[start, end]`` may be
    left out (a big mesh's thousands of resources were mostly written long before the
    history: the services each touches are looked up only for those with a change in it)."""
    for r in snapshot.config:
        if r.dates is None or r.layer is not Layer.LIVE:
            continue
        dated = list(_dated(r))
        if not any(start <= at <= end for at, _what, _detail in dated):
            continue
        subject = f"{r.kind} {r.namespace}/{r.name}"
        touched = tuple(touches(snapshot, r))
        for at, what, detail in dated:
            yield Change(at, "config", subject, what, detail, touched)


def _dated(r: ConfigResource) -> Iterable[tuple[datetime, str, str]]:
    """(when, what, detail) of each write of ``r`` the API server dated: its creation, then its changes."""
    assert r.dates is not None
    created = r.dates.created
    first = [w for w in r.dates.writes if created is not None and abs((w.time - created).total_seconds()) < 1]
    if created is not None:
        how = ", ".join(x for x in (first[0].manager, first[0].operation) if x) if first else ""
        yield created, "created", how
    gen = r.dates.generation
    for w in r.dates.writes:
        # The creating write is the creation; a status writer (istiod's reconciliation) is
        # not a change of intent but is kept: whatever wrote, the object changed then.
        if w in first:
            continue
        how = ", ".join(x for x in (w.manager, w.operation) if x)
        detail = how + (f"; generation {gen}" if gen and w is r.dates.last_write else "")
        yield w.time, "changed", detail


def touches(snapshot: MeshSnapshot, r: ConfigResource) -> list[ServiceRef]:
    """The services whose traffic ``r`` can alter (see the module docstring)."""
    from meshobs.checks.inventory import services_of_hosts
    from meshobs.istio_config import dr_host, fqdn, vs_destinations, vs_hosts

    if r.kind == "VirtualService":
        hosts = [*vs_hosts(r), *(d.host for d in vs_destinations(r))]
        return services_of_hosts(snapshot, hosts)
    if r.kind == "DestinationRule":
        return services_of_hosts(snapshot, [dr_host(r)])
    if r.kind == "ServiceEntry":
        return services_of_hosts(snapshot, [fqdn(str(h), r.namespace) for h in r.spec.get("hosts") or ()])
    if r.kind in _SELECTING:
        return _selected_services(snapshot, r.namespace, _selector(r.spec))
    return []


def _selector(spec: Mapping[str, Any]) -> dict[str, str] | None:
    for key, inner in (("selector", "matchLabels"), ("workloadSelector", "labels"),
                       ("workloadSelector", "matchLabels")):
        labels = (spec.get(key) or {}).get(inner) if isinstance(spec.get(key), Mapping) else None
        if labels:
            return {str(k): str(v) for k, v in labels.items()}
    return None


def _selected_services(snapshot: MeshSnapshot, namespace: str, selector: dict[str, str] | None) -> list[ServiceRef]:
    from meshobs.checks.meshconfig import root_namespace

    everywhere = namespace == root_namespace(snapshot) and selector is None
    out: set[ServiceRef] = set()
    for w in snapshot.workloads:
        if not everywhere and w.ref.namespace != namespace:
            continue
        if selector is None or all(str(w.labels.get(k)) == v for k, v in selector.items()):
            out.update(w.services)
    if selector is None and not everywhere:
        out.update(s.ref for s in snapshot.services if s.namespace == namespace)
    return sorted(s for s in out if not s.is_unknown)


# -- pods ------------------------------------------------------------------------------------

def _pod_changes(snapshot: MeshSnapshot) -> Iterable[Change]:
    by_workload: dict[WorkloadRef, list[Any]] = defaultdict(list)
    for pod in snapshot.pods:
        if pod.workload is not None:
            by_workload[pod.workload].append(pod)
    carried = _carried_by_node(snapshot)
    for wref, pods in sorted(by_workload.items()):
        services = tuple(snapshot.services_of(wref))
        if any(p.node_proxy for p in pods):
            # Ambient's node proxy (ztunnel) serves no Service of its own: its rollout or restart
            # touches the services whose ambient pods run on its nodes (their connections drop).
            services = tuple(sorted({s for p in pods if p.node_proxy for s in carried.get(p.node or "", ())},
                                    key=lambda s: (s.namespace, s.name))) or services
        starts = sorted(p.started for p in pods if p.started is not None)
        if starts:
            # Pods that started within a few minutes of the newest one are one rollout.
            newest = starts[-1]
            batch = [t for t in starts if (newest - t).total_seconds() <= 600]
            yield Change(batch[0], "rollout", f"Workload {wref}", "rolled out",
                         f"{len(batch)} of {len(pods)} pods started", services)
        for p in pods:
            # The pod's latest restart (any container), and how that run ended.
            dated = [(r.last_at, r) for r in p.restart_history if r.last_at is not None]
            if dated:
                at, last = max(dated, key=lambda x: x[0])
                touched = tuple(carried.get(p.node or "", ())) if p.node_proxy else services
                yield Change(at, "restart", f"Pod {p.namespace}/{p.name}", "restarted",
                             last.reason or last.waiting or "", touched)


def _carried_by_node(snapshot: MeshSnapshot) -> dict[str, list[ServiceRef]]:
    """The services whose ambient pods each node's proxy (ztunnel) carries, by node."""
    out: dict[str, set[ServiceRef]] = defaultdict(set)
    for pod in snapshot.pods:
        if pod.ambient and pod.node and pod.workload is not None:
            out[pod.node].update(snapshot.services_of(pod.workload))
    return {node: sorted(refs, key=lambda s: (s.namespace, s.name)) for node, refs in out.items()}


# -- Envoy -----------------------------------------------------------------------------------

def _proxy_changes(snapshot: MeshSnapshot) -> Iterable[Change]:
    updated: dict[tuple[WorkloadRef, str], list[datetime]] = defaultdict(list)
    for proxy in snapshot.proxies:
        if proxy.workload is None:
            continue
        for xds in _XDS:
            res = proxy.xds_version(xds)
            if res is not None and res.last_updated is not None:
                updated[(proxy.workload, xds)].append(res.last_updated)
    touched: dict[WorkloadRef, tuple[ServiceRef, ...]] = {}  # once per workload, not per xDS type
    for (wref, xds), times in sorted(updated.items()):
        if wref not in touched:
            own = set(snapshot.services_of(wref))
            # A proxy's clusters and routes shape its calls: the services it calls are touched too.
            callees = {e.destination for e in snapshot.edges_from_workload(wref) if not e.destination.is_unknown}
            touched[wref] = tuple(sorted(own | callees))
        n = len(times)
        yield Change(min(times), "xds", f"Workload {wref}", f"proxies took new {_XDS[xds]}",
                     f"{n} prox{'y' if n == 1 else 'ies'}", touched[wref])


def _cert_changes(snapshot: MeshSnapshot) -> Iterable[Change]:
    from meshobs.model import CertRole

    issued: dict[WorkloadRef, list[datetime]] = defaultdict(list)
    for cert in snapshot.certs:
        if cert.role is CertRole.WORKLOAD and cert.workload is not None:
            issued[cert.workload].append(cert.not_before)
    for wref, times in sorted(issued.items()):
        yield Change(max(times), "cert", f"Workload {wref}", "got a new certificate",
                     plural(len(times), 'certificate'), tuple(snapshot.services_of(wref)))
