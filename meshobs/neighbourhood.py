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

Not every proxy of it is read whole. A caller of a downstream service from outside the
neighbourhood (the second ring) is read by the checks of that service only through its clusters
for it (traffic.circuit_breaker, traffic.endpoints, traffic.retries: breakers, ejections,
membership and retry counters, from the proxy's stats) and, for a calling gateway, its RBAC and
JWT counters (traffic.authorization, on refused calls). Those findings exist only where calls
into the service failed or were refused: overflows are 503 UO, no healthy endpoint is 503 UH,
outlier detection ejects after consecutive 5xx, retries hide the service's own errors, and the
gateway's filters answer 401/403. So such a caller is asked for its configuration dump only
when the graph phase saw how every call into that service ended and none failed (its
``failing`` query, :func:`meshobs.callgraph.failed`, and for TCP its ``tcp_failing`` query:
connections that ended with an Envoy flag), and for everything (``asked_in_full``) otherwise.
The dump is what the rest of the diagnosis reads from every proxy it has: the timeline's xDS
pushes (a caller's new clusters touch its callees) and certificate rotations, the mesh's hosts
(traffic.egress) and its trust domains. The target's callers are always read whole: the
target's own checks are reported. Not covered: a breaker open, or an endpoint ejected, on such
a caller while none of the window's calls into the service failed (the dump has no stats).
tests/test_scoped_diagnose.py (the lighthouse mesh) exercises both sides of the rule.

Computed from the graph phase's snapshot (the request-rate edges, the Services and Deployments;
no pods): a live question hands it one holding only the edges it can reach
(:meth:`meshobs.graph_phase.GraphPhase.around`); the scoped phase then collects pods, Envoy,
traces, latency and configuration for this set only.
"""

from __future__ import annotations

import re

from meshobs.callgraph import callees_of, downstream
from meshobs.collectors.base import Scope
from meshobs.model import Edge, MeshSnapshot, ServiceRef, WorkloadRef
from meshobs.model.traffic import NOT_FAILED


def neighbourhood(snapshot: MeshSnapshot, target: ServiceRef) -> Scope:
    """The Scope a diagnosis of ``target`` reads (see the module docstring)."""
    services = set(downstream(target, lambda s: callees_of(snapshot, s), None))
    workloads: set[WorkloadRef] = set()
    whole: set[WorkloadRef] = set()  # asked for everything (see the module docstring)
    for service in services:
        own = {w.ref for w in snapshot.workloads_of(service)}
        callers: set[WorkloadRef] = set()
        into = snapshot.edges_into(service)
        for e in into:
            if not e.source.is_unknown:
                callers.add(e.source)
            # The graph phase lists Deployments, not pods: a StatefulSet's, DaemonSet's or bare
            # pod's workload is known from the traffic it answers.
            if e.destination_workload is not None and not e.destination_workload.is_unknown:
                own.add(e.destination_workload)
        workloads |= own | callers
        whole |= own
        if service == target or not _calm(into):
            whole |= callers
    return Scope(target=target, services=frozenset(services), workloads=frozenset(workloads),
                 pod_selectors=pod_selectors(snapshot, services, workloads, whole={target.namespace}),
                 asked_in_full=frozenset(whole))


def _calm(into: list[Edge]) -> bool:
    """Did the graph phase see how every call (or TCP connection) into a service ended, and none
    fail or get refused (its ``failing`` and ``tcp_failing`` queries answered, naming none of
    these edges)? Not when an edge carries calls of unknown outcome: the query did not answer,
    or another source drew the graph. gRPC alike: Envoy's own refusals (UO, UH, URX) and the
    server's errors reach the caller as HTTP 200 with a grpc-status, which the ``failing`` query
    names by ``grpc_response_status`` (collectors/promql.py FAILED_GRPC)."""
    return all((e.responses or e.destination_responses)
               and all(r.code == NOT_FAILED for r in (*e.responses, *e.destination_responses)) for e in into)


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


def pod_selectors(snapshot: MeshSnapshot, services: set[ServiceRef], workloads: set[WorkloadRef],
                  whole: set[str] | frozenset[str] = frozenset()) -> tuple[tuple[str, str | None], ...]:
    """Per namespace of the neighbourhood, a labelSelector for the pods its checks read: the
    pods each Service selects, and each workload's pods (its pod template's labels, known from
    its Deployment). None (the whole namespace) where one of them has no selector or template
    (a StatefulSet's workload known from traffic only, a Service without a selector), where
    they share no label key, where the namespace is on the ambient data plane (its checks
    read every pod of it), or for the namespaces in ``whole``: the target's, where a
    namespace-wide comparison can find something about the target's own pods
    (config.proxy_image: its sidecars still run the image its neighbours were restarted from;
    tests/test_neighbourhood_pods.py). Elsewhere, pods beside the neighbourhood in a narrowed
    namespace are not listed: such a comparison files its finding under the services whose
    pods are behind, and a downstream service's finding of that kind explains no symptom of
    the target (tests/test_scoped_diagnose)."""
    wanted: dict[str, list[dict[str, str]] | None] = {ns: None for ns in whole}

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
    ambient = {r.name for r in snapshot.config_of("Namespace")
               if dict(r.labels).get("istio.io/dataplane-mode") == "ambient"}
    return tuple((ns, None if selectors is None or ns in ambient else _union(selectors))
                 for ns, selectors in sorted(wanted.items()))
