"""The grid on the built-in demo scenarios: (scenario, target) -> expected {(code, subject)}.

Each demo has a known fault; the grid pins what the diagnosis of a service reports (at warning
or error; info findings such as the dominant healthy hop are left out) and which finding ranks
first. Healthy scenarios must produce no warning or error at all.
"""

from __future__ import annotations

from functools import cache

import pytest

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import diagnose, diagnose_all
from meshobs.model import MeshSnapshot, ServiceRef


@cache
def snapshot(name: str) -> MeshSnapshot:
    return build_snapshot(load_demo(name), origin=f"demo:{name}")


def shop(name: str) -> ServiceRef:
    return ServiceRef("shop", name)


DB_EJECTED = {("MSH0406", "Service shop/database-service"), ("MSH0407", "Service shop/database-service")}
GRID: list[tuple[str, str, set[tuple[str, str]], str]] = [
    # scenario, target, expected (code, subject) at warning or above, code ranked first
    ("ecommerce", "cart-service", DB_EJECTED | {
        ("MSH0401", "Service shop/cart-service"), ("MSH0401", "Service shop/database-service"),
        ("MSH0402", "Edge shop/cart-service -> shop/database-service")}, "MSH0406"),
    ("ecommerce", "database-service", DB_EJECTED | {("MSH0401", "Service shop/database-service")},
     "MSH0406"),
    ("ecommerce", "product-service", set(), ""),
    # The canary version is the cause; the service-wide 1 % is its symptom.
    ("canary-errors", "product-service", {("MSH0409", "Workload shop/product-v2"),
                                          ("MSH0401", "Service shop/product-service")}, "MSH0409"),
    ("canary-errors", "frontend", {("MSH0409", "Workload shop/product-v2"),
                                   ("MSH0401", "Service shop/product-service"),
                                   ("MSH0402", "Edge shop/frontend -> shop/product-service")}, "MSH0409"),
    ("cert-expiry", "cart-service", {("MSH0302", "Workload shop/cart-v1")}, "MSH0302"),
    # The DestinationRule disabling mTLS (an analyzer finding, 503 UC: its signature) ranks above
    # the plaintext it causes on the edge.
    ("mtls-mismatch", "database-service", {
        ("MSH0307", "Edge shop/cart-v1 -> shop/database-service"),
        ("MSH0306", "DestinationRule shop/database-service-from-cart"),
        ("MSH0401", "Service shop/database-service")}, "MSH0306"),
    ("weight-drift", "product-service", {("MSH0203", "VirtualService shop/product-service"),
                                         ("MSH0205", "Service shop/product-service")}, "MSH0203"),
    ("slow-db", "frontend", {("MSH0501", "Hop database-service.shop SELECT"),
                             ("MSH0403", "Service shop/frontend")}, "MSH0501"),
]


@pytest.mark.parametrize(("scenario", "target", "expected", "first"), GRID,
                         ids=[f"{g[0]}:{g[1]}" for g in GRID])
def test_demo_grid(scenario: str, target: str, expected: set[tuple[str, str]], first: str) -> None:
    report = diagnose(snapshot(scenario), shop(target))
    got = {(f.code, f.subject) for f in report.findings if f.severity.value != "info"}
    assert got == expected
    if first:
        assert report.findings[0].code == first
        assert report.findings[0].rank == 1


@pytest.mark.parametrize("target", ["frontend", "cart-service", "product-service", "database-service"])
def test_healthy_scenario_has_no_warning_or_error(target: str) -> None:
    report = diagnose(snapshot("healthy"), shop(target))
    assert [f.code for f in report.findings if f.severity.value != "info"] == []
    assert report.status == "healthy"
    # Every source present: nothing skipped, except the App Mesh checks on an Istio service, the
    # control plane's, which the classic demo does not render (could not check, never passed),
    # and what needs the metric history the classic demo bundles were recorded without.
    control_plane = {"proxy.istiod_ready", "proxy.istiod_pushes", "proxy.version_skew", "proxy.injector"}
    no_history = {c.id for c in report.checks if c.status == "skipped" and "no metric history" in c.reason}
    assert no_history == {"config.changed_before_onset"}
    assert {c.status for c in report.checks if not c.reason.startswith("not applicable")
            and c.id not in control_plane | no_history} == {"pass"}
    skipped = {c.id for c in report.checks if c.status == "skipped"}
    assert {i.split(".")[0] for i in skipped - control_plane - no_history} == {"appmesh"}
    assert {c.status for c in report.checks if c.id in control_plane} == {"skipped"}


def test_healthy_mesh_all_services() -> None:
    mesh = diagnose_all(snapshot("healthy"))
    assert mesh.status == "healthy"
    assert all(r.status == "healthy" for r in mesh.reports)


def test_ecommerce_symptom_cites_the_database() -> None:
    report = diagnose(snapshot("ecommerce"), shop("cart-service"))
    cart = next(f for f in report.findings if f.subject == "Service shop/cart-service")
    assert "MSH0406 Service shop/database-service" in cart.caused_by
    assert cart.evidence["by_code"] == {"503": pytest.approx(cart.evidence["error_rps"])}


def test_canary_errors_point_at_v2() -> None:
    report = diagnose(snapshot("canary-errors"), shop("product-service"))
    canary = report.findings[0]
    assert (canary.code, canary.evidence["workload"]) == ("MSH0409", "shop/product-v2")
    assert canary.evidence["error_ratio"] == pytest.approx(0.1)
    assert canary.evidence["other_versions_error_ratio"] == 0.0
    assert "MSH0409 Workload shop/product-v2" in report.findings[1].caused_by
    f = report.findings[1]
    per_version = f.evidence["by_destination_workload"]
    assert per_version["shop/product-v2"]["error_ratio"] > 0.05
    assert per_version["shop/product-v1"]["error_ratio"] == 0.0
