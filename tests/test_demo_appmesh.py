"""The App Mesh demos: round trip through the real normalisers, one graph for the migration,
the same fault classes as the Istio demo, and the shipped bundles match a fresh render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshobs.bundle import read_bundle
from meshobs.checks.base import Settings
from meshobs.cli.main import cli
from meshobs.collect import build_snapshot
from meshobs.demo.build import BUNDLES, render_bundle
from meshobs.demo.catalog import export_intended, list_demos, load_demo
from meshobs.demo.scenario import builtin_scenario
from meshobs.engine import diagnose
from meshobs.model import Mesh, MeshSnapshot, ServiceRef, WorkloadRef

SHOP = "shop"
APPMESH_DEMOS = ["ecommerce-appmesh", "migration"]


def _snapshot(name: str) -> MeshSnapshot:
    return build_snapshot(load_demo(name), origin=f"demo:{name}")


@pytest.fixture(scope="module")
def appmesh() -> MeshSnapshot:
    return _snapshot("ecommerce-appmesh")


def test_both_demos_are_listed_with_one_line() -> None:
    demos = dict(list_demos())
    for name in APPMESH_DEMOS:
        assert demos[name] and "\n" not in demos[name]


@pytest.mark.parametrize("name", APPMESH_DEMOS)
def test_regenerating_gives_the_shipped_bundle(name: str) -> None:
    shipped = read_bundle(BUNDLES / f"{name}.tar.gz")
    fresh = render_bundle(builtin_scenario(name))
    assert [s.name for s in fresh.sources] == [s.name for s in shipped.sources]
    for new, old in zip(fresh.sources, shipped.sources):
        assert [(p.key, p.status, p.body) for p in new.payloads] == \
            [(p.key, p.status, p.body) for p in old.payloads], f"{new.name}: run python -m meshobs.demo.build"


def test_appmesh_bundle_has_appmesh_sources_only() -> None:
    bundle = load_demo("ecommerce-appmesh")
    kinds = [s.kind for s in bundle.sources]
    assert bundle.config == {"mesh": "appmesh"}
    assert {"cloudwatch", "xray", "kubernetes", "envoy"} == set(kinds)
    assert "prometheus" not in kinds and "jaeger" not in kinds
    pods = json.loads(bundle.sources[0].get("pods").body)["items"]  # type: ignore[union-attr]
    containers = {c["name"] for p in pods for c in p["spec"]["containers"]}
    assert "envoy" in containers and "istio-proxy" not in containers
    envoy = next(s for s in bundle.sources if s.kind == "envoy" and "cart-v1" in s.name)
    node = json.loads(envoy.get("server_info").body)["node"]  # type: ignore[union-attr]
    assert node["id"] == "mesh/shop/virtualNode/cart-v1"


def test_appmesh_round_trip_services_edges_and_rates(appmesh: MeshSnapshot) -> None:
    assert all(s.ok for s in appmesh.sources), [s for s in appmesh.sources if not s.ok]
    assert {str(s.ref) for s in appmesh.services} >= {"shop/frontend", "shop/product-service",
                                                      "shop/cart-service", "shop/database-service"}
    assert all(s.mesh is Mesh.APPMESH for s in appmesh.services)
    edges = {(str(e.source), str(e.destination), str(e.destination_workload)): e for e in appmesh.edges}
    # One edge per caller -> target node: X-Ray's node-addressed duplicates are gone.
    assert len(edges) == len(appmesh.edges) == 7
    cart_db = edges[("shop/cart-v1", "shop/database-service", "shop/database-v1")]
    assert cart_db.request_rate == pytest.approx(12.0)
    assert cart_db.error_ratio == pytest.approx(0.45)
    assert cart_db.rate_by_code(errors_only=True) == {"5xx": pytest.approx(5.4)}
    assert cart_db.latency is not None and cart_db.latency.p99 == pytest.approx(30.0)
    product = appmesh.edges_into(ServiceRef(SHOP, "product-service"))
    split = {str(e.destination_workload): e.request_rate for e in product}
    assert split == {"shop/product-v1": pytest.approx(32.4), "shop/product-v2": pytest.approx(3.6)}


def test_appmesh_traces_mapped_to_workloads_and_services(appmesh: MeshSnapshot) -> None:
    assert len(appmesh.traces) == 30
    spans = [s for t in appmesh.traces for s in t.spans]
    assert {s.workload for s in spans} >= {WorkloadRef(SHOP, "frontend-v1"), WorkloadRef(SHOP, "cart-v1")}
    by_workload = {s.workload: s.service for s in spans if s.workload is not None}
    assert by_workload[WorkloadRef(SHOP, "cart-v1")] == "cart-service.shop"
    assert by_workload[WorkloadRef(SHOP, "product-v2")] == "product-service.shop"


def test_appmesh_proxies_are_virtual_nodes_with_ejected_database(appmesh: MeshSnapshot) -> None:
    cart = appmesh.proxies_of(WorkloadRef(SHOP, "cart-v1"))
    assert len(cart) == 2
    for proxy in cart:
        cluster = proxy.cluster("cds_egress_shop_database-v1_http_8080")
        assert cluster is not None and cluster.direction == "outbound"
        assert cluster.service_host == "database-service.shop.svc.cluster.local"
        assert (cluster.membership_healthy, cluster.membership_total, cluster.outlier_ejections_active) == (0, 2, 2)
        assert "lds_ingress_0.0.0.0_15000" in proxy.listeners
    frontend = appmesh.proxies_of(WorkloadRef(SHOP, "frontend-v1"))[0]
    healthy = frontend.cluster("cds_egress_shop_product-v1_http_8080")
    assert healthy is not None and healthy.membership_healthy == 2 and healthy.outlier_ejections_active == 0


def test_appmesh_config_has_the_common_layout(appmesh: MeshSnapshot) -> None:
    mesh_config = [c for c in appmesh.config if c.kind != "Namespace"]
    kinds = {c.kind for c in mesh_config}
    assert kinds == {"Mesh", "VirtualNode", "VirtualService", "VirtualRouter", "VirtualGateway", "GatewayRoute"}
    assert all("meshobs" in c.spec for c in mesh_config)
    router = next(c for c in appmesh.config if c.name == "product-service-router")
    targets = router.spec["meshobs"]["routes"][0]["targets"]
    assert {t["virtual_node"]: t["weight"] for t in targets} == {"product-v1": 90, "product-v2": 10}
    cart = next(c for c in appmesh.config if c.kind == "VirtualNode" and c.name == "cart-v1")
    layout = cart.spec["meshobs"]
    assert layout["mesh"] == SHOP and [b["virtual_service"] for b in layout["backends"]] == ["database-service"]
    assert layout["health_checks"] and layout["outlier_detection"]


def _codes(snapshot: MeshSnapshot, service: str) -> set[tuple[str, str]]:
    return {(f.code, f.subject) for f in diagnose(snapshot, ServiceRef(SHOP, service)).findings}


def test_cart_service_shows_the_same_fault_classes_as_on_istio(appmesh: MeshSnapshot) -> None:
    istio = _codes(_snapshot("ecommerce"), "cart-service")
    on_appmesh = _codes(appmesh, "cart-service")
    expected = {("MSH0406", "Service shop/database-service"), ("MSH0407", "Service shop/database-service"),
                ("MSH0401", "Service shop/cart-service"), ("MSH0401", "Service shop/database-service"),
                ("MSH0402", "Edge shop/cart-service -> shop/database-service")}
    assert expected <= istio and expected <= on_appmesh
    report = diagnose(appmesh, ServiceRef(SHOP, "cart-service"))
    assert report.findings[0].code == "MSH0406"  # the ejection ranks first, as on Istio
    # the slow-hop analysis runs on X-Ray traces (asked for: nothing is slow here)
    assert "MSH0502" not in {f.code for f in report.findings}
    asked = diagnose(appmesh, ServiceRef(SHOP, "cart-service"), Settings(explain_hops=True))
    assert "MSH0502" in {f.code for f in asked.findings}


def test_migration_is_one_graph_with_cross_mesh_edges_once() -> None:
    result = CliRunner().invoke(cli, ["graph", "--from", "demo:migration", "-o", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    meshes = {f"{s['namespace']}/{s['name']}": s["mesh"] for s in doc["services"]}
    assert meshes["shop/frontend"] == meshes["shop/product-service"] == "istio"
    assert meshes["shop/cart-service"] == meshes["shop/database-service"] == "appmesh"
    pairs = [(e["source_workload"], e["destination"], e["destination_workload"]) for e in doc["edges"]]
    assert len(pairs) == len(set(pairs)) == 7
    assert pairs.count(("shop/frontend-v1", "shop/cart-service", "shop/cart-v1")) == 1  # Istio -> App Mesh
    assert pairs.count(("shop/product-v1", "shop/database-service", "shop/database-v1")) == 1
    assert pairs.count(("shop/cart-v1", "shop/database-service", "shop/database-v1")) == 1  # App Mesh
    by_pair = {(e["source"], e["destination_workload"]): e for e in doc["edges"]}
    assert by_pair[("shop/frontend", "shop/cart-v1")]["mesh"] == "istio"
    assert by_pair[("shop/cart-service", "shop/database-v1")]["mesh"] == "appmesh"
    assert by_pair[("shop/frontend", "shop/cart-v1")]["request_rate"] == pytest.approx(12.0)
    assert {s["name"] for s in doc["sources"]} >= {"prometheus", "jaeger", "cloudwatch", "xray", "kubernetes"}


def test_migration_proxies_of_both_meshes() -> None:
    snapshot = _snapshot("migration")
    cart = snapshot.proxies_of(WorkloadRef(SHOP, "cart-v1"))
    frontend = snapshot.proxies_of(WorkloadRef(SHOP, "frontend-v1"))
    assert cart and all(p.node_id == "mesh/shop/virtualNode/cart-v1" for p in cart)
    assert frontend and all(p.node_id and p.node_id.startswith("sidecar~") for p in frontend)
    assert snapshot.workload(WorkloadRef(SHOP, "cart-v1")).mesh is Mesh.APPMESH  # type: ignore[union-attr]
    assert snapshot.workload(WorkloadRef(SHOP, "frontend-v1")).mesh is Mesh.ISTIO  # type: ignore[union-attr]


def test_export_intended_writes_the_appmesh_crds(tmp_path: Path) -> None:
    import yaml

    written = {p.name for p in export_intended("ecommerce-appmesh", tmp_path)}
    assert written == {"kubernetes.yaml", "appmesh.yaml"}
    docs = list(yaml.safe_load_all((tmp_path / "appmesh.yaml").read_text()))
    assert {d["apiVersion"] for d in docs} == {"appmesh.k8s.aws/v1beta2"}
    assert {"migration": {"kubernetes.yaml", "istio.yaml", "appmesh.yaml"}}["migration"] == \
        {p.name for p in export_intended("migration", tmp_path / "m")}
