"""The Prometheus collector against REAL PromQL engines holding known traffic.

Every test runs against Prometheus (backfilled with promtool) and VictoriaMetrics (imported
through its Prometheus text-format API), both holding the same metrics and Istio's recording
rules evaluated over them (promtool's rule backfill, vmalert's replay); the collector reads them
once through the raw metrics and once through the recorded series. Each workload runs two pods,
so the recording rules really aggregate something.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.collectors.promql import (
    CONTROL_PLANE,
    EDGE_FAMILIES,
    EDGE_PREFIX,
    GRAPH_QUERIES,
    HISTORY_QUERIES,
    ISTIO_DURATION_BUCKETS_MS,
    QUERIES,
    RANGE_QUERIES,
    RECORDED_FAMILIES,
    TCP_CLOSED,
    histogram_quantile,
    render,
    scope_matchers,
)
from meshobs.config import validate
from meshobs.demo.prometheus import graph_answers, openmetrics, prometheus_source
from meshobs.demo.promserver import PrometheusServer, prometheus_available, start_prometheus
from meshobs.demo.traffic import EdgeTraffic, LatencyProfile
from meshobs.demo.vmserver import start_victoriametrics, victoriametrics_available
from meshobs.model import Edge, Reporter, Security, ServiceRef, SourceState, WorkloadRef
from meshobs.raw import RawSource

pytestmark = pytest.mark.prometheus

# Not within HISTORY of a 2 h TSDB block boundary: promtool's rule backfill (2.42) loses the
# recorded sample right before a boundary (evaluations are offset by a hash of the group's name
# and file path), so a rate over it came out ~1-6% low in recorded-prometheus, depending on
# where the checkout lives. At 12:00 the boundary was T itself.
T = datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
WINDOW = 300.0
HISTORY = WINDOW + 60.0
RULES = Path(__file__).resolve().parents[1] / "config" / "prometheus-recording-rules.yaml"
# VictoriaMetrics stores values with ~12 significant digits: equal up to that.
REL = 1e-9


def _edge(src: str, dst_svc: str, dst_wl: str | None, rps: float, **kw: object) -> EdgeTraffic:
    return EdgeTraffic(source_namespace="shop", source_workload=f"{src}-v1", source_service=src,
                       source_version="v1", destination_namespace="shop", destination_service=dst_svc,
                       destination_workload=dst_wl, destination_version="v1", rps=rps, **kw)  # type: ignore[arg-type]


TRAFFIC = [
    # Circuit breaker tripping on 10% of the calls.
    _edge("web", "cart", "cart-v1", 20.0, responses=(("200", "-", 0.9), ("503", "UO", 0.1)),
          latency=LatencyProfile(10.0, 80.0)),
    # No healthy upstream: the requests never reach a destination workload.
    _edge("web", "payments", None, 4.0, responses=(("503", "UH", 1.0),),
          latency=LatencyProfile(0.5, 2.0)),
    # A caller without mTLS: plaintext reaches cart.
    _edge("legacy", "cart", "cart-v1", 5.0, mtls=False, latency=LatencyProfile(30.0, 400.0)),
    _edge("cart", "pricing", "pricing-v1", 7.0, protocol="grpc",
          responses=(("200", "-", 0.98), ("503", "UF", 0.02)), latency=LatencyProfile(3.0, 12.0)),
    # gRPC failing inside HTTP 200: 12% of the calls end with grpc-status 14 UNAVAILABLE.
    _edge("ops", "ledger", "ledger-v1", 6.0, protocol="grpc", responses=(("200", "-", 0.88), ("200", "-", 0.12)),
          grpc_statuses=("0", "14"), latency=LatencyProfile(4.0, 20.0)),
    # TCP to a data store: rps is connections opened per second.
    _edge("cart", "redis", "redis-v1", 2.0, protocol="tcp", tcp_sent_bps=4096.0,
          tcp_received_bps=1024.0),
]


def expected_p99(edge: EdgeTraffic) -> float:
    """What histogram_quantile answers over Istio's buckets for the edge's latency profile."""
    buckets = [(float(b), edge.rps * edge.latency.cdf(b)) for b in ISTIO_DURATION_BUCKETS_MS]
    return histogram_quantile(0.99, [*buckets, (math.inf, edge.rps)])


def _require(engine: str) -> None:
    available = prometheus_available() if engine == "prometheus" else victoriametrics_available()
    if available:
        return
    flag = "MESHOBS_REQUIRE_PROMETHEUS" if engine == "prometheus" else "MESHOBS_REQUIRE_VICTORIAMETRICS"
    if os.environ.get(flag) == "1":
        pytest.fail(f"{engine} not installed but {flag}=1 (scripts/test.sh installs it)")
    pytest.skip(f"{engine} not installed")


@pytest.fixture(scope="session", params=["prometheus", "victoriametrics"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    engine = request.param
    _require(engine)
    # Samples every 5 s, the rules' evaluation interval, so recorded and raw series agree exactly.
    text = openmetrics(TRAFFIC, T, WINDOW, step_s=5.0, history_s=HISTORY, pods=2)
    start = start_prometheus if engine == "prometheus" else start_victoriametrics
    with start(text, Path(tmp_path_factory.mktemp(engine)), rules=RULES,
               rules_range=(T.timestamp() - HISTORY, T.timestamp())) as srv:
        yield srv


def _query_count(srv: PrometheusServer) -> tuple[float, float]:
    """(instant, range) queries the server has answered so far, from its own /metrics."""
    if srv.engine == "victoriametrics":
        time.sleep(1.2)  # its request counters show up in /metrics about a second late
    counts = [0.0, 0.0]
    for line in requests.get(f"{srv.url}/metrics", timeout=5).text.splitlines():
        for i, handler in enumerate(("/api/v1/query", "/api/v1/query_range")):
            if srv.engine == "prometheus":
                hit = line.startswith("prometheus_http_requests_total{") and f'handler="{handler}"' in line
            else:
                hit = line.startswith("vm_http_requests_total{") and f'path="{handler}"' in line
            if hit:
                counts[i] += float(line.rsplit(" ", 1)[1])
    return counts[0], counts[1]


def _fetch(srv: PrometheusServer, rules: str, **ctx: object) -> tuple[prom.PrometheusCollector, list]:
    config = validate({"sources": {"prometheus": {"url": srv.url, "timeout": "10s", "recording_rules": rules}}})
    collector = prom.from_config(config, [])
    assert collector is not None
    return collector, collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config, **ctx))  # type: ignore[arg-type]


@pytest.fixture(scope="session", params=["raw", "recorded"])
def fetched(request: pytest.FixtureRequest, server: PrometheusServer) -> dict:
    """One mesh-wide collection: through the raw metrics, or Istio's recording rules."""
    rules = "off" if request.param == "raw" else "auto"
    before = _query_count(server)
    _collector, (raw,) = _fetch(server, rules)
    after = _query_count(server)
    part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))
    edges = {(e.source.name, e.destination_workload.name if e.destination_workload else None,
              e.destination.name): e for e in part.edges}
    return {"edges": edges, "part": part, "raw": raw, "recorded": rules == "auto",
            "sent": (after[0] - before[0], after[1] - before[1])}


