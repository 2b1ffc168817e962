"""App Mesh Envoy names -> virtual nodes (the mapping helper B's Envoy parser calls)."""

from __future__ import annotations

import pytest

from meshobs.collectors.appmesh_names import (
    listener_workload,
    parse_cluster_name,
    parse_listener_name,
    parse_node_id,
    target_of_cluster,
)
from meshobs.model import WorkloadRef


@pytest.mark.parametrize(("name", "meshes", "expected"), [
    ("cds_egress_shop_cart-v1_http_8080", (), ("egress", "shop", "cart-v1", "http", 8080)),
    ("cds_ingress_shop_front_http2_9080", (), ("ingress", "shop", "front", "http2", 9080)),
    ("cds_egress_colorapp_blue_colorapp_grpc_8080", (), ("egress", "colorapp", "blue_colorapp", "grpc", 8080)),
    # A mesh name with an underscore is only split right when the mesh is known.
    ("cds_egress_my_mesh_red_tcp_5432", ("my_mesh",), ("egress", "my_mesh", "red", "tcp", 5432)),
])
def test_cluster_names(name: str, meshes: tuple[str, ...], expected: tuple[object, ...]) -> None:
    parsed = parse_cluster_name(name, meshes)
    assert parsed is not None
    assert (parsed.direction, parsed.mesh, parsed.virtual_node, parsed.protocol, parsed.port) == expected


@pytest.mark.parametrize("name", ["outbound|9080||reviews.default.svc.cluster.local", "cds_egress_shop_http_80",
                                  "cds_sideways_a_b_http_1", "cds_egress_a_b_smtp_25", "cds_egress_a_b_http_x",
                                  "inbound|8080||", "local_app"])
def test_not_appmesh_cluster(name: str) -> None:
    assert parse_cluster_name(name) is None


def test_target_of_egress_only() -> None:
    assert target_of_cluster("cds_egress_shop_cart-v1_http_8080") == WorkloadRef("shop", "cart-v1")
    assert target_of_cluster("cds_ingress_shop_cart-v1_http_8080") is None


def test_listener_and_node_id() -> None:
    listener = parse_listener_name("lds_ingress_0.0.0.0_15000")
    assert listener is not None and (listener.direction, listener.address, listener.port) == \
        ("ingress", "0.0.0.0", 15000)
    assert parse_listener_name("virtualInbound") is None
    node = parse_node_id("mesh/shop/virtualNode/front_shop")
    assert node is not None and node.workload == WorkloadRef("shop", "front_shop")
    arn = "arn:aws:appmesh:us-east-1:123456789012:mesh/shop/virtualGateway/ingress-gw"
    gw = parse_node_id(arn)
    assert gw is not None and (gw.kind, gw.name) == ("virtualGateway", "ingress-gw")
    assert parse_node_id("sidecar~10.0.0.1~cart.default~default.svc.cluster.local") is None
    assert listener_workload("lds_egress_0.0.0.0_15001", "mesh/shop/virtualNode/cart") == WorkloadRef("shop", "cart")
    assert listener_workload("lds_egress_0.0.0.0_15001", "not-an-appmesh-id") is None


# -- App Mesh names -> Kubernetes names (issue 10, Build 7) ------------------------------------

def _k8s_side(name: str) -> tuple[list[object], list[object], list[object], list[object]]:
    from tests.support.scenarios import snapshot

    snap = snapshot(name)
    return list(snap.config), list(snap.workloads), list(snap.pods), list(snap.services)


def test_controller_names_map_onto_the_kubernetes_objects() -> None:
    from meshobs.collectors.appmesh_names import names_from
    from meshobs.model import ServiceRef

    config, workloads, pods, services = _k8s_side("appmesh-controller-names")
    names = names_from(config, workloads, pods, services)  # type: ignore[arg-type]
    mesh = "bookstore-mesh"
    assert names.workloads == {WorkloadRef(mesh, f"{n}_books"): WorkloadRef("books", n)
                               for n in ("books-gateway", "frontend", "catalog-v1", "catalog-v2", "reviews")}
    assert names.services == {ServiceRef(mesh, f"{s}.books.svc.cluster.local"): ServiceRef("books", s)
                              for s in ("catalog", "reviews", "frontend")}
    # A virtual node addressed as a service (X-Ray's graph) reads as its workload.
    assert names.service(ServiceRef(mesh, "catalog-v2_books")) == ServiceRef("books", "catalog-v2")


