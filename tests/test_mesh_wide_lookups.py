"""The per-snapshot lookups the checks and the engine use in a ``--all`` give, for every service
and hop, what the per-service scans they replaced gave.

Each scan below is the code as it was before its facts were found once per snapshot; the demos
are those where the facts exist (refused calls, Envoy/config drift, traces, certificates, hops
with and without errors).
"""

from __future__ import annotations

import pytest

from meshobs.checks.authz import _refused, _refused_edges
from meshobs.checks.certs import _certs, _certs_by_workload
from meshobs.checks.intended import as_callers_see
from meshobs.checks.policy_scope import FILTERS
from meshobs.checks.traces import _traces_of
from meshobs.checks.traffic import outbound_edges
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.drift.compare import INTENDED_LIVE
from meshobs.drift.findings import drift_findings, finding_of, resource_of, snapshot_drift, touched
from meshobs.drift.run import EFFECTIVE
from meshobs.engine.evidence import _hop_edges, _inbound_p99
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.trace_names import span_service_matches

DEMOS = ("weight-drift", "envoyfilter-nack", "authz-deny-legacy", "jwt-valid-tokens", "migration", "cert-expiry")


@pytest.fixture(scope="module", params=DEMOS)
def snapshot(request: pytest.FixtureRequest) -> MeshSnapshot:
    return build_snapshot(load_demo(request.param), origin=f"demo:{request.param}")


def refs(snapshot: MeshSnapshot) -> list[ServiceRef]:
    return sorted({s.ref for s in snapshot.services} | {e.destination for e in snapshot.edges})


def test_refused_edges(snapshot: MeshSnapshot) -> None:
    refused = _refused_edges(snapshot)
    for e in snapshot.edges:
        assert (id(e) in refused) == any(_refused(e, code) > 0 for code in FILTERS)
    if snapshot.origin in ("demo:authz-deny-legacy", "demo:jwt-valid-tokens"):
        assert refused  # the demos of refusals have some: the comparison is not of empty sets


def test_drift_by_service(snapshot: MeshSnapshot) -> None:
    for pair, codes in ((EFFECTIVE, ("MSH0203", "MSH0280", "MSH0204", "MSH0281")),
                        (INTENDED_LIVE, ("MSH0207", "MSH0283", "MSH0284", "MSH0285"))):
        run = snapshot_drift(snapshot, pair)
        if snapshot.origin == "demo:weight-drift" and pair == EFFECTIVE:
            assert run.active  # the comparison is not of empty lists
        for service in refs(snapshot):
            scanned = [finding_of(d, snapshot, "x", service=service) for d in run.active if d.code in codes
                       and (r := resource_of(snapshot, d.resource)) is not None and service in touched(snapshot, r)]
            assert list(drift_findings(snapshot, service, pair, codes, "x")) == scanned


def test_traces_of(snapshot: MeshSnapshot) -> None:
    names = sorted({s.service for t in snapshot.traces for s in t.spans})
    for service in refs(snapshot):
        seen: dict[str, object] = {}
        for name in names:
            if span_service_matches(name, service):
                for trace in snapshot.traces_through(name):
                    seen.setdefault(trace.trace_id, trace)
        assert _traces_of(snapshot, service) == list(seen.values())


def test_workload_certs(snapshot: MeshSnapshot) -> None:
    for service in refs(snapshot):
        scanned = []
        for w in snapshot.workloads_of(service):
            seen: set[tuple[str, str]] = set()
            certs = [c for p in snapshot.proxies_of(w.ref) for c in snapshot.certs_of(p.id)]
            certs += _certs_by_workload(snapshot).get(w.ref, [])
            for c in certs:
                if (c.serial, c.role.value) not in seen:
                    seen.add((c.serial, c.role.value))
                    scanned.append((w, c))
        assert list(_certs(snapshot, service)) == scanned


def test_hop_edges_and_caller_p99(snapshot: MeshSnapshot) -> None:
    for caller in refs(snapshot):
        inbound = [e.latency.p99 for e in snapshot.edges_into(caller) if e.destination_workload is not None
                   and e.latency is not None and e.latency.p99 is not None and e.request_rate > 0]
        assert _inbound_p99(snapshot, caller) == (max(inbound) if inbound else None)
        for callee in refs(snapshot):
            scanned = as_callers_see(snapshot, [e for e in outbound_edges(snapshot, caller) if e.destination == callee])
            assert _hop_edges(snapshot, caller, callee) == scanned
