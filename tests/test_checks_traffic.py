"""Traffic checks on hand-built meshes: (mesh, target) -> expected {(code, subject)}."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshobs.checks.base import Settings
from meshobs.engine import run_checks
from meshobs.model import Edge, Latency, ServiceRef, UpstreamHost
from tests.support.builders import MeshBuilder, flags

CART, DB, FRONT = "cart-service", "database-service", "frontend"


def base() -> MeshBuilder:
    return MeshBuilder().service(FRONT).service(CART).service(DB)


def healthy() -> MeshBuilder:
    return base().call(FRONT, CART, rps=20).call(CART, DB, rps=10)


def inbound_errors() -> MeshBuilder:
    return base().call(FRONT, CART, rps=20, responses=[("200", "-", 0.9), ("503", "-", 0.06),
                                                       ("500", "-", 0.04)])


def outbound_errors() -> MeshBuilder:
    return base().call(FRONT, CART).call(CART, DB, rps=10, responses=[("200", "-", 0.7),
                                                                     ("503", "UF", 0.3)])


def never_reached() -> MeshBuilder:
    return base().call(CART, DB, rps=4, responses=[("503", "UH", 1.0)], reached=False)


def below_threshold() -> MeshBuilder:
    return base().call(FRONT, CART, rps=100, responses=[("200", "-", 0.995), ("503", "-", 0.005)])


def client_errors_only() -> MeshBuilder:
    return base().call(FRONT, CART, rps=100, responses=[("200", "-", 0.5), ("404", "-", 0.5)])


def slow() -> MeshBuilder:
    return base().call(FRONT, CART, p99=2500.0)


def overflow() -> MeshBuilder:
    m = base().call(CART, DB, responses=[("200", "-", 0.9), ("503", "UO", 0.1)])
    return m.cluster(CART, DB, counters=flags(upstream_rq_pending_overflow=17),
                     circuit_breaker_open=flags(rq_pending_open=1))


def overflowed_days_ago() -> MeshBuilder:
    """Overflow counters from a burst long ago; the window's requests overflow no more."""
    return base().call(CART, DB).cluster(CART, DB, counters=flags(upstream_rq_pending_overflow=17))


def overflow_counters_only() -> MeshBuilder:
    """The counters and no request metrics to tell when: they are all there is."""
    return overflowed_days_ago().without("prometheus")


def ejected() -> MeshBuilder:
    hosts = (UpstreamHost("10.0.0.1:5432", healthy=False, failed_outlier_check=True),
             UpstreamHost("10.0.0.2:5432", healthy=False, failed_outlier_check=True))
    return base().cluster(CART, DB, hosts=hosts, membership_healthy=0, membership_total=2,
                          outlier_ejections_active=2)


def partly_ejected() -> MeshBuilder:
    hosts = (UpstreamHost("10.0.0.1:5432", healthy=False, failed_outlier_check=True),
             UpstreamHost("10.0.0.2:5432", healthy=True))
    return base().cluster(CART, DB, hosts=hosts, membership_healthy=1, membership_total=2)


GRID: list[tuple[str, Callable[[], MeshBuilder], str, set[tuple[str, str]]]] = [
    ("healthy-cart", healthy, CART, set()),
    ("healthy-db", healthy, DB, set()),
    ("healthy-front", healthy, FRONT, set()),
    ("inbound-errors", inbound_errors, CART, {("MSH0401", "Service default/cart-service")}),
    ("inbound-errors-seen-as-outbound", inbound_errors, FRONT,
     {("MSH0402", "Edge default/frontend -> default/cart-service")}),
    ("outbound-errors", outbound_errors, CART,
     {("MSH0402", "Edge default/cart-service -> default/database-service")}),
    ("outbound-errors-at-db", outbound_errors, DB, {("MSH0401", "Service default/database-service")}),
    ("never-reached", never_reached, CART,
     {("MSH0408", "Edge default/cart-service -> default/database-service")}),
    # Requests that never reached the database are not the database's answers.
    ("never-reached-db", never_reached, DB, set()),
    ("below-threshold", below_threshold, CART, set()),
    ("client-errors", client_errors_only, CART, set()),
    ("slow", slow, CART, {("MSH0403", "Service default/cart-service")}),
    ("overflow", overflow, DB, {("MSH0405", "Service default/database-service"),
                                ("MSH0401", "Service default/database-service")}),
    ("overflowed-days-ago", overflowed_days_ago, DB, set()),
    ("overflow-counters-only", overflow_counters_only, DB, {("MSH0405", "Service default/database-service")}),
    ("ejected", ejected, DB, {("MSH0406", "Service default/database-service"),
                              ("MSH0407", "Service default/database-service")}),
    ("partly-ejected", partly_ejected, DB, {("MSH0406", "Service default/database-service")}),
    ("ejected-not-cart", ejected, CART, set()),
]


@pytest.mark.parametrize(("name", "build", "target", "expected"), GRID, ids=[g[0] for g in GRID])
def test_traffic_grid(name: str, build: Callable[[], MeshBuilder], target: str,
                      expected: set[tuple[str, str]]) -> None:
    _results, found = run_checks(build().build(), ServiceRef("default", target), Settings())
    assert {(f.code, f.subject) for f in found} == expected


