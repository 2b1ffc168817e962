"""The neighbourhood of a service: what ``diagnose SERVICE`` needs collected beyond the graph.

The diagnosis of a service runs the checklist on the service and on every service the root-cause
walk reaches downstream (:func:`meshobs.engine.ranking.downstream`, the same walk the engine
takes, to the same depth), and the checks of a service read its own proxies and its callers'
proxies (their clusters hold its endpoints, their routes its split). So the neighbourhood is:

* services: the target and every service downstream of it within the walk's depth;
* workloads: the workloads of those services, and every workload that calls one of them.

Computed from the graph phase's snapshot (the request-rate edges and the pod list); the scoped
phase then collects Envoy, traces, latency and configuration for this set only.
"""

from __future__ import annotations

from meshobs.collectors.base import Scope
from meshobs.engine import callees_of
from meshobs.engine.ranking import MAX_DEPTH, downstream
from meshobs.model import MeshSnapshot, ServiceRef, WorkloadRef


def neighbourhood(snapshot: MeshSnapshot, target: ServiceRef) -> Scope:
    """The Scope a diagnosis of ``target`` reads (see the module docstring)."""
    services = set(downstream(target, lambda s: callees_of(snapshot, s), MAX_DEPTH))
    workloads: set[WorkloadRef] = set()
    for service in services:
        workloads.update(w.ref for w in snapshot.workloads_of(service))
        workloads.update(e.source for e in snapshot.edges_into(service) if not e.source.is_unknown)
    return Scope(target=target, services=frozenset(services), workloads=frozenset(workloads))
