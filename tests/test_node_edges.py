"""An edge addressed to an App Mesh virtual node is dropped beside its caller's edge to the
node's virtual service (meshobs.node_edges); an Istio edge never is. A Deployment ``ledger``
behind two Services, ``ledger`` and ``ledger-admin``, both called by ``teller``: the failing
teller -> ledger edge used to look addressed to a node, ``ledger-admin`` its richer twin, and it
was dropped, its 503s with it (teller's errors left unexplained). Bundled and served: ``diagnose
SERVICE`` (the graph phase's edge keys) and ``diagnose --all`` find the failing edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshobs.assemble import _pair, _to_node, dedupe_node_edges
from meshobs.cli.diagnose import scoped_question
from meshobs.collect import build_snapshot, collect
from meshobs.config import load_config
from meshobs.demo.author import Mesh as Author
from meshobs.demo.build import render_bundle
from meshobs.demo.expect import Expectation
from meshobs.demo.scenario import Scenario
from meshobs.demo.serve import serve_scenario
from meshobs.engine import diagnose, diagnose_all
from meshobs.model import Edge, Mesh, MeshSnapshot, ServiceRef, WorkloadRef
from meshobs.node_edges import deciding, dropped

TELLER, LEDGER = ServiceRef("vault", "teller"), ServiceRef("vault", "ledger")
FAILING_EDGE = "Edge vault/teller -> vault/ledger"


def counting_house() -> Scenario:
    """A bank's back office: ``ledger`` (Deployment and Service of one name) is also behind
    ``ledger-admin`` (its admin port's Service), and fails 14 % of teller's calls."""
    m = Author("counting-house", "Back office: the Deployment ledger behind the Services ledger and ledger-admin",
               "ledger answers 14% of teller's calls with 503 (its own, destination-reported); teller also "
               "calls ledger-admin, another Service of the same pods, without errors",
               ingress_host="counter.example.com:8080")
    m.namespace("vault")
    gw = m.ingress_gateway()
    teller = m.workload("vault", "teller", "v3", replicas=2)
    ledger = m.workload("vault", "ledger", "v2", name="ledger", replicas=2, other_services=("ledger-admin",))
    audit = m.workload("vault", "audit-trail", "v1")
    m.call(gw, teller, 18.0, 40.0, 180.0, ("503", "-", 0.13))
    m.call(teller, ledger, 18.0, 9.0, 45.0, ("503", "-", 0.14))
    m.call(teller, Author.through(ledger, "ledger-admin"), 0.5, 3.0, 9.0)
    m.call(ledger, audit, 6.0, 4.0, 15.0)
    return m.build(Expectation("callee-failing", target="vault/teller", subjects=("Service vault/ledger",),
                               symptom_ok=True))


def _codes(findings: object) -> set[tuple[str, str]]:
    return {(f.code, f.subject) for f in findings}  # type: ignore[attr-defined]


def _the_failing_edge(snapshot: MeshSnapshot) -> Edge:
    (edge,) = [e for e in snapshot.edges if e.source == WorkloadRef("vault", "teller-v3") and e.destination == LEDGER]
    return edge


# -- the rule, on edges ----------------------------------------------------------------------------

def _edge(mesh: Mesh, caller: str, service: str, workload: str | None, rate: float = 1.0) -> Edge:
    return Edge(source=WorkloadRef("m", caller), destination=ServiceRef("m", service),
                destination_workload=WorkloadRef("m", workload) if workload else None, mesh=mesh, request_rate=rate)


def test_an_istio_edge_to_a_service_named_like_its_workload_is_kept() -> None:
    edges = [_edge(Mesh.ISTIO, "teller", "ledger", "ledger", 18.0),
             _edge(Mesh.ISTIO, "teller", "ledger-admin", "ledger")]
    assert dedupe_node_edges(edges) == edges


def test_an_app_mesh_node_edge_is_dropped_only_beside_its_virtual_service_edge() -> None:
    xray = _edge(Mesh.APPMESH, "front", "cart", "cart", 12.0)  # X-Ray: addressed to the node
    cloudwatch = _edge(Mesh.APPMESH, "front", "cart.m.svc.cluster.local", "cart", 12.0)  # to the virtual service
    alone = _edge(Mesh.APPMESH, "front", "db", "db", 3.0)  # no virtual-service edge: the only word on it
    other_caller = _edge(Mesh.APPMESH, "batch", "cart", "cart", 1.0)
    external = _edge(Mesh.UNKNOWN, "front", "api.example.com", "api.example.com")  # X-Ray's remote node
    edges = [xray, cloudwatch, alone, other_caller, external]
    assert dedupe_node_edges(edges) == [cloudwatch, alone, other_caller, external]
    # The deciding edges of a node edge are its caller's edges to the node's workload.
    assert dropped(edges, _to_node, _pair) == {0}
    assert deciding(edges, [xray], _to_node, _pair) == [xray, cloudwatch]
    assert deciding(edges, [cloudwatch, external], _to_node, _pair) == []


def test_app_mesh_keeps_its_virtual_service_edge_once_named_like_the_deployment() -> None:
    """The same shape in App Mesh, told apart by App Mesh's names: X-Ray's edge to the node
    ledger_vault is dropped beside CloudWatch's to the virtual service ledger.vault...; under
    Kubernetes names CloudWatch's edge reads vault/teller -> Service vault/ledger at Deployment
    vault/ledger, and is kept although teller calls ledger-admin on the same node too."""
    from datetime import UTC, datetime

    from meshobs.assemble import assemble
    from meshobs.model import ResponseStat, Service, SnapshotPart, Workload

    def appmesh(destination: str, rate: float, errors: float = 0.0) -> Edge:
        return Edge(source=WorkloadRef("bank", "teller_vault"), destination=ServiceRef("bank", destination),
                    destination_workload=WorkloadRef("bank", "ledger_vault"), mesh=Mesh.APPMESH,
                    request_rate=rate, responses=(ResponseStat("2xx", "-", rate - errors),
                                                  *((ResponseStat("5xx", "-", errors),) if errors else ())))
    xray = appmesh("ledger_vault", 18.0, 2.52)
    cloudwatch = appmesh("ledger.vault.svc.cluster.local", 18.0, 2.52)
    admin = appmesh("ledger-admin.vault.svc.cluster.local", 0.5)
    part = SnapshotPart(
        edges=[xray, cloudwatch, admin],
        workloads=[Workload(WorkloadRef("vault", w)) for w in ("teller", "ledger")],
        services=[Service(ServiceRef("vault", s)) for s in ("teller", "ledger", "ledger-admin")])
    snapshot = assemble(part, time=datetime(2026, 11, 20, 12, tzinfo=UTC), window_s=300.0)
    assert sorted((str(e.destination), e.request_rate, e.error_rate) for e in snapshot.edges) == [
        ("vault/ledger", 18.0, 2.52), ("vault/ledger-admin", 0.5, 0.0)]


# -- the mesh, bundled -----------------------------------------------------------------------------

def test_a_bundled_ledger_behind_two_services_keeps_its_failing_edge() -> None:
    snapshot = build_snapshot(render_bundle(counting_house()))
    edge = _the_failing_edge(snapshot)
    assert edge.request_rate == pytest.approx(18.0) and edge.error_rate == pytest.approx(18.0 * 0.14)
    report = diagnose_all(snapshot)
    found = _codes(f for r in report.reports for f in r.findings)
    assert {("MSH0402", FAILING_EDGE), ("MSH0401", "Service vault/ledger")} <= found
    assert ("MSH0402", FAILING_EDGE) in _codes(diagnose(snapshot, TELLER).findings)


# -- the mesh, served: diagnose SERVICE (the graph phase) and --all ---------------------------------

@pytest.mark.slow
def test_a_served_ledger_behind_two_services_is_found_by_diagnose_service_and_all(
        tmp_path: Path, require_prometheus: None) -> None:
    with serve_scenario(counting_house(), tmp_path / "demo") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        whole = build_snapshot(collect(config), origin="live")
        assert _the_failing_edge(whole).error_rate == pytest.approx(18.0 * 0.14, rel=0.05)
        found = _codes(f for r in diagnose_all(whole).reports for f in r.findings)
        assert {("MSH0402", FAILING_EDGE), ("MSH0401", "Service vault/ledger")} <= found
        for target in (TELLER, LEDGER):
            scoped = build_snapshot(collect(config, question=scoped_question(str(target), None)), origin="live")
            assert _the_failing_edge(scoped).error_rate == pytest.approx(18.0 * 0.14, rel=0.05)
            assert _codes(diagnose(scoped, target).findings) == _codes(diagnose(whole, target).findings)
        assert ("MSH0402", FAILING_EDGE) in _codes(diagnose(whole, TELLER).findings)
        assert ("MSH0401", "Service vault/ledger") in _codes(diagnose(whole, LEDGER).findings)
