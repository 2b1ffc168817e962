"""The Prometheus collector against a REAL Prometheus backfilled (promtool) with known traffic."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.promql import ISTIO_DURATION_BUCKETS_MS, QUERIES, RANGE_QUERIES, histogram_quantile
from meshobs.config import validate
from meshobs.demo.prometheus import openmetrics
from meshobs.demo.promserver import PrometheusServer, prometheus_available, start_prometheus
from meshobs.demo.traffic import EdgeTraffic, LatencyProfile
from meshobs.model import Edge, Reporter, Security, ServiceRef, SourceState, WorkloadRef

pytestmark = pytest.mark.prometheus

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = 300.0


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
    # TCP to a data store: rps is connections opened per second.
    _edge("cart", "redis", "redis-v1", 2.0, protocol="tcp", tcp_sent_bps=4096.0,
          tcp_received_bps=1024.0),
]


def expected_p99(edge: EdgeTraffic) -> float:
    """What histogram_quantile answers over Istio's buckets for the edge's latency profile."""
    buckets = [(float(b), edge.rps * edge.latency.cdf(b)) for b in ISTIO_DURATION_BUCKETS_MS]
    return histogram_quantile(0.99, [*buckets, (math.inf, edge.rps)])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    if not prometheus_available():
        if os.environ.get("MESHOBS_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("prometheus/promtool not on PATH but MESHOBS_REQUIRE_PROMETHEUS=1")
        pytest.skip("prometheus/promtool not installed")
    with start_prometheus(openmetrics(TRAFFIC, T, WINDOW), Path(tmp_path_factory.mktemp("prom"))) as srv:
        yield srv


def _query_count(url: str, handler: str = "/api/v1/query") -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('prometheus_http_requests_total{') and f'handler="{handler}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="session")
def fetched(server: PrometheusServer) -> tuple[dict[tuple[str, str | None, str], Edge], float, list]:
    config = validate({"sources": {"prometheus": {"url": server.url, "timeout": "10s"}}})
    collector = prom.from_config(config, [])
    assert collector is not None
    before = _query_count(server.url), _query_count(server.url, "/api/v1/query_range")
    raws = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))
    sent = (_query_count(server.url) - before[0], _query_count(server.url, "/api/v1/query_range") - before[1])
    part = prom.normalize(raws[0], NormalizeContext(time=T, window_s=WINDOW))
    edges = {(e.source.name, e.destination_workload.name if e.destination_workload else None,
              e.destination.name): e for e in part.edges}
    return edges, sent, [part, raws[0]]


def test_constant_query_count_reaches_the_server(fetched: tuple) -> None:
    _edges, sent, (part, raw) = fetched
    assert len(raw.payloads) == len(QUERIES) + len(RANGE_QUERIES) == 8
    assert sent == (len(QUERIES), len(RANGE_QUERIES))
    assert part.sources[0].state is SourceState.OK
    assert all(p.ok for p in raw.payloads)
    assert all(p.params["time"] == T.timestamp() for p in raw.payloads if p.key.startswith("query:"))


def test_history_series_match_the_steady_traffic(fetched: tuple) -> None:
    """The range queries give each service's served rate, error ratio and p99 over the window."""
    part = fetched[2][0]
    series = {(s.service.name, s.metric): s for s in part.series}
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
def test_edge_matches_generated_traffic(fetched: tuple, truth: EdgeTraffic) -> None:
    edges = fetched[0]
    edge = edges[(truth.source_workload, truth.destination_workload, truth.destination_service)]
    assert edge.source == WorkloadRef("shop", truth.source_workload)
    assert edge.destination == ServiceRef("shop", truth.destination_service)
    assert edge.protocol == truth.protocol
    if truth.protocol == "tcp":
        assert edge.tcp_connections_opened_rate == pytest.approx(truth.rps, rel=1e-9)
        assert edge.tcp_sent_bytes_rate == pytest.approx(truth.tcp_sent_bps, rel=1e-9)
        assert edge.tcp_received_bytes_rate == pytest.approx(truth.tcp_received_bps, rel=1e-9)
    else:
        # One reporter's numbers, never both added together.
        assert edge.request_rate == pytest.approx(truth.rps, rel=1e-9)
        assert edge.error_ratio == pytest.approx(truth.error_fraction, abs=1e-9)
        assert edge.latency is not None
        assert edge.latency.p99 == pytest.approx(expected_p99(truth), rel=1e-6)
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


def test_never_reached_edge_has_no_destination_workload(fetched: tuple) -> None:
    edges = fetched[0]
    edge = edges[("web-v1", None, "payments")]
    assert edge.destination_workload is None
    assert edge.rate_by_flag() == {"UH": pytest.approx(4.0)}
    assert edge.error_ratio == pytest.approx(1.0)


def test_python_quantile_equals_prometheus_histogram_quantile(server: PrometheusServer,
                                                             fetched: tuple) -> None:
    """Our bucket interpolation is Prometheus's: ask the server for the same p99."""
    answers = requests.get(f"{server.url}/api/v1/query", timeout=10, params={
        "time": T.timestamp(),
        "query": 'histogram_quantile(0.99, sum by (le, destination_workload, source_workload) '
                 '(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[5m])))',
    }).json()["data"]["result"]
    edges = fetched[0]
    assert len(answers) == 4
    for series in answers:
        m = series["metric"]
        dst = None if m["destination_workload"] == "unknown" else m["destination_workload"]
        match = [e for k, e in edges.items() if k[0] == m["source_workload"] and k[1] == dst]
        assert match[0].latency is not None
        assert match[0].latency.p99 == pytest.approx(float(series["value"][1]), rel=1e-9)


def test_workloads_link_to_services(fetched: tuple) -> None:
    part = fetched[2][0]
    workloads = {str(w.ref): w for w in part.workloads}
    assert workloads["shop/cart-v1"].services == (ServiceRef("shop", "cart"),)
    assert workloads["shop/web-v1"].services == (ServiceRef("shop", "web"),)
    assert workloads["shop/cart-v1"].version == "v1"
    services = {str(s.ref): s for s in part.services}
    assert services["shop/payments"].workloads == ()
    assert services["shop/cart"].workloads == (WorkloadRef("shop", "cart-v1"),)
