"""The X-Ray demo renderer agrees with the ground truth through the real collector."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meshobs.collectors import xray
from meshobs.collectors.base import NormalizeContext
from meshobs.demo.render_xray import xray_source
from meshobs.demo.traffic import EdgeTraffic, LatencyProfile
from meshobs.model import UNKNOWN_WORKLOAD, WorkloadRef

EDGES = [
    EdgeTraffic("shop", "gateway", "unknown", "", "shop", "frontend", "frontend-v1", "v1", rps=20.0),
    EdgeTraffic("shop", "frontend-v1", "frontend", "v1", "shop", "cart", "cart-v1", "v1", rps=10.0,
                responses=(("200", "-", 0.7), ("429", "-", 0.1), ("503", "UO", 0.2)),
                latency=LatencyProfile(40.0, 400.0)),
]


def test_rendered_graph_and_traces_normalise_to_the_ground_truth() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    raw = xray_source(EDGES, now, 300.0, traces=12)
    assert [p.key for p in raw.payloads][:2] == ["GetServiceGraph/0", "GetTraceSummaries/0"]
    assert sum(1 for p in raw.payloads if p.key.startswith("BatchGetTraces/")) == 3  # 12 traces, 5 a call
    part = xray.normalize(raw, NormalizeContext(now, 300.0))
    edges = {e.source: e for e in part.edges}
    assert set(edges) == {UNKNOWN_WORKLOAD, WorkloadRef("shop", "frontend-v1")}
    cart = edges[WorkloadRef("shop", "frontend-v1")]
    assert cart.request_rate == pytest.approx(10.0, rel=0.01)
    assert cart.error_ratio == pytest.approx(0.2, rel=0.01)
    assert cart.rate_by_code()["429"] == pytest.approx(1.0, rel=0.01)
    assert cart.latency is not None and cart.latency.p50 == pytest.approx(40.0, rel=0.05)
    assert len(part.traces) == 12
    for trace in part.traces:
        (root,) = trace.roots
        assert root.workload == WorkloadRef("shop", "frontend-v1")
        for span in trace.spans:
            assert span.workload is not None and span.start_us >= root.start_us
            assert span.end_us <= root.end_us + 1
    services = set().union(*(t.services for t in part.traces))
    assert services == {"frontend-v1", "cart-v1"}
