"""Generated bundles hold the proxies as the live Envoy collector records them (filtered stats,
minimised dumps, no /clusters or /certs), and diagnose exactly as the full admin answers do."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from meshobs.collect import build_snapshot
from meshobs.collectors.envoy.fetch import STATS_FILTER
from meshobs.collectors.envoy.normalize import NOT_ASKED
from meshobs.demo.build import render_bundle
from meshobs.demo.envoy_admin import answer, recorded_proxies
from meshobs.demo.render_envoy import render_proxies
from meshobs.demo.scenario import generate_scenario
from meshobs.engine import diagnose_all
from meshobs.render.json import mesh_dict


def test_recorded_proxies_hold_what_the_collector_asks_and_keeps() -> None:
    scenario = generate_scenario(12)
    full = {r.name: r for r in render_proxies(scenario)}
    recorded = recorded_proxies(scenario)
    assert [r.name for r in recorded] == list(full)
    for raw in recorded:
        assert [p.key for p in raw.payloads] == ["ready", "server_info", "stats", "config_dump"]
        assert set(raw.meta[NOT_ASKED]) == {"certs", "clusters"}
        assert raw.get("stats").params == {"format": "json", "filter": STATS_FILTER}  # type: ignore[union-attr]
        names = [s["name"] for s in json.loads(raw.get("stats").body)["stats"]]  # type: ignore[union-attr, arg-type]
        assert names and all(re.search(STATS_FILTER, n) for n in names)
        everything = json.loads(full[raw.name].get("stats").body)["stats"]  # type: ignore[union-attr, arg-type]
        assert len(names) < len(everything)  # e.g. upstream_cx_active is not read, so not asked
        # minimised: the dump keeps no private key, not even the redacted placeholder
        assert "private_key" not in (raw.get("config_dump").body or "")  # type: ignore[union-attr]


def test_served_stats_honour_the_filter_as_envoy_does() -> None:
    raw = render_proxies(generate_scenario(5))[0]
    assert answer(raw, "stats", {}) is raw.get("stats")
    only = answer(raw, "stats", {"format": "json", "filter": r"membership_total$"})
    assert only is not None
    names = [s["name"] for s in json.loads(only.body or "")["stats"]]
    assert names and all(n.endswith("membership_total") for n in names)


def test_a_recorded_bundle_diagnoses_like_the_full_admin_answers() -> None:
    scenario = generate_scenario(40)
    assert scenario.recorded
    recorded, full = render_bundle(scenario), render_bundle(replace(scenario, recorded=False))
    assert any(p.key == "clusters" for r in full.sources for p in r.payloads)
    assert not any(p.key in ("clusters", "certs") for r in recorded.sources for p in r.payloads)

    def findings(bundle: object) -> dict[str, object]:
        out = mesh_dict(diagnose_all(build_snapshot(bundle)))  # type: ignore[arg-type]
        return {k: v for k, v in out.items() if k != "sources"}

    assert findings(recorded) == findings(full)


def test_the_served_admin_api_answers_stats_through_the_same_filter() -> None:
    from meshobs.demo.serve import _envoy_route

    raw = render_proxies(generate_scenario(5))[0]
    route = _envoy_route([raw])
    at = f"/{raw.meta['namespace']}/{raw.meta['pod']}/stats"
    status, _ctype, body = route(at, {"format": ["json"], "filter": [r"membership_total$"]})
    names = [s["name"] for s in json.loads(body)["stats"]]
    assert status == 200 and names and all(n.endswith("membership_total") for n in names)
    _status, _ctype, whole = route(at, {"format": ["json"]})
    assert len(json.loads(whole)["stats"]) > len(names)
