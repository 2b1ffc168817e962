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