def test_error_breakdown_by_code_and_flag_with_meaning() -> None:
    _r, found = run_checks(outbound_errors().build(), ServiceRef("default", CART), Settings())
    (f,) = found
    assert f.evidence["rps"] == 10.0 and f.evidence["error_rps"] == 3.0
    assert f.evidence["error_ratio"] == pytest.approx(0.3)
    assert f.evidence["by_code"] == {"503": 3.0}
    assert f.evidence["by_flag"]["UF"] == {"rps": 3.0, "meaning": "upstream connection failure"}


def test_inbound_breakdown_per_code() -> None:
    _r, found = run_checks(inbound_errors().build(), ServiceRef("default", CART), Settings())
    (f,) = found
    assert f.evidence["by_code"] == {"503": pytest.approx(1.2), "500": pytest.approx(0.8)}
    assert f.evidence["by_source"] == {"default/frontend-v1": {"rps": 20.0, "error_rps": 2.0}}
    assert f.fields["ratio_pct"] == "10.0"


def test_threshold_is_configurable() -> None:
    snap = below_threshold().build()
    _r, found = run_checks(snap, ServiceRef("default", CART), Settings(error_ratio=0.001))
    assert {f.code for f in found} == {"MSH0401"}
    _r, found = run_checks(snap, ServiceRef("default", CART), Settings(error_ratio=0.001,
                                                                       min_request_rate=1000))
    assert found == []


def test_latency_regression_against_baseline() -> None:
    baseline = base().call(FRONT, CART, p99=100.0).build()
    now = base().call(FRONT, CART, p99=450.0).build()
    _r, found = run_checks(now, ServiceRef("default", CART), Settings(baseline=baseline))
    (f,) = found
    assert f.code == "MSH0404" and f.evidence["factor"] == 4.5
    _r, found = run_checks(now, ServiceRef("default", CART), Settings(baseline=baseline,
                                                                      latency_regression=5.0))
    assert found == []


def test_worst_p99_over_callers_with_traffic() -> None:
    m = base().call(FRONT, CART, p99=200.0)
    m.edges.append(Edge(source=m.edges[0].source, destination=ServiceRef("default", CART),
                        destination_workload=m.edges[0].destination_workload, request_rate=0.0,
                        latency=Latency(p99=9000.0)))
    _r, found = run_checks(m.build(), ServiceRef("default", CART), Settings(p99_ms=500))
    assert found == []  # an idle series with a stale p99 is not latency


def test_circuit_breaker_evidence() -> None:
    _r, found = run_checks(overflow().build(), ServiceRef("default", DB), Settings())
    (cb,) = [f for f in found if f.code == "MSH0405"]
    assert cb.evidence["overflows"] == 34  # 17 on each of cart's two proxies
    assert cb.evidence["uo_rps"] == 1.0
    assert list(cb.evidence["caller_proxies"]) == ["cart-v1-0.default", "cart-v1-1.default"]


def test_worst_p99_is_one_reading_for_the_check_and_the_walk() -> None:
    """The latency check and the ranking walk's hop evidence read a set of edges' p99 the same
    way (one function): the worst over the edges that carried requests, never a sum."""
    from meshobs.checks.traffic import worst_p99
    from meshobs.engine import evidence
    from meshobs.model import WorkloadRef

    def e(rate: float, p99: float | None) -> Edge:
        return Edge(WorkloadRef("pier", "ferry-desk-v1"), ServiceRef("pier", "tide-gate"), request_rate=rate,
                    latency=Latency(p99=p99) if p99 is not None else None)

    edges = [e(3.0, 120.0), e(0.0, 900.0), e(2.0, None), e(1.0, 340.0), e(5.0, 80.0)]
    worst = worst_p99(edges)
    assert worst is not None and worst[0] == 340.0 and worst[1] is edges[3]
    assert worst_p99([e(0.0, 900.0), e(2.0, None)]) is None
    assert not hasattr(evidence, "_p99")  # the walk's own copy is gone


def test_a_failing_version_that_takes_most_calls_is_not_called_a_rollout_to_roll_back() -> None:
    """MSH0409 on the version in service (90 % of the calls) hints at shifting the weight, not
    at rolling back a rollout; on a canary (10 %) it still says roll back or pause."""
    from meshobs.checks.base import Finding
    from meshobs.checks.traffic import _failing_version
    from meshobs.model import ResponseStat, WorkloadRef

    kiln = ServiceRef("glaze", "kiln-api")

    def calls(version: str, rate: float, failed: float) -> Edge:
        return Edge(WorkloadRef("glaze", "throw-desk-v3"), kiln,
                    destination_workload=WorkloadRef("glaze", f"kiln-api-{version}"), request_rate=rate,
                    responses=(ResponseStat("200", "-", rate - failed), ResponseStat("503", "UF", failed)))

    def verdict(stable_fails: bool) -> Finding:
        edges = [calls("v4", 90.0, 9.0 if stable_fails else 0.0), calls("v5", 10.0, 0.0 if stable_fails else 1.0)]
        (found,) = _failing_version(kiln, edges, Settings())
        return found

    in_service, canary = verdict(True), verdict(False)
    assert (in_service.code, in_service.subject) == ("MSH0409", "Workload glaze/kiln-api-v4")
    assert in_service.evidence["traffic_share"] == 0.9
    assert "roll back" not in in_service.hint and "weight" in in_service.hint
    assert (canary.code, canary.subject) == ("MSH0409", "Workload glaze/kiln-api-v5")
    assert canary.evidence["traffic_share"] == 0.1
    assert canary.hint.startswith("roll back or pause the rollout of kiln-api-v5")
