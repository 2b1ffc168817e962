"""The neighbourhood of a service: what ``diagnose SERVICE`` needs collected beyond the graph.

The diagnosis of a service runs the checklist on the service and on every service the root-cause
walk reaches downstream (:func:`meshobs.engine.ranking.downstream`, the same walk the engine
takes), and the checks of a service read its own proxies and its callers' proxies (their
clusters hold its endpoints, their routes its split). The walk has no fixed depth: beyond
``MAX_DEPTH`` it goes on wherever a hop carries evidence (a timeout chain five hops down), and a
certificate running out is surfaced from any depth. What the evidence will show is not known
before the scoped phase has read it, so the neighbourhood is everything the walk *can* reach:

* services: the target and every service downstream of it, at any depth;
* workloads: the workloads of those services (their Services' selectors over the Deployments,
  and the workloads the traffic into them reached), and every workload that calls one of them.

(Still narrower than the mesh: the target's callers' other callees, and the rest of the mesh
beside and above it, are left out.)

Computed from the graph phase's snapshot (the request-rate edges, the Services and Deployments;
no pods); the scoped phase then collects pods, Envoy, traces, latency and configuration for
this set only.
"""

from __future__ import annotations

import re

from meshobs.callgraph import callees_of, downstream
from meshobs.collectors.base import Scope
from meshobs.model import MeshSnapshot, ServiceRef, WorkloadRef


def neighbourhood(snapshot: MeshSnapshot, target: ServiceRef) -> Scope:
    """The Scope a diagnosis of ``target`` reads (see the module docstring)."""
    services = set(downstream(target, lambda s: callees_of(snapshot, s), None))
    workloads: set[WorkloadRef] = set()
    for service in services:
        workloads.update(w.ref for w in snapshot.workloads_of(service))
        for e in snapshot.edges_into(service):
            if not e.source.is_unknown:
                workloads.add(e.source)
            # The graph phase lists Deployments, not pods: a StatefulSet's, DaemonSet's or bare
            # pod's workload is known from the traffic it answers.
            if e.destination_workload is not None and not e.destination_workload.is_unknown:
                workloads.add(e.destination_workload)
    return Scope(target=target, services=frozenset(services), workloads=frozenset(workloads),
                 pod_selectors=pod_selectors(snapshot, services, workloads))


# A label value a set-based selector can carry as it is (Kubernetes label values are at most
# this; anything else and the namespace is listed whole).
_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _union(selectors: list[dict[str, str]]) -> str | None:
    """One set-based selector matching every pod any of ``selectors`` matches (more, maybe:
    ``app in (a,b)`` for ``app=a,version=v1`` and ``app=b``), or None when they share no key."""
    common = set.intersection(*(set(s) for s in selectors))
    if not common:
        return None
    key = "app" if "app" in common else sorted(common)[0]
    values = sorted({s[key] for s in selectors})
    if not all(_VALUE.match(v) for v in values):
        return None
    return f"{key} in ({','.join(values)})"


def pod_selectors(snapshot: MeshSnapshot, services: set[ServiceRef],
                  workloads: set[WorkloadRef]) -> tuple[tuple[str, str | None], ...]:
    """Per namespace of the neighbourhood, a labelSelector for the pods its checks read: the
    pods each Service selects, and each workload's pods (its pod template's labels, known from
    its Deployment). None (the whole namespace) where one of them has no selector or template
    (a StatefulSet's workload known from traffic only, a Service without a selector), where
    they share no label key, or where the namespace is on the ambient data plane (its checks
    read every pod of it). Pods beside the neighbourhood in a narrowed namespace are not
    listed: no check of the neighbourhood's services reads them (tests/test_scoped_diagnose)."""
    wanted: dict[str, list[dict[str, str]] | None] = {}

    def need(namespace: str, selector: dict[str, str] | None) -> None:
        if namespace in wanted and wanted[namespace] is None:
            return
        if not selector:
            wanted[namespace] = None
            return
        found = wanted.setdefault(namespace, [])
        assert found is not None
        found.append(selector)

    for ref in services:
        service = snapshot.service(ref)
        need(ref.namespace, {str(k): str(v) for k, v in service.selector.items()} if service is not None else None)
    for wref in workloads:
        workload = snapshot.workload(wref)
        need(wref.namespace, {str(k): str(v) for k, v in workload.labels.items()}
             if workload is not None and workload.labels else None)
    ambient = {r.name for r in snapshot.config if r.kind == "Namespace"
               and dict(r.labels).get("istio.io/dataplane-mode") == "ambient"}
    return tuple((ns, None if selectors is None or ns in ambient else _union(selectors))
                 for ns, selectors in sorted(wanted.items()))
