"""The ranking walk down a gRPC path: a leaf answers status 14 UNAVAILABLE inside HTTP 200 (on
its own, or because its callers' breakers overflow: Envoy refuses a gRPC call the same way, UO),
the services above pass it on as 14 or wrap it as 2 UNKNOWN, and the HTTP front end answers 500.
Every diagnosis along the chain ranks the leaf's cause first, and the evidence names the gRPC
statuses. Rendered through the demo's Prometheus and Envoy payloads, then diagnosed."""

from __future__ import annotations

from functools import cache

import pytest

from meshobs.collect import build_snapshot
from meshobs.demo.author import Mesh
from meshobs.demo.build import render_bundle
from meshobs.demo.expect import Expectation
from meshobs.engine import diagnose
from meshobs.model import MeshSnapshot, ServiceRef

FRONT, ORDERS = ServiceRef("grain", "weighbridge"), ServiceRef("grain", "intake-orders")
INVENTORY, PRICING, LEDGER = (ServiceRef("grain", "bin-inventory"), ServiceRef("grain", "grade-pricing"),
                              ServiceRef("silo", "silo-ledger"))


@cache
def _silo(wrapped_as: str, leaf_flag: str) -> MeshSnapshot:
    m = Mesh(f"grain-silo-{wrapped_as}-{leaf_flag}", "gRPC chain: the silo ledger answers UNAVAILABLE",
             "silo-ledger's calls end with grpc-status 14 for 10 % of them")
    gw = m.ingress_gateway()
    front = m.workload("grain", "weighbridge", "v3", replicas=2)
    orders = m.workload("grain", "intake-orders", "v5", port=9090)
    inventory = m.workload("grain", "bin-inventory", "v2", port=9090)
    pricing = m.workload("grain", "grade-pricing", "v1", port=9090)
    ledger = m.workload("silo", "silo-ledger", "v7", port=9090)
    m.call(gw, front, 20.0, 60.0, 220.0, ("500", "-", 0.10))
    m.call(front, orders, 20.0, 50.0, 200.0, ("200", "-", 0.10), protocol="grpc", grpc_statuses=("0", wrapped_as))
    m.call(orders, pricing, 20.0, 5.0, 20.0, protocol="grpc")  # beside the path: clean
    m.call(orders, inventory, 20.0, 40.0, 180.0, ("200", "-", 0.10), protocol="grpc", grpc_statuses=("0", "14"))
    m.call(inventory, ledger, 20.0, 30.0, 160.0, ("200", leaf_flag, 0.10), protocol="grpc",
           grpc_statuses=("0", "14"))
    scenario = m.build(Expectation("callee-failing", target="grain/weighbridge", subjects=(f"Service {LEDGER}",)))
    return build_snapshot(render_bundle(scenario), origin="test")


@pytest.mark.parametrize("wrapped_as", ["14", "2"])
@pytest.mark.parametrize(("leaf_flag", "cause"), [("-", "MSH0401"), ("UO", "MSH0405")])
def test_the_leafs_cause_ranks_first_down_a_grpc_path(wrapped_as: str, leaf_flag: str, cause: str) -> None:
    snapshot = _silo(wrapped_as, leaf_flag)
    for target in (FRONT, ORDERS, INVENTORY):
        report = diagnose(snapshot, target)
        first = report.findings[0]
        assert (first.code, first.service) == (cause, LEDGER), (target, [(f.code, f.subject) for f in report.findings])
        assert report.status == "failing"
        # Every symptom on the path is explained by it; nothing beside the path is reported.
        explained = {f.subject for f in report.findings[1:] if f.caused_by}
        assert f"Service {target}" in explained
        assert not any(f.service == PRICING for f in report.findings)
    front = diagnose(snapshot, FRONT)
    edge = next(f for f in front.findings if f.subject == f"Edge {FRONT} -> {ORDERS}")
    name = {"14": "UNAVAILABLE", "2": "UNKNOWN"}[wrapped_as]
    assert set(edge.evidence["by_code"]) == {f"200 grpc-status {wrapped_as} {name}"}  # type: ignore[arg-type]
