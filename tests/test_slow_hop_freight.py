"""MSH0501/MSH0502 on a freight mesh of its own names and numbers, metrics and traces together.

edge-gateway -> dispatch -> route-planner -> geo-index (a PostGIS query span) and
dispatch -> tariff; in billing, scheduler -> ledger-reconcile, a batch job whose latency is
spiky but within its threshold. Latency on the edges is what Prometheus would say (p99 ms);
each trace is one dispatch request.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from meshobs.checks.base import Settings
from meshobs.model import (
    Edge,
    Latency,
    Mesh,
    MeshSnapshot,
    Service,
    ServiceRef,
    Span,
    Trace,
    Workload,
    WorkloadRef,
)
from tests.support.e2_builders import TIME, WINDOW, pairs, run

SERVICES = {"edge-gateway": "ingress", "dispatch": "freight", "route-planner": "freight", "geo-index": "freight",
            "tariff": "freight", "scheduler": "billing", "ledger-reconcile": "billing"}
DISPATCH, PLANNER, GEO, TARIFF = (ServiceRef("freight", n) for n in ("dispatch", "route-planner", "geo-index",
                                                                      "tariff"))
LEDGER = ServiceRef("billing", "ledger-reconcile")
CALLS = [("edge-gateway", "dispatch"), ("dispatch", "route-planner"), ("route-planner", "geo-index"),
         ("dispatch", "tariff"), ("scheduler", "ledger-reconcile")]
BASE_US = int(TIME.timestamp() * 1_000_000)


def ref(name: str) -> ServiceRef:
    return ServiceRef(SERVICES[name], name)


def mesh(p99_ms: dict[str, float], traces: list[Trace]) -> MeshSnapshot:
    """The freight mesh; ``p99_ms``: each callee's inbound p99 as the metrics say it."""
    workloads = [Workload(ref=WorkloadRef(ns, f"{n}-v1"), mesh=Mesh.ISTIO, services=(ServiceRef(ns, n),), app=n,
                          version="v1", meshed=True) for n, ns in SERVICES.items()]
    services = [Service(ref=ServiceRef(ns, n), mesh=Mesh.ISTIO, ports=(8080,),
                        workloads=(WorkloadRef(ns, f"{n}-v1"),)) for n, ns in SERVICES.items()]
    edges = [Edge(source=WorkloadRef(SERVICES[a], f"{a}-v1"), destination=ref(b),
                  destination_workload=WorkloadRef(SERVICES[b], f"{b}-v1"), source_service=ref(a), mesh=Mesh.ISTIO,
                  request_rate=20.0, latency=Latency(p50=p99_ms[b] / 4, p99=p99_ms[b])) for a, b in CALLS
             if b in p99_ms]
    return MeshSnapshot(time=TIME, window_s=WINDOW, services=tuple(services), workloads=tuple(workloads),
                        edges=tuple(edges), traces=tuple(traces), origin="test")


def dispatch_trace(i: int, geo_ms: float, tariff_ms: float = 12, own_ms: float = 8) -> Trace:
    """One dispatch request: the planner waits for geo-index's query, then dispatch asks tariff."""
    tid = f"{i:032x}"
    spans: list[tuple[str, str | None, str, str, float, float]] = []
    t = 0.0
    spans.append(("gw", None, "edge-gateway.ingress", "POST /dispatch", t, 0))
    spans.append(("d", "gw", "dispatch.freight", "POST /dispatch", t + 1, 0))
    plan_start = t + 1 + own_ms / 2
    spans.append(("p", "d", "route-planner.freight", "GET /route", plan_start, 0))
    spans.append(("g", "p", "geo-index.freight", "GET /near", plan_start + 2, 0))
    spans.append(("q", "g", "geo-index.freight", "ST_DWithin", plan_start + 3, plan_start + 3 + geo_ms))
    geo_end = plan_start + 4 + geo_ms
    plan_end = geo_end + 2
    tariff_start = plan_end + 1
    spans.append(("t", "d", "tariff.freight", "GET /price", tariff_start, tariff_start + tariff_ms))
    d_end = tariff_start + tariff_ms + own_ms / 2
    ends = {"gw": d_end + 1, "d": d_end, "p": plan_end, "g": geo_end}
    return Trace(tid, tuple(Span(trace_id=tid, span_id=s, parent_id=p, service=svc, operation=op,
                                 start_us=BASE_US + round(a * 1000),
                                 duration_us=round(((ends.get(s) or b) - a) * 1000)) for s, p, svc, op, a, b in spans))


def ledger_trace(i: int, ms: float) -> Trace:
    tid = f"{10_000 + i:032x}"
    spans = [Span(trace_id=tid, span_id="s", parent_id=None, service="scheduler.billing", operation="cron tick",
                  start_us=BASE_US, duration_us=round((ms + 4) * 1000)),
             Span(trace_id=tid, span_id="l", parent_id="s", service="ledger-reconcile.billing",
                  operation="POST /reconcile", start_us=BASE_US + 1000, duration_us=round((ms + 2) * 1000)),
             Span(trace_id=tid, span_id="b", parent_id="l", service="ledger-reconcile.billing",
                  operation="reconcile batch", start_us=BASE_US + 2000, duration_us=round(ms * 1000))]
    return Trace(tid, tuple(spans))


def geo_slow(n: int = 40, seed: int = 5) -> list[Trace]:
    rnd = random.Random(seed)
    return [dispatch_trace(i, geo_ms=rnd.uniform(600, 1500)) for i in range(n)]