def test_constant_query_count_reaches_the_server(fetched: dict) -> None:
    part, raw = fetched["part"], fetched["raw"]
    checks = 1 if fetched["recorded"] else 0  # the recording-rules check
    # The instant queries and one for istiod's metrics, the range queries; requests fail on
    # cart, payments, pricing and (gRPC inside 200) ledger: their history comes too, narrowed to them.
    assert len(raw.payloads) == checks + len(QUERIES) + 1 + len(RANGE_QUERIES) + len(HISTORY_QUERIES)
    assert fetched["sent"] == (checks + len(QUERIES) + 1, len(RANGE_QUERIES) + len(HISTORY_QUERIES))
    assert raw.meta["heavy"]["shards"] == 1  # a mesh this small: the heavy queries whole
    assert raw.meta["history"]["covers"] == "the 4 services with failing requests"
    assert part.sources[0].state is SourceState.OK, part.sources[0].message
    assert all(p.ok for p in raw.payloads)
    assert all(p.params["time"] == T.timestamp() for p in raw.payloads if p.key.startswith("query:"))


def test_recording_rules_are_found_and_read(fetched: dict) -> None:
    raw = fetched["raw"]
    # istiod's metrics have no recorded copy: the control-plane query always reads pilot_*.
    queries = [p.params["query"] for p in raw.payloads if p.key not in ("rules", f"query:{CONTROL_PLANE}")]
    if not fetched["recorded"]:
        assert raw.get("rules") is None and not any("workload:" in q for q in queries)
        return
    rules = raw.get("rules")
    assert rules is not None and rules.meta["recorded"] == sorted(
        [*RECORDED_FAMILIES, *(EDGE_PREFIX + f for f in EDGE_FAMILIES)])
    assert all("workload:istio_" in q for q in queries)


