"""What changed, live: the history queries sent to real PromQL engines (Prometheus, backfilled
with promtool; VictoriaMetrics, through its import API) holding dr-change-onset's hour, collected
as ``diagnose rides/booking-api`` collects (graph phase, then the neighbourhood), give the onsets
and the change the bundle gives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from meshobs.bundle import Bundle
from meshobs.checks.base import Settings
from meshobs.collect import build_snapshot
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, Scope
from meshobs.config import validate
from meshobs.demo.build import render_bundle, scenario_timeline
from meshobs.demo.prom_timeline import openmetrics_text
from meshobs.demo.promserver import PrometheusServer, prometheus_available, start_prometheus
from meshobs.demo.scenarios import library_scenario
from meshobs.demo.vmserver import start_victoriametrics, victoriametrics_available
from meshobs.model import ServiceRef, WorkloadRef
from meshobs.timeline import timeline_of

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

NAME = "dr-change-onset"
BOOKING, SURGE, GEO = ServiceRef("rides", "booking-api"), ServiceRef("fares", "surge-calculator"), \
    ServiceRef("rides", "geo-index")


@pytest.fixture(scope="module", params=["prometheus", "victoriametrics"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    engine = request.param
    available = prometheus_available() if engine == "prometheus" else victoriametrics_available()
    if not available:
        flag = "MESHOBS_REQUIRE_PROMETHEUS" if engine == "prometheus" else "MESHOBS_REQUIRE_VICTORIAMETRICS"
        if os.environ.get(flag) == "1":
            pytest.fail(f"{engine} not installed but {flag}=1")
        pytest.skip(f"{engine} not installed")
    sc = library_scenario(NAME)
    text = openmetrics_text(scenario_timeline(sc), sc.time)
    start = start_prometheus if engine == "prometheus" else start_victoriametrics
    with start(text, Path(tmp_path_factory.mktemp(engine))) as srv:
        yield srv


def test_live_engines_give_the_bundles_onsets_and_change(server: PrometheusServer) -> None:
    sc = library_scenario(NAME)
    config = validate({"sources": {"prometheus": {"url": server.url, "timeout": "30s"}}})
    collector = prom.from_config(config, [])
    assert collector is not None
    scope = Scope(target=BOOKING, services=frozenset({BOOKING, SURGE, GEO}),
                  workloads=frozenset({WorkloadRef("rides", "booking-api-v15"),
                                       WorkloadRef("istio-system", "istio-ingressgateway")}))
    (raw,) = collector.fetch(FetchContext(time=sc.time, window_s=sc.window_s, config=config, phase="graph"))
    (scoped,) = collector.fetch(FetchContext(time=sc.time, window_s=sc.window_s, config=config, phase="scoped",
                                             scope=scope))
    raw.payloads.extend(scoped.payloads)
    history = [p for p in raw.payloads if p.key.startswith("history:")]
    assert len(history) == 3 and all(p.ok for p in history), [p.error for p in history]
    assert all(p.meta.get("scope") for p in history)  # narrowed to the neighbourhood

    recorded = render_bundle(sc)
    others = [s for s in recorded.sources if s.kind != "prometheus"]
    live = build_snapshot(Bundle(time=sc.time, window_s=sc.window_s, sources=[*others, raw]), origin="live")
    replay = build_snapshot(recorded, origin=f"demo:{NAME}")
    assert live.history is not None and live.history.step_s == 15.0 and live.history.rate_window_s == 60.0

    got, want = timeline_of(live, Settings()), timeline_of(replay, Settings())
    assert got.checked, got.reason
    for service in (SURGE, BOOKING):
        mine, theirs = got.onset(service, "errors"), want.onset(service, "errors")
        assert mine is not None and theirs is not None
        assert mine.started is not None and theirs.started is not None
        # Prometheus answers exactly what the bundle recorded; VictoriaMetrics computes rate()
        # its own way (no extrapolation to the window's edges): the same onset within a step.
        assert abs(mine.started - theirs.started) <= timedelta(seconds=15 if server.engine != "prometheus" else 0)
        assert mine.change is not None and mine.change.subject == "DestinationRule fares/surge-calculator"
        assert mine.after == pytest.approx(0.18, rel=0.02)
    assert [o.service for o in got.onsets if o.started is not None] == \
        [o.service for o in want.onsets if o.started is not None]
