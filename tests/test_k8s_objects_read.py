"""The Kubernetes object reader's shortcuts answer what the plain reading answers: flattening a
list without paths, a ServicePort remembered per way of writing a port, a malformed object
caught without a context manager per object."""

from __future__ import annotations

from typing import Any

import pytest

from meshobs.collectors.k8s_objects import (
    _service_port,
    flatten_objects,
    flatten_with_paths,
    objects_to_part,
    service_port,
)
from meshobs.model import Layer, ServiceRef, WorkloadRef

DOCS: list[Any] = [
    {"apiVersion": "v1", "kind": "ServiceList", "items": [
        {"metadata": {"name": "a"}},
        {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "b"}},
        "not an object",
        {"kind": None, "metadata": {"name": "c"}},
        {"kind": 7, "metadata": {"name": "d"}},
        {"kind": "List", "apiVersion": "v1", "items": [{"kind": "Pod", "metadata": {"name": "e"}}]},
        {"kind": "PodList", "apiVersion": "v1", "items": [{"metadata": {"name": "f"}}]},
        {"kind": "ConfigMapList", "items": "not a list"},
    ]},
    {"kind": "List", "items": []},
    {"kind": "Service", "metadata": {"name": "alone"}},
    {"kind": "ServiceList", "items": {"not": "a list"}},
    ["not", "a", "mapping"],
    {"kind": "", "items": [{"metadata": {"name": "g"}}]},
]


@pytest.mark.parametrize("doc", DOCS)
def test_flatten_objects_is_flatten_with_paths_without_the_paths(doc: Any) -> None:
    assert list(flatten_objects(doc)) == [obj for _path, obj in flatten_with_paths(doc)]


PORTS: list[dict[str, Any]] = [
    {"port": 80, "targetPort": 8080},
    {"port": 80, "targetPort": 8080.0},  # equal to 8080 as a key, but read as the text "8080.0"
    {"port": 80, "targetPort": "8080"},
    {"port": 80, "targetPort": "http", "name": "http", "protocol": "udp"},
    {"port": 80, "targetPort": True},
    {"port": 80, "name": 1},
    {"port": 80, "name": True},
    {"port": "80", "appProtocol": "grpc"},
    {"port": 80, "targetPort": ["unhashable"]},
]


def test_service_port_remembered_is_the_port_read() -> None:
    for _ in range(2):  # the second time from the memory
        assert [service_port(p) for p in PORTS] == [_service_port(p) for p in PORTS]
    assert service_port(PORTS[0]).target_port == 8080
    assert service_port(PORTS[1]).target_port == "8080.0"


def _service(name: str, selector: Any, ports: Any = ()) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": selector, "ports": list(ports)}}


def _deployment(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {}}}}


def test_a_malformed_object_costs_itself_only() -> None:
    objects = [
        (_deployment("cart-v1", {"app": "cart", "version": "v1"}), "kubernetes"),
        (_deployment("cart-v2", {"app": "cart", "version": "v2", "pod-template-hash": "abc"}), "kubernetes"),
        ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "broken", "namespace": "shop"},
          "spec": ["not", "a", "mapping"]}, "kubernetes"),
        (_service("cart", {"app": "cart"}, [{"port": 80}]), "kubernetes"),
        (_service("bad", {"app": "cart"}, [{"port": "²"}]), "kubernetes"),  # a digit int() refuses
        (_service("none", {}), "kubernetes"),
    ]
    problems: list[str] = []
    part = objects_to_part(objects, Layer.LIVE, problems)
    assert [w.ref for w in part.workloads] == [WorkloadRef("shop", "cart-v1"), WorkloadRef("shop", "cart-v2")]
    assert [dict(w.labels) for w in part.workloads] == [{"app": "cart", "version": "v1"},
                                                        {"app": "cart", "version": "v2"}]
    assert [s.ref for s in part.services] == [ServiceRef("shop", "cart"), ServiceRef("shop", "none")]
    assert part.services[0].workloads == (WorkloadRef("shop", "cart-v1"), WorkloadRef("shop", "cart-v2"))
    assert part.services[1].workloads == ()
    assert part.workloads[0].services == (ServiceRef("shop", "cart"),)
    assert len(problems) == 2
    assert problems[0].startswith("Deployment shop/broken") and problems[1].startswith("Service shop/bad")
    with pytest.raises(ValueError):
        objects_to_part(objects, Layer.LIVE, None)


def test_workloads_and_services_are_built_in_their_field_order() -> None:
    """Both are built positionally: a field added or moved in the model must be added or moved
    here too."""
    from dataclasses import fields

    from meshobs.collectors.k8s_objects import SERVICE_FIELDS, _workload_fields
    from meshobs.model import Mesh, Service, Workload

    assert tuple(f.name for f in fields(Service)) == SERVICE_FIELDS
    made = _workload_fields(WorkloadRef("shop", "cart-v1"), {"app": "cart"}, "cart", True, Mesh.ISTIO,
                            {"sidecar.istio.io/inject": "true"}, "istio/proxyv2", None)
    assert tuple(made) == tuple(f.name for f in fields(Workload))
    assert Workload(*made.values()) == Workload(**made)