def test_history_series_match_the_steady_traffic(fetched: dict) -> None:
    """The range queries give each service's served rate, error ratio and p99 over the window."""
    series = {(s.service.name, s.metric): s for s in fetched["part"].series}
    cart_rate = series[("cart", "request_rate")]
    assert len(cart_rate.values) == 21 and cart_rate.step_s == 15
    points = [v for v in cart_rate.values if v is not None]
    assert len(points) >= 19
    # cart serves web (20 rps) and legacy (5 rps); payments never got a destination series.
    assert all(v == pytest.approx(25.0, rel=1e-6) for v in points)
    ratios = [v for v in series[("cart", "error_ratio")].values if v is not None]
    assert ratios and all(v == pytest.approx(2.0 / 25.0, rel=1e-6) for v in ratios)
    assert ("payments", "request_rate") not in series
    p99 = [v for v in series[("pricing", "p99_ms")].values if v is not None]
    assert p99 and all(v == pytest.approx(expected_p99(TRAFFIC[3]), rel=1e-6) for v in p99)


@pytest.mark.parametrize("truth", TRAFFIC, ids=lambda e: f"{e.source_workload}->{e.destination_service}")
def test_edge_matches_generated_traffic(fetched: dict, truth: EdgeTraffic) -> None:
    edge = fetched["edges"][(truth.source_workload, truth.destination_workload, truth.destination_service)]
    assert edge.source == WorkloadRef("shop", truth.source_workload)
    assert edge.destination == ServiceRef("shop", truth.destination_service)
    assert edge.protocol == truth.protocol
    if truth.protocol == "tcp":
        assert edge.tcp_connections_opened_rate == pytest.approx(truth.rps, rel=REL)
        assert edge.tcp_sent_bytes_rate == pytest.approx(truth.tcp_sent_bps, rel=REL)
        assert edge.tcp_received_bytes_rate == pytest.approx(truth.tcp_received_bps, rel=REL)
    else:
        # One reporter's numbers, never both added together (nor both pods counted twice).
        assert edge.request_rate == pytest.approx(truth.rps, rel=REL)
        assert edge.error_ratio == pytest.approx(truth.error_fraction, abs=1e-9)
        assert edge.latency is not None
        # The server's histogram_quantile equals Prometheus's arithmetic over the exact buckets.
        assert edge.latency.p99 == pytest.approx(expected_p99(truth), rel=REL)
        assert edge.latency.p50 <= edge.latency.p90 <= edge.latency.p99
    for code, flags, fraction in truth.responses:
        if code != "200":
            assert edge.rate_by_flag(errors_only=True)[flags] == pytest.approx(truth.rps * fraction)
    if truth.destination_workload is None:
        assert edge.reporter is Reporter.SOURCE
        assert edge.security is Security.UNKNOWN  # no destination proxy saw it
    else:
        assert edge.reporter is Reporter.BOTH
        assert edge.security is (Security.MUTUAL_TLS if truth.mtls else Security.PLAINTEXT)
        assert edge.destination_workload == WorkloadRef("shop", truth.destination_workload)


