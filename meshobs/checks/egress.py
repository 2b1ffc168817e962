"""Calls a workload's egress policy blocks: BlackHoleCluster, tied to the resource that blocks.

With ``outboundTrafficPolicy: REGISTRY_ONLY`` a sidecar knows only the hosts in its registry:
the services its ``Sidecar`` resource's egress hosts import (all of them without a Sidecar) and
the ServiceEntries. Anything else goes to ``BlackHoleCluster``: HTTP gets a 502 from the
catch-all ``block_all`` route (no response flag), TCP connections are reset. Istio's metrics then
name ``BlackHoleCluster`` instead of the host. The mode comes from the workload's Sidecar when it
sets one, else from the mesh config (ConfigMap ``istio-system/istio``). Under ``ALLOW_ANY`` the
same calls go out through ``PassthroughCluster``: intended, and judged like any other destination.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, ServiceRef, Workload, WorkloadRef

from .analyzers_sidecar import SIDECAR
from .analyzers_sidecar import workload_selector as selector
from .base import Finding, Settings, check, finding
from .config import workload_labels
from .inventory import selects
from .meshconfig import REGISTRY_ONLY, mesh_config, outbound_mode, root_namespace
from .traffic import BLACKHOLE, _r, outbound_edges, require_requests

IMPORT_ALL = "*/*"


def sidecar_for(snapshot: MeshSnapshot, workload: Workload) -> ConfigResource | None:
    """The Sidecar resource configuring ``workload``'s proxy, as Istio picks it: one selecting
    its labels in its namespace, else its namespace's Sidecar without selector, else the root
    namespace's."""
    labels = workload_labels(workload)
    sidecars = pick_resources(snapshot, SIDECAR)
    for candidates in ([r for r in sidecars if r.namespace == workload.namespace and (s := selector(r)) is not None
                        and selects(s, labels)],
                       [r for r in sidecars if r.namespace == workload.namespace and selector(r) is None],
                       [r for r in sidecars if r.namespace == root_namespace(snapshot) and selector(r) is None]):
        if candidates:
            return candidates[0]
    return None


def egress_hosts(sidecar: ConfigResource) -> list[str]:
    """The hosts a Sidecar imports (``namespace/dnsName``); ``*/*`` when it does not narrow them."""
    hosts = [str(h) for e in sidecar.spec.get("egress") or () if hasattr(e, "get") for h in e.get("hosts") or ()]
    return hosts or [IMPORT_ALL]


def imports(sidecar: ConfigResource, host: str) -> bool:
    """Does the Sidecar's egress import ``host`` (an in-mesh FQDN)? Its hosts are
    ``namespace/dnsName``: ``.`` its own namespace, ``*`` any, a ``*.`` prefix wildcard."""
    parts = host.split(".")
    namespace = parts[1] if len(parts) > 2 and parts[2] == "svc" else None
    for pattern in egress_hosts(sidecar):
        ns, _, name = pattern.partition("/")
        ns = sidecar.namespace if ns == "." else ns
        if ns not in ("*", namespace):
            continue
        if name == "*" or name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def _out_of_scope(snapshot: MeshSnapshot, sidecar: ConfigResource, workloads: list[WorkloadRef]) -> list[str]:
    """In-mesh hosts the other proxies hold and these workloads' proxies do not, because the
    Sidecar does not import them: what the scoping took out of their registry."""
    own: set[str] = set()
    for ref in workloads:
        for p in snapshot.proxies_of(ref):
            own.update(c.service_host for c in p.clusters if c.direction == "outbound" and c.service_host)
    if not own:
        return []
    known = {c.service_host for p in snapshot.proxies for c in p.clusters
             if c.direction == "outbound" and c.service_host and ".svc." in c.service_host}
    return sorted(h for h in known - own if not imports(sidecar, h))


@check("traffic.egress", Category.TRAFFIC, ("requests",), ("MSH0415",), uses=("config", "proxies"),
       mesh=Mesh.ISTIO)
