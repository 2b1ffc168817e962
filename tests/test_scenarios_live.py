"""A representative subset of the scenario library served live (real Prometheus backfilled with
the scenario's hour of history, loopback Envoy admin / Kubernetes / Jaeger / istiod), collected
through the real collectors and judged by the same Expectation as the bundle."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import requests
import yaml

from meshobs.collect import build_snapshot, collect
from meshobs.config import load_config
from meshobs.demo.build import render_bundle
from meshobs.demo.scenarios import library_scenario
from meshobs.demo.serve import serve_scenario
from tests.test_scenarios import MISSING, problems_of

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

# The last two: a misconfiguration an analyzer finds is the root cause of a traffic symptom
# (issue 11's two live scenarios), judged from what the live collectors read.
LIVE = ("retries-mask-ledger", "envoyfilter-nack", "mirror-shadow", "empty-window", "istiod-not-ready",
        "proxy-unacked", "subset-without-pods", "authz-unknown-principal")


def _params() -> list[object]:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=MISSING[name]))
            if name in MISSING else name for name in LIVE]


@pytest.mark.parametrize("name", _params())
def test_live_diagnosis_reaches_the_known_cause(name: str, tmp_path: Path, require_prometheus: None) -> None:
    with serve_scenario(name, tmp_path / "demo") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        snapshot = build_snapshot(collect(config), origin="live")
    problems = problems_of(library_scenario(name), snapshot)
    assert not problems, f"{name} (live): " + "; ".join(problems)


def _vector(url: str, query: str, at: float) -> dict[str, float]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": query, "time": at}, timeout=30).json()
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in answer["data"]["result"]}


def _matrix(url: str, params: dict[str, object]) -> dict[tuple[str, float], float]:
    answer = requests.get(f"{url}/api/v1/query_range", params=params, timeout=30).json()  # type: ignore[arg-type]
    return {(json.dumps(r["metric"], sort_keys=True), float(t)): float(v)
            for r in answer["data"]["result"] for t, v in r["values"]}


def test_live_sources_agree_with_the_bundle_and_hold_the_hour(tmp_path: Path, require_prometheus: None) -> None:
    name = "dr-change-onset"
    sc = library_scenario(name)
    recorded = next(s for s in render_bundle(sc).sources if s.kind == "prometheus")
    at = sc.time.timestamp()
    with serve_scenario(name, tmp_path / "demo") as demo:
        assert demo.prometheus_url and demo.istiod_url
        # Every query the collector sends answers what the bundle recorded (same samples, same
        # rate() arithmetic; only float summation order differs).
        for payload in recorded.payloads:
            if payload.key.startswith("query:") or payload.key == "rules":
                live = _vector(demo.prometheus_url, payload.params["query"], at)
                mine = {json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
                        for r in payload.json()["result"]}
            else:  # range:NAME, with the very start/end/step the collector sends
                live = _matrix(demo.prometheus_url, payload.params)
                mine = {(json.dumps(r["metric"], sort_keys=True), float(t)): float(v)
                        for r in payload.json()["result"] for t, v in r["values"]}
            assert live.keys() == mine.keys(), payload.key
            for key, value in mine.items():
                assert live[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (payload.key, key)
        # The hour of history shows the onset: nothing overflows before it, 18% after.
        answer = requests.get(f"{demo.prometheus_url}/api/v1/query_range", timeout=30, params={
            "query": 'sum(rate(istio_requests_total{reporter="source",response_flags="UO"}[1m]))',
            "start": at - 3300, "end": at, "step": 60}).json()["data"]["result"]
        points = {round(at - float(t)): float(v) for t, v in answer[0]["values"]}
        assert min(points) == 0 and max(points) <= 1200 + 60
        assert math.isclose(points[0], 90 * 0.18, rel_tol=1e-6)
        # istiod: its metrics in Prometheus, its debug endpoints per replica.
        assert _vector(demo.prometheus_url, "pilot_xds", at)
        targets = yaml.safe_load(demo.config_path.read_text())["sources"]["istiod"]["targets"]
        status = requests.get(targets[0]["url"] + "/debug/syncz", timeout=10).json()
        assert {s["proxy"].split(".")[-1] for s in status} >= {"rides", "fares"}
        assert all(s["cluster_sent"] == s["cluster_acked"] for s in status)
        assert requests.get(targets[0]["url"] + "/ready", timeout=10).status_code == 200


@pytest.mark.parametrize("name", ["istiod-not-ready", "envoyfilter-nack"])
def test_live_prometheus_answers_the_control_plane_query_as_the_bundle(name: str, tmp_path: Path,
                                                                       require_prometheus: None) -> None:
    """istiod's metrics where they move: failed sends and push context errors born 14 min ago, reject
    gauges set per proxy 26 min ago. The bundle's answer is the real server's."""
    from meshobs.collectors.promql import CONTROL_PLANE

    sc = library_scenario(name)
    recorded = next(s for s in render_bundle(sc).sources if s.kind == "prometheus").get(f"query:{CONTROL_PLANE}")
    assert recorded is not None
    mine = {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in recorded.json()["result"]}
    assert any('"reject_' in k or '"pushes"' in k for k in mine)
    with serve_scenario(name, tmp_path / "demo") as demo:
        assert demo.prometheus_url
        live = _vector(demo.prometheus_url, recorded.params["query"], sc.time.timestamp())
    assert live.keys() == mine.keys()
    for key, value in mine.items():
        assert live[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
