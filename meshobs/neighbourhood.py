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
    return Scope(target=target, services=frozenset(services), workloads=frozenset(workloads))