def egress(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The service's calls go to BlackHoleCluster: its egress policy (a Sidecar resource, or the
    mesh config's REGISTRY_ONLY without a ServiceEntry for the host) blocks them."""
    # A service that only answers has been seen making no calls: judged, nothing blocked.
    require_requests(snapshot, service, [*outbound_edges(snapshot, service), *snapshot.edges_into(service)],
                     "to or from")
    blocked = [e for e in outbound_edges(snapshot, service) if e.destination.name == BLACKHOLE]
    http = sum(e.request_rate for e in blocked if e.protocol != "tcp")
    tcp = sum(e.tcp_connections_opened_rate or 0.0 for e in blocked if e.protocol == "tcp")
    if http <= 0 and tcp <= 0:
        return
    workloads = sorted({e.source for e in blocked})
    scoped = [(w, sidecar_for(snapshot, w)) for ref in workloads if (w := snapshot.workload(ref)) is not None]
    sidecars = sorted({(s.namespace, s.name): s for _w, s in scoped if s is not None}.values(),
                      key=lambda s: (s.namespace, s.name))
    mesh = mesh_config(snapshot)
    mesh_mode = outbound_mode(mesh)
    cause: ConfigResource | None = None
    subject = f"Service {service}"
    because: str
    narrowing = [s for s in sidecars if egress_hosts(s) != [IMPORT_ALL] or outbound_mode(s) == REGISTRY_ONLY]
    out_of_scope: list[str] = []
    if narrowing:
        cause = narrowing[0]
        mode = outbound_mode(cause)
        set_by = (f"it sets outboundTrafficPolicy {mode}" if mode else
                  f"the mesh config sets {mesh_mode}" if mesh_mode else "REGISTRY_ONLY applies")
        out_of_scope = _out_of_scope(snapshot, cause, workloads)
        outside = (f" ({', '.join(out_of_scope[:3])}{' ...' if len(out_of_scope) > 3 else ''} among them)"
                   if out_of_scope else "")
        because = (f"Sidecar {cause.namespace}/{cause.name} imports only {', '.join(egress_hosts(cause))} and "
                   f"{set_by}, so any other host (another namespace's service{outside}, an external host "
                   f"without a ServiceEntry) is outside the workload's registry")
    elif mesh is not None and mesh_mode == REGISTRY_ONLY:
        cause = mesh
        because = (f"the mesh config (ConfigMap {mesh.namespace}/{mesh.name}, key mesh) sets outboundTrafficPolicy "
                   f"REGISTRY_ONLY and no ServiceEntry covers the host it calls (the metrics name BlackHoleCluster, "
                   f"not the host: the workload's logs or access log have it)")
    else:
        because = ("REGISTRY_ONLY applies but neither a Sidecar resource nor the mesh config that sets it was read "
                   "(the mesh config is the ConfigMap istio-system/istio)")
    counters: dict[str, int] = {}
    for ref in workloads:
        for p in snapshot.proxies_of(ref):
            c = p.cluster(BLACKHOLE)
            for k, v in (c.counters.items() if c is not None else ()):
                if v:
                    counters[k] = counters.get(k, 0) + int(v)
    if cause is not None:
        subject = f"{cause.kind} {cause.namespace}/{cause.name}"
    yield finding("MSH0415", "traffic.egress", subject, service=service,
                  evidence={"destination": str(blocked[0].destination), "blocked_rps": _r(http),
                            "blocked_connections_per_s": _r(tcp),
                            "workloads": [str(w) for w in workloads],
                            "responses": sorted({f"{r.outcome} {r.flags}" for e in blocked for r in e.responses}),
                            "sidecar": f"{sidecars[0].namespace}/{sidecars[0].name}" if sidecars else None,
                            "sidecar_egress_hosts": egress_hosts(sidecars[0]) if sidecars else None,
                            "hosts_outside_registry": out_of_scope[:20],
                            "mesh_outbound_mode": mesh_mode or ("ALLOW_ANY (default)" if mesh is not None else None),
                            "blackhole_counters": counters},
                  magnitude=http + tcp,
                  hint=("add the host to the Sidecar's egress hosts (namespace/host), or a ServiceEntry for an "
                        "external host" if cause is not None and cause.kind == SIDECAR else
                        "add a ServiceEntry for the external host the workload calls (its access log names it), or "
                        "set outboundTrafficPolicy ALLOW_ANY for it"),
                  source=str(service), blocked_rps=_r(http), blocked_cx=_r(tcp), because=because)