def test_never_reached_edge_has_no_destination_workload(fetched: dict) -> None:
    edge = fetched["edges"][("web-v1", None, "payments")]
    assert edge.destination_workload is None
    assert edge.rate_by_flag() == {"UH": pytest.approx(4.0)}
    assert edge.error_ratio == pytest.approx(1.0)


def _instant(srv: PrometheusServer, query: str) -> list[dict]:
    answer = requests.get(f"{srv.url}/api/v1/query", timeout=10,
                          params={"time": T.timestamp(), "query": query}).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]  # type: ignore[no-any-return]


def test_python_quantile_equals_the_servers_histogram_quantile(server: PrometheusServer) -> None:
    """The quantile arithmetic meshobs keeps for bucket bundles and the demo is the engine's:
    Python over the server's own bucket rates = the server's histogram_quantile."""
    inner = ('sum by (le, destination_workload, source_workload) '
             '(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[5m]))')
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for s in _instant(server, inner):
        m = s["metric"]
        buckets.setdefault((m["source_workload"], m["destination_workload"]), []).append(
            (float(m["le"]), float(s["value"][1])))
    for q in (0.5, 0.9, 0.99):
        answers = _instant(server, f"histogram_quantile({q}, {inner})")
        assert len(answers) == len(buckets) == 5
        for s in answers:
            m = s["metric"]
            python = histogram_quantile(q, buckets[(m["source_workload"], m["destination_workload"])])
            assert python == pytest.approx(float(s["value"][1]), rel=REL)


def test_demo_answers_are_what_the_engine_answers(server: PrometheusServer) -> None:
    """The analytic results the demo bundles are built from equal the engine's answers to the
    very same queries, series by series."""
    demo = prometheus_source(TRAFFIC, T, WINDOW)
    for payload in demo.payloads:
        if not payload.key.startswith("query:"):
            continue
        want = {json.dumps(s["metric"], sort_keys=True): float(s["value"][1])
                for s in json.loads(payload.body or "")["result"]}
        got = {json.dumps(s["metric"], sort_keys=True): float(s["value"][1])
               for s in _instant(server, payload.params["query"])}
        assert set(got) == set(want), payload.key
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=REL), (payload.key, key)
    # The graph phase's edge keys of a scoped question (who calls whom, summed over the rest),
    # and which of them failed (by code and flag). The demo's TCP connections all end without a
    # flag: the failed-connections query answers nothing, on the engine too.
    answered = 0
    for query, data in graph_answers(TRAFFIC, T, WINDOW).items():
        want = {json.dumps(s["metric"], sort_keys=True): float(s["value"][1]) for s in data["result"]}
        got = {json.dumps(s["metric"], sort_keys=True): float(s["value"][1]) for s in _instant(server, query)}
        assert (want or TCP_CLOSED in query) and set(got) == set(want), query
        assert got == pytest.approx(want, rel=REL), query
        answered += bool(want)
    assert answered == len(GRAPH_QUERIES) - 1


def test_compact_matchers_select_what_plain_ones_do(server: PrometheusServer) -> None:
    """The prefix-tree form of a neighbourhood's matchers (for a neighbourhood too big for plain
    alternations) is accepted by the engine and selects the same series."""
    services = [ServiceRef("shop", n) for n in ("cart", "pricing", "payments", "redis")]
    workloads = [WorkloadRef("shop", w) for w in ("cart-v1", "web-v1", "legacy-v1")]
    for name in ("requests", "tcp_sent", "latency_p99"):
        plain = render(name, "5m", scope=scope_matchers(services[:3], workloads))
        compact = render(name, "5m", scope=scope_matchers(services[:3], workloads, compact=True))
        assert compact != plain and "p(ayments|ricing)" in compact
        want = {json.dumps(s["metric"], sort_keys=True): float(s["value"][1]) for s in _instant(server, plain)}
        got = {json.dumps(s["metric"], sort_keys=True): float(s["value"][1]) for s in _instant(server, compact)}
        assert want and got == pytest.approx(want, rel=REL), name  # VictoriaMetrics: summed in another order