def noisy_batch(n: int = 40, seed: int = 6) -> list[Trace]:
    """Mostly 30-60 ms, one run in ten spikes to 500-850 ms: spiky, but within 1 s."""
    rnd = random.Random(seed)
    return [ledger_trace(i, rnd.uniform(500, 850) if i % 10 == 0 else rnd.uniform(30, 60)) for i in range(n)]


HEALTHY_P99 = {"dispatch": 120.0, "route-planner": 80.0, "geo-index": 60.0, "tariff": 20.0, "ledger-reconcile": 850.0}
SLOW_P99 = {**HEALTHY_P99, "dispatch": 1800.0, "route-planner": 950.0, "geo-index": 900.0}


def test_a_slow_query_is_the_slow_hop_of_the_breaching_service() -> None:
    snap = mesh(SLOW_P99, geo_slow())
    [f] = run(snap, DISPATCH, prefixes=("traces.",))
    assert (f.code, f.subject, f.service) == ("MSH0501", "Hop geo-index.freight ST_DWithin", GEO)
    assert f.evidence["share"] > 0.9 and f.evidence["traces"] == 40
    assert 600 <= f.evidence["p50_self_ms"] <= f.evidence["p99_self_ms"] <= 1500
    assert f.evidence["because"].startswith("freight/dispatch: p99 1800 ms")


@pytest.mark.parametrize("below", [PLANNER, GEO])
def test_services_below_a_breach_name_the_hop_even_within_their_own_threshold(below: ServiceRef) -> None:
    # route-planner (950 ms) and geo-index (900 ms) are within 1 s themselves; dispatch above them
    # is not, and its requests wait for them
    [f] = run(mesh(SLOW_P99, geo_slow()), below, prefixes=("traces.",))
    assert (f.code, f.subject) == ("MSH0501", "Hop geo-index.freight ST_DWithin")
    assert f.evidence["because"].startswith("freight/dispatch")


def test_a_fast_leaf_below_a_breach_is_not_a_slow_hop() -> None:
    # tariff's own time is all of its critical path, but 12 ms is nothing to a 1 s threshold
    assert run(mesh(SLOW_P99, geo_slow()), TARIFF, prefixes=("traces.",)) == []


def test_a_healthy_mesh_has_no_slow_hop_and_no_information() -> None:
    rnd = random.Random(8)
    traces = [dispatch_trace(i, geo_ms=rnd.uniform(20, 45)) for i in range(40)] + noisy_batch()
    snap = mesh(HEALTHY_P99, traces)
    for service in (DISPATCH, PLANNER, GEO, TARIFF, LEDGER):
        assert run(snap, service, prefixes=("traces.",)) == [], service


def test_a_spiky_batch_job_within_its_threshold_stays_clean() -> None:
    snap = mesh(HEALTHY_P99, noisy_batch())
    assert run(snap, LEDGER, prefixes=("traces.",)) == []
    # the same job over the threshold is slow, and its own batch span is the hop
    over = mesh({**HEALTHY_P99, "ledger-reconcile": 1400.0}, noisy_batch())
    [f] = run(over, LEDGER, prefixes=("traces.",))
    assert (f.code, f.subject) == ("MSH0501", "Hop ledger-reconcile.billing reconcile batch")


def test_asked_for_the_largest_hop_is_information_on_a_healthy_service() -> None:
    snap = mesh(HEALTHY_P99, noisy_batch())
    [f] = run(snap, LEDGER, prefixes=("traces.",), settings=Settings(explain_hops=True))
    assert (f.code, f.severity.value, f.evidence["because"]) == ("MSH0502", "info", "asked for")


def test_a_breach_no_single_hop_explains_is_information() -> None:
    # dispatch over its threshold, its time spread over its own work, the planner and tariff
    rnd = random.Random(9)
    traces = [dispatch_trace(i, geo_ms=rnd.uniform(200, 300), tariff_ms=rnd.uniform(200, 300),
                             own_ms=rnd.uniform(400, 600)) for i in range(30)]
    [f] = run(mesh({**HEALTHY_P99, "dispatch": 1200.0}, traces), DISPATCH, prefixes=("traces.",))
    assert (f.code, f.severity.value) == ("MSH0502", "info")
    assert f.evidence["share"] < 0.5


def test_a_regression_against_the_baseline_is_a_breach_within_the_threshold() -> None:
    rnd = random.Random(10)
    slow = mesh({**HEALTHY_P99, "geo-index": 700.0}, [dispatch_trace(i, rnd.uniform(300, 650)) for i in range(30)])
    assert run(slow, GEO, prefixes=("traces.",)) == []  # 700 ms is within 1 s, and nothing above breaches
    baseline = mesh(HEALTHY_P99, [])
    [f] = run(slow, GEO, prefixes=("traces.",), settings=Settings(baseline=baseline))
    assert (f.code, f.subject) == ("MSH0501", "Hop geo-index.freight ST_DWithin")
    assert "baseline" in f.evidence["because"]


def test_without_metrics_the_traced_requests_judge() -> None:
    snap = replace(mesh({}, geo_slow()), edges=())
    assert pairs(run(snap, DISPATCH, prefixes=("traces.",))) == {("MSH0501", "Hop geo-index.freight ST_DWithin")}


def test_diagnose_hops_asks_for_the_largest_hop() -> None:
    from click.testing import CliRunner

    from meshobs.cli.main import cli

    plain = CliRunner().invoke(cli, ["diagnose", "cart-service", "--from", "demo:healthy", "-o", "json"])
    asked = CliRunner().invoke(cli, ["diagnose", "cart-service", "--from", "demo:healthy", "-o", "json", "--hops"])
    assert plain.exit_code == asked.exit_code == 0, plain.output
    assert "MSH0502" not in plain.stdout
    assert '"code": "MSH0502"' in asked.stdout
