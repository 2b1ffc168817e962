"""The CloudWatch demo renderer agrees with the ground truth through the real collector."""

from __future__ import annotations

import pytest

from meshobs.collectors import cloudwatch
from meshobs.collectors.base import NormalizeContext
from meshobs.demo.render_cloudwatch import cloudwatch_source
from meshobs.demo.traffic import EdgeTraffic, LatencyProfile
from meshobs.model import Mesh, ServiceRef, WorkloadRef

EDGES = [
    EdgeTraffic("shop", "frontend-v1", "frontend", "v1", "shop", "cart", "cart-v1", "v1", rps=10.0,
                responses=(("200", "-", 0.8), ("404", "-", 0.05), ("503", "UO", 0.1), ("0", "UH", 0.05)),
                latency=LatencyProfile(20.0, 200.0)),
    EdgeTraffic("shop", "frontend-v1", "frontend", "v1", "shop", "cart", "cart-v2", "v2", rps=2.0),
    EdgeTraffic("shop", "cart-v1", "cart", "v1", "shop", "db", "db-v1", "v1", rps=5.0, protocol="tcp"),
]


def test_rendered_metrics_normalise_to_the_ground_truth() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    raw = cloudwatch_source(EDGES, now, 300.0, mesh="shop")
    assert [p.key for p in raw.payloads] == ["ListMetrics/0", "GetMetricData/0", "GetMetricData/1"]
    part = cloudwatch.normalize(raw, NormalizeContext(now, 300.0))
    edges = {e.destination_workload: e for e in part.edges}
    assert set(edges) == {WorkloadRef("shop", "cart-v1"), WorkloadRef("shop", "cart-v2")}  # no TCP edge
    v1 = edges[WorkloadRef("shop", "cart-v1")]
    assert v1.source == WorkloadRef("shop", "frontend-v1") and v1.destination == ServiceRef("shop", "cart")
    assert v1.mesh is Mesh.APPMESH and v1.request_rate == pytest.approx(10.0)
    assert v1.error_ratio == pytest.approx(0.15)  # 503 + no response (Envoy answers 503)
    assert v1.rate_by_code_class()["4xx"] == pytest.approx(0.5)
    assert v1.latency is not None and (v1.latency.p50, v1.latency.p99) == pytest.approx((20.0, 200.0))
    assert part.sources[0].message == ""