def test_scoped_phase_reads_only_the_neighbourhood(server: PrometheusServer, fetched: dict) -> None:
    """diagnose pricing: its caller cart, cart's workload and callees. The scoped answers cover
    exactly the edges touching them, with the mesh-wide numbers."""
    scope = Scope(target=ServiceRef("shop", "pricing"),
                  services=frozenset({ServiceRef("shop", "pricing")}),
                  workloads=frozenset({WorkloadRef("shop", "cart-v1")}))
    rules = "auto" if fetched["recorded"] else "off"
    _collector, (graph,) = _fetch(server, rules, phase="graph")
    _same, (scoped,) = _fetch(server, rules, phase="scoped", scope=scope)
    graph.payloads.extend(scoped.payloads)
    part = prom.normalize(graph, NormalizeContext(time=T, window_s=WINDOW))
    assert part.sources[0].state is SourceState.OK, part.sources[0].message
    with_latency = {(e.source.name, e.destination.name) for e in part.edges if e.latency is not None}
    assert with_latency == {("cart-v1", "pricing")}
    tcp = [e for e in part.edges if e.protocol == "tcp"]
    assert [(e.source.name, e.destination.name) for e in tcp] == [("cart-v1", "redis")]
    for e in part.edges:
        whole = fetched["edges"][(e.source.name, e.destination_workload.name if e.destination_workload else None,
                                  e.destination.name)]
        assert e.request_rate == pytest.approx(whole.request_rate, rel=REL)
        if e.latency is not None:
            assert whole.latency is not None and e.latency.p99 == pytest.approx(whole.latency.p99, rel=REL)
    # Sparklines for the services whose requests the neighbourhood serves (redis speaks TCP).
    assert {s.service for s in part.series} == {ServiceRef("shop", "pricing")}


def test_a_neighbourhoods_latency_is_one_bucket_query_into_its_services(server: PrometheusServer,
                                                                       fetched: dict) -> None:
    """diagnose cart: its caller web also calls payments, outside the neighbourhood. The latency
    is read with one bucket query over the edges INTO cart and pricing only, and its quantiles
    (computed here) equal the engine's histogram_quantile answers of a mesh-wide collection."""
    scope = Scope(target=ServiceRef("shop", "cart"),
                  services=frozenset({ServiceRef("shop", "cart"), ServiceRef("shop", "pricing"),
                                      ServiceRef("shop", "redis")}),
                  workloads=frozenset({WorkloadRef("shop", w) for w in ("cart-v1", "pricing-v1", "redis-v1",
                                                                         "web-v1", "legacy-v1")}))
    rules = "auto" if fetched["recorded"] else "off"
    _collector, (graph,) = _fetch(server, rules, phase="graph")
    before = _query_count(server)
    _same, (scoped,) = _fetch(server, rules, phase="scoped", scope=scope)
    after = _query_count(server)
    keys = {p.key for p in scoped.payloads}
    assert "query:latency" in keys and not keys & {"query:latency_p50", "query:latency_p90", "query:latency_p99"}
    # The request rates and TCP's three narrowed, one instant query for latency (not three),
    # istiod's (and this new collector's recording-rules check); the range and history ones.
    instant = 6 + (1 if fetched["recorded"] else 0)
    assert (after[0] - before[0], after[1] - before[1]) == (instant, len(RANGE_QUERIES) + len(HISTORY_QUERIES))
    graph.payloads.extend(scoped.payloads)
    graph.meta.update({k: v for k, v in scoped.meta.items() if k not in graph.meta})
    part = prom.normalize(graph, NormalizeContext(time=T, window_s=WINDOW))
    assert part.sources[0].state is SourceState.OK, part.sources[0].message
    with_latency = {(e.source.name, e.destination.name) for e in part.edges if e.latency is not None}
    assert with_latency == {("web-v1", "cart"), ("legacy-v1", "cart"), ("cart-v1", "pricing")}
    for e in part.edges:
        if e.latency is None:
            continue
        whole = fetched["edges"][(e.source.name, e.destination_workload.name if e.destination_workload else None,
                                  e.destination.name)]
        assert whole.latency is not None
        for q in ("p50", "p90", "p99"):
            assert getattr(e.latency, q) == pytest.approx(getattr(whole.latency, q), rel=REL), (e, q)
        if e.destination_latency is not None:
            assert whole.destination_latency is not None
            assert e.destination_latency.p99 == pytest.approx(whole.destination_latency.p99, rel=REL)
    # The p99 history and sparklines: the neighbourhood's services only (not web's payments).
    assert part.history is not None
    assert {s.destination.name for s in part.history.series if s.signal == "p99_ms"} == {"cart", "pricing"}
    assert {s.service.name for s in part.series if s.metric == "p99_ms"} == {"cart", "pricing"}


