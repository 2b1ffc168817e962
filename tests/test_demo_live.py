"""A demo served live on loopback collects to the same mesh as replaying its shipped bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshobs.collect import build_snapshot, collect
from meshobs.config import load_config
from meshobs.demo.catalog import load_demo
from meshobs.demo.serve import serve_scenario

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]


def _edges(snapshot):  # type: ignore[no-untyped-def]
    return {(str(e.source), str(e.destination), str(e.destination_workload), e.reporter): e
            for e in snapshot.edges}


def test_live_demo_matches_the_shipped_bundle(tmp_path: Path, require_prometheus: None) -> None:
    with serve_scenario("ecommerce", tmp_path) as demo:
        config = load_config(str(demo.config_path))
        assert config is not None and demo.prometheus_url
        live = build_snapshot(collect(config), origin="live")
    replay = build_snapshot(load_demo("ecommerce"), origin="demo")

    assert {s.name: s.state for s in live.sources} == {s.name: s.state for s in replay.sources}
    assert all(s.state == "ok" for s in live.sources), [s for s in live.sources if s.state != "ok"]
    assert sorted(s.ref for s in live.services) == sorted(s.ref for s in replay.services)
    live_edges, replay_edges = _edges(live), _edges(replay)
    assert set(live_edges) == set(replay_edges)
    for key, edge in replay_edges.items():
        # A real Prometheus extrapolates rate() at the window's edges: allow a few percent.
        assert live_edges[key].request_rate == pytest.approx(edge.request_rate, rel=0.05, abs=1e-3), key
        assert live_edges[key].error_ratio == pytest.approx(edge.error_ratio, abs=0.02), key
    assert sorted(p.id for p in live.proxies) == sorted(p.id for p in replay.proxies)
    cart = next(p for p in live.proxies if p.pod.startswith("cart-v1-"))
    db = cart.cluster("outbound|8080||database-service.shop.svc.cluster.local")
    assert db is not None and db.membership_healthy == 0 and db.outlier_ejections_active == 2
    assert len(live.traces) == len(replay.traces)
    assert len(live.certs) == len(replay.certs)


def test_serve_without_prometheus_writes_a_valid_config(tmp_path: Path) -> None:
    with serve_scenario("healthy", tmp_path, prometheus=False) as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        assert "prometheus" not in config.sources
        assert len(config.sources["envoy"]["targets"]) == 10
        snapshot = build_snapshot(collect(config))
    assert {s.name for s in snapshot.sources if s.state != "ok"} == set()
    assert len(snapshot.proxies) == 10