def test_without_resources_the_controllers_conventions_decide_if_the_object_exists() -> None:
    from meshobs.collectors.appmesh_names import names_from
    from meshobs.model import ServiceRef

    _config, workloads, pods, services = _k8s_side("appmesh-controller-names")
    observed = [WorkloadRef("m", "catalog-v2_books"), WorkloadRef("m", "ghost_books"),
                ServiceRef("m", "catalog.books"), ServiceRef("m", "ghost.books.svc.cluster.local")]
    names = names_from([], workloads, pods, services, observed)  # type: ignore[arg-type]
    assert names.workloads == {WorkloadRef("m", "catalog-v2_books"): WorkloadRef("books", "catalog-v2")}
    assert names.services == {ServiceRef("m", "catalog.books"): ServiceRef("books", "catalog")}


@pytest.mark.parametrize("demo", ["ecommerce-appmesh", "migration"])
def test_a_mesh_named_after_its_namespace_needs_no_mapping(demo: str) -> None:
    from meshobs.cli.common import load_bundle
    from meshobs.collect import build_snapshot
    from meshobs.collectors.appmesh_names import names_from

    bundle, _config, origin = load_bundle(f"demo:{demo}", None, quiet_demo=True)
    snap = build_snapshot(bundle, origin=origin)
    assert not names_from(snap.config, snap.workloads, snap.pods, snap.services)


def test_every_source_speaks_kubernetes_names_after_assembly() -> None:
    from meshobs.checks.base import Settings
    from meshobs.engine import diagnose
    from meshobs.model import Mesh, ServiceRef
    from tests.support.scenarios import snapshot

    snap = snapshot("appmesh-controller-names")
    assert {s.ref.namespace for s in snap.services} == {"books"}
    assert {w.ref.namespace for w in snap.workloads} == {"books"}
    edges = {(str(e.source), str(e.destination), str(e.destination_workload)) for e in snap.edges}
    assert ("books/frontend", "books/catalog", "books/catalog-v2") in edges  # CloudWatch
    assert all(p.workload is not None and p.workload.namespace == "books" for p in snap.proxies)  # Envoy
    spans = {(s.service, s.workload) for t in snap.traces for s in t.spans}  # X-Ray
    assert ("catalog.books", WorkloadRef("books", "catalog-v2")) in spans
    assert all(e.mesh is Mesh.APPMESH for e in snap.edges)
    report = diagnose(snap, ServiceRef("books", "frontend"), Settings())
    assert report.findings[0].subject in ("Workload books/catalog-v2", "Service books/catalog")
    assert {c.id: c.status for c in report.checks}["appmesh.resilience"] != "skipped"


def test_an_api_shaped_resource_lines_up_with_the_kubernetes_names() -> None:
    """Exported describe-* JSON knows the mesh and the App Mesh names only: the controller's
    conventions tie it to the Kubernetes workload and Service all sources are named after."""
    from meshobs import appmesh_spec
    from meshobs.collectors.appmesh_config import from_document
    from meshobs.model import ServiceRef

    node = {"virtualNode": {"meshName": "bookstore-mesh", "virtualNodeName": "catalog-v2_books",
                            "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}}}
    router = {"virtualRouter": {"virtualRouterName": "catalog-router_books"}}
    service = {"virtualService": {"meshName": "bookstore-mesh", "virtualServiceName": "catalog.books.svc.cluster.local",
                                  "spec": {"provider": router}}}
    [vn] = from_document(node)
    [vs] = from_document(service)
    assert appmesh_spec.node_matches(vn, WorkloadRef("books", "catalog-v2"))
    assert not appmesh_spec.node_matches(vn, WorkloadRef("books", "catalog-v1"))
    assert appmesh_spec.service_matches(vs, ServiceRef("books", "catalog"))
    assert not appmesh_spec.service_matches(vs, ServiceRef("shop", "catalog"))