def test_graph_phase_finds_the_same_edges_with_the_edge_rules(server: PrometheusServer) -> None:
    """The graph phase of a scoped question reads meshobs's edge rules (edge:*, one series per
    edge) when the server has them, and draws the same edges, rates and failed calls as from the
    raw metrics: the neighbourhood is the same."""

    def graph(rules: str) -> tuple[RawSource, dict[tuple[str, str, str | None, str], Edge]]:
        _collector, (raw,) = _fetch(server, rules, phase="graph")
        part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))
        assert part.sources[0].state is SourceState.OK, part.sources[0].message
        return raw, {(e.source.name, e.destination.name, e.destination_workload.name if e.destination_workload
                      else None, e.protocol): e for e in part.edges}

    ruled, with_rules = graph("auto")
    plain, without = graph("off")
    assert "rate(edge:istio_requests_total[5m])" in ruled.get("query:edges").params["query"]
    assert "rate(edge:istio_tcp_sent_bytes_total[5m])" in ruled.get("query:tcp_edges").params["query"]
    assert "edge:" not in plain.get("query:edges").params["query"]
    assert with_rules.keys() == without.keys() and len(with_rules) == len(TRAFFIC)
    for key, e in without.items():
        mine = with_rules[key]
        assert {(r.code, r.flags): r.rate for r in mine.responses} == pytest.approx(
            {(r.code, r.flags): r.rate for r in e.responses}, rel=1e-6), key
        assert mine.tcp_sent_bytes_rate == pytest.approx(e.tcp_sent_bytes_rate, rel=1e-6)
        assert (mine.source_service, mine.reporter) == (e.source_service, e.reporter)


def test_grpc_failures_inside_http_200_are_errors(server: PrometheusServer, fetched: dict) -> None:
    """grpc_response_status is read with the response code: the ledger's 12% grpc-status 14
    (UNAVAILABLE) in HTTP 200 are errors in the snapshot's edge, in the graph phase's failed
    calls (one query, the second matcher set) and in the history's and sparklines' error rates."""
    edge = fetched["edges"][("ops-v1", "ledger-v1", "ledger")]
    assert {(r.code, r.grpc_status): r.rate for r in edge.responses} == pytest.approx(
        {("200", "0"): 6.0 * 0.88, ("200", "14"): 6.0 * 0.12}, rel=REL)
    assert edge.error_rate == pytest.approx(6.0 * 0.12, rel=REL)
    assert edge.rate_by_code(errors_only=True) == pytest.approx({"200 grpc-status 14 UNAVAILABLE": 0.72}, rel=REL)
    # HTTP series carry no gRPC status; pricing's 503 UF carries 14 and stays a 503.
    cart = fetched["edges"][("web-v1", "cart-v1", "cart")]
    assert {r.grpc_status for r in cart.responses} == {""}
    pricing = fetched["edges"][("cart-v1", "pricing-v1", "pricing")]
    assert pricing.rate_by_code(errors_only=True) == pytest.approx({"503": 7.0 * 0.02}, rel=REL)

    rules = "auto" if fetched["recorded"] else "off"
    _collector, (graph,) = _fetch(server, rules, phase="graph")
    failing = graph.get("query:failing")
    assert failing is not None and " or " in failing.params["query"]
    part = prom.normalize(graph, NormalizeContext(time=T, window_s=WINDOW))
    (ledger,) = [e for e in part.edges if e.destination.name == "ledger"]
    # Both proxies' counts summed (the graph phase's rates count a call once per proxy that saw
    # it), and every series once: pricing's 503s (status 14) by the code, ledger's 200s by the status.
    assert {r.code: r.grpc_status for r in ledger.responses if r.is_error} == {"200": "14"}
    assert ledger.error_ratio == pytest.approx(0.12, rel=REL)
    (priced,) = [e for e in part.edges if e.destination.name == "pricing"]
    assert priced.error_ratio == pytest.approx(0.02, rel=REL)

    ratios = [v for s in fetched["part"].series if (s.service.name, s.metric) == ("ledger", "error_ratio")
              for v in s.values if v is not None]
    assert ratios and all(v == pytest.approx(0.12, rel=1e-6) for v in ratios)
    history = fetched["part"].history
    assert history is not None
    # One series per reporter (the destination's and the caller's), each the whole 0.72/s once
    # the rate window lies within the stored samples (the history reaches back before them).
    ends = [s.points[-1][1] for s in history.series if s.signal == "errors" and s.destination.name == "ledger"]
    assert len(ends) == 2 and ends == pytest.approx([0.72, 0.72], rel=1e-6)


