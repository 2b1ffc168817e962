"""The demo fault scenarios through this helper's checks (configuration, certificates, slow hops).

For each built-in bundle and each service: the exact set of (code, subject) at warning or above.
Services not listed must have none; "healthy" must have none anywhere.
"""

from __future__ import annotations

from functools import cache

import pytest

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot, ServiceRef
from tests.support.e2_builders import pairs, run


@cache
def demo(name: str) -> MeshSnapshot:
    return build_snapshot(load_demo(name))


EXPECTED: dict[str, dict[str, set[tuple[str, str]]]] = {
    "healthy": {},
    "cert-expiry": {"shop/cart-service": {("MSH0302", "Workload shop/cart-v1")}},
    "mtls-mismatch": {"shop/database-service": {
        ("MSH0306", "DestinationRule shop/database-service-from-cart"),
        ("MSH0307", "Edge shop/cart-v1 -> shop/database-service")}},
    "weight-drift": {"shop/product-service": {
        ("MSH0203", "VirtualService shop/product-service"),
        ("MSH0205", "Service shop/product-service")}},
    "slow-db": {"shop/database-service": {("MSH0501", "Hop database-service.shop SELECT")},
                "shop/cart-service": {("MSH0501", "Hop database-service.shop SELECT")}},
}

ROWS = [(scenario, service) for scenario in EXPECTED
        for service in ("shop/frontend", "shop/product-service", "shop/cart-service", "shop/database-service",
                        "istio-system/istio-ingressgateway")]


@pytest.mark.parametrize(("scenario", "service"), ROWS, ids=[f"{a}:{b}" for a, b in ROWS])
def test_demo_grid(scenario: str, service: str) -> None:
    snap = demo(scenario)
    target = ServiceRef.parse(service)
    assert snap.service(target) is not None, f"{service} missing from demo {scenario}"
    assert pairs(run(snap, target), "warning") == EXPECTED[scenario].get(service, set())


def test_weight_drift_numbers() -> None:
    snap = demo("weight-drift")
    findings = run(snap, ServiceRef("shop", "product-service"))
    found = {f.code: f for f in findings}
    host = "product-service.shop.svc.cluster.local"
    weights = {f.evidence["path"].split("|")[-1]: (f.evidence["live"], f.evidence["effective"])
               for f in findings if f.code == "MSH0203"}
    assert weights == {"v1].weight": (90, 50), "v2].weight": (10, 50)}
    assert all(host in f.evidence["path"] for f in findings if f.code == "MSH0203")
    assert dict(found["MSH0205"].evidence["observed_percent"]) == pytest.approx({"v1": 50.0, "v2": 50.0}, abs=1)


def test_cert_expiry_numbers() -> None:
    [f] = [f for f in run(demo("cert-expiry"), ServiceRef("shop", "cart-service")) if f.code == "MSH0302"]
    assert f.evidence["lifetime_s"] == 24 * 3600
    assert f.evidence["remaining_s"] == pytest.approx(2 * 3600, abs=60)


def test_slow_db_points_at_the_database() -> None:
    [f] = [f for f in run(demo("slow-db"), ServiceRef("shop", "cart-service")) if f.code == "MSH0501"]
    assert f.service == ServiceRef("shop", "database-service")
    assert len(f.evidence["example_trace_ids"]) == 3
