"""What lets ``demo serve`` hold a big generated mesh: proxies rendered when asked for, and the
Prometheus backfill streamed to promtool in parts. Both must serve what the eager forms served."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from meshobs.demo import promserver
from meshobs.demo.catalog import scenario_for
from meshobs.demo.prometheus import openmetrics, openmetrics_chunks
from meshobs.demo.promserver import start_prometheus
from meshobs.demo.render_envoy import LazyProxies, render_proxies
from meshobs.demo.serve import _envoy_route
from meshobs.raw import RawSource


def _payloads(raw: RawSource) -> list[tuple[str, int | None, str | None, str | None]]:
    return [(p.key, p.status, p.url, p.body) for p in raw.payloads]


# A classic demo, an authored one (rich MeshView, Sidecar scoping, NACKs), one with pods
# without a sidecar, and a generated mesh.
@pytest.mark.parametrize("name", ["ecommerce", "envoyfilter-nack", "ambient-namespace", "generated-40"])
def test_a_proxy_rendered_on_demand_is_the_one_rendered_with_all_the_others(name: str) -> None:
    scenario = scenario_for(name)
    eager = render_proxies(scenario)
    lazy = LazyProxies(scenario, cache=2)  # smaller than the mesh: entries are evicted
    targets = lazy.targets()
    assert [(t["namespace"], t["pod"], t["workload"], t["url"]) for t in targets] == [
        (r.meta["namespace"], r.meta["pod"], r.meta["workload"], r.meta["url"]) for r in eager]
    # In reverse order, and twice over: no answer depends on what was rendered before it.
    for raw in [*reversed(eager), *eager]:
        got = lazy.get(str(raw.meta["namespace"]), str(raw.meta["pod"]))
        assert got is not None and got.name == raw.name
        assert _payloads(got) == _payloads(raw)
    assert lazy.get("nowhere", "no-pod") is None


def test_the_served_admin_api_is_the_same_from_lazy_and_eager_proxies() -> None:
    scenario = scenario_for("generated-20")
    eager, lazy = _envoy_route(render_proxies(scenario)), _envoy_route(LazyProxies(scenario, cache=3), cache=2)
    asks = [("/stats", {"format": ["json"], "filter": [r"membership_total$"]}), ("/stats", {"format": ["json"]}),
            ("/stats", {}), ("/config_dump", {}), ("/clusters", {"format": ["json"]}), ("/ready", {}),
            ("/certs", {}), ("/server_info", {}), ("/nope", {})]
    for target in LazyProxies(scenario).targets():
        for path, query in asks * 2:  # twice: the second from the caches
            at = f"/{target['namespace']}/{target['pod']}{path}"
            assert lazy(at, query) == eager(at, query), at
    assert lazy("/ns-00/no-such-pod/ready", {})[0] == 404


def test_the_backfill_text_comes_in_pieces_that_join_to_the_whole() -> None:
    scenario = scenario_for("generated-15")
    pieces = list(openmetrics_chunks(scenario.edges, scenario.time, scenario.window_s, pods=2))
    assert len(pieces) > 10 and all(p.endswith("\n") for p in pieces)
    assert "".join(pieces) == openmetrics(scenario.edges, scenario.time, scenario.window_s, pods=2)


@pytest.mark.prometheus
def test_a_backfill_in_parts_answers_as_the_whole_text(tmp_path: Path, require_prometheus: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = scenario_for("generated-8")
    args = (scenario.edges, scenario.time, scenario.window_s)
    query = {"query": "sum by (destination_service_name, response_code) "
                      "(rate(istio_requests_total[5m]))", "time": scenario.time.timestamp()}

    def answer(url: str) -> list[tuple[str, str, str]]:
        result = requests.get(f"{url}/api/v1/query", params=query, timeout=10).json()["data"]["result"]
        return sorted((r["metric"]["destination_service_name"], r["metric"]["response_code"], r["value"][1])
                      for r in result)

    text = openmetrics(*args)
    with start_prometheus(text, tmp_path / "whole") as whole:
        expected = answer(whole.url)
    monkeypatch.setattr(promserver, "BACKFILL_PART_BYTES", len(text) // 3)  # a few promtool runs
    with start_prometheus(openmetrics_chunks(*args), tmp_path / "parts") as parts:
        assert len([b for b in (tmp_path / "parts" / "tsdb").iterdir() if (b / "meta.json").exists()]) >= 3
        assert not (tmp_path / "parts" / "metrics.om").exists()
        assert expected and answer(parts.url) == expected