def test_workloads_link_to_services(fetched: dict) -> None:
    part = fetched["part"]
    workloads = {str(w.ref): w for w in part.workloads}
    assert workloads["shop/cart-v1"].services == (ServiceRef("shop", "cart"),)
    assert workloads["shop/web-v1"].services == (ServiceRef("shop", "web"),)
    assert workloads["shop/cart-v1"].version == "v1"
    services = {str(s.ref): s for s in part.services}
    assert services["shop/payments"].workloads == ()
    assert services["shop/cart"].workloads == (WorkloadRef("shop", "cart-v1"),)


def test_edges_equal_whichever_metrics_were_read(server: PrometheusServer, fetched: dict) -> None:
    """Raw metrics and recorded series give the same edges (the rules keep every Istio label)."""
    other = "off" if fetched["recorded"] else "auto"
    _collector, (raw,) = _fetch(server, other)
    edges = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW)).edges
    assert len(edges) == len(fetched["edges"])
    for e in edges:
        mine = fetched["edges"][(e.source.name, e.destination_workload.name if e.destination_workload else None,
                                 e.destination.name)]
        assert e.request_rate == pytest.approx(mine.request_rate, rel=REL)
        assert {(r.code, r.flags): r.rate for r in e.responses} == pytest.approx(
            {(r.code, r.flags): r.rate for r in mine.responses}, rel=REL)
        assert (e.latency is None) == (mine.latency is None)
        if e.latency is not None and mine.latency is not None:
            assert e.latency.p99 == pytest.approx(mine.latency.p99, rel=REL)


def test_heavy_queries_split_into_shards_answer_what_they_answer_whole(server: PrometheusServer,
                                                                       fetched: dict) -> None:
    """A mesh too big for the mesh-wide quantiles whole (collectors/prometheus/heavy.py): split
    by service (one namespace, over a shard) the engine answers the same series."""
    rules = "auto" if fetched["recorded"] else "off"
    config = validate({"sources": {"prometheus": {"url": server.url, "timeout": "10s", "recording_rules": rules}}})
    collector = prom.from_config(config, [])
    assert collector is not None
    collector.shard_series = 1  # every service its own shard
    (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # type: ignore[arg-type]
    assert raw.meta["heavy"]["shards"] >= 3
    assert len(raw.get("query:latency_p99").meta["shards"]) >= 3
    edges = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW)).edges
    assert len(edges) == len(fetched["edges"])
    for e in edges:
        mine = fetched["edges"][(e.source.name, e.destination_workload.name if e.destination_workload else None,
                                 e.destination.name)]
        assert (e.latency is None) == (mine.latency is None)
        if e.latency is not None and mine.latency is not None:
            assert (e.latency.p50, e.latency.p90, e.latency.p99) == pytest.approx(
                (mine.latency.p50, mine.latency.p90, mine.latency.p99), rel=REL)
