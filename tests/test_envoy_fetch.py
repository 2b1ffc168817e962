"""Envoy fetch against loopback servers serving recorded payloads, through build_snapshot."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.bundle import Bundle
from meshobs.collect import build_snapshot
from meshobs.collectors.base import FetchContext
from meshobs.collectors.envoy import EnvoyCollector, Target, from_config
from meshobs.collectors.envoy.fetch import PROXY_BUDGET_TIMEOUTS
from meshobs.config import validate
from meshobs.model import SourceState
from tests.support.loopback import LoopbackServer, unused_port

PRODUCTPAGE = "envoy-config-dump/istio/describe__productpage-v1-7bbd79f8fd-k6j79.json"
SERVER_INFO = json.dumps({"version": "abc/1.29.4/Clean/RELEASE/BoringSSL", "state": "LIVE",
                          "uptime_current_epoch": "120s", "node": {"id": "sidecar~10.0.0.1~x.default~d"}})


def serve_good(srv: LoopbackServer, corpus: Path, *, stats_json: bool = False) -> None:
    srv.route("/ready", body="LIVE\n", content_type="text/plain")
    srv.route("/server_info", body=SERVER_INFO)
    srv.route("/clusters", body=(corpus / "envoy-clusters/istio/clusters.json").read_text())
    if stats_json:
        srv.route("/stats", body=json.dumps({"stats": [
            {"name": "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_timeout", "value": 4},
            {"name": "control_plane.connected_state", "value": 1}]}))
    else:  # no JSON stats (404): the collector falls back to the Prometheus text
        srv.route("/stats/prometheus", content_type="text/plain",
                  body=(corpus / "envoy-stats/netdata-go.d.plugin/envoy.txt").read_text())
    srv.route("/config_dump", body=(corpus / PRODUCTPAGE).read_text())
    srv.route("/certs", body='{"certificates": []}')


def target(name: str, url: str) -> Target:
    return Target(namespace="default", pod=name, url=url, workload=name.rsplit("-", 1)[0])


TIMEOUT_S = 2.0


def test_good_and_bad_proxies_in_one_snapshot(corpus: Path) -> None:
    dump = (corpus / PRODUCTPAGE).read_text()
    servers = [LoopbackServer() for _ in range(6)]
    for s in servers:
        s.__enter__()
    try:
        good, good_json, truncated, not_json, stats500, slow = servers
        serve_good(good, corpus)
        serve_good(good_json, corpus, stats_json=True)
        serve_good(truncated, corpus)
        truncated.route("/config_dump", body=dump[: len(dump) // 2])
        serve_good(not_json, corpus)  # stats fail, so /clusters is asked, and answers text
        not_json.route("/stats/prometheus", status=500, body="internal error")
        not_json.route("/clusters", body="cluster_statuses: oops, this is the text format\n",
                       content_type="text/plain")
        serve_good(stats500, corpus)
        stats500.route("/stats", status=500, body="internal error")
        stats500.route("/stats/prometheus", status=500, body="internal error")
        serve_good(slow, corpus)
        # Slow past the request's total time by a margin: and that time generous enough that
        # the good proxies' answers (a 0.5 s limit was missed under load) never reach it.
        slow.route("/config_dump", body=dump, delay_s=TIMEOUT_S + 1.0)
        targets = [target("good-1", good.url), target("goodjson-1", good_json.url),
                   target("truncated-1", truncated.url), target("notjson-1", not_json.url),
                   target("stats500-1", stats500.url), target("slow-1", slow.url),
                   target("gone-1", f"http://127.0.0.1:{unused_port()}")]
        start = time.monotonic()
        raws = EnvoyCollector(targets, timeout_s=TIMEOUT_S, concurrency=4).fetch()
        # Bounded by the proxies' budgets: two waves of four, each proxy within its budget.
        assert time.monotonic() - start < 2 * PROXY_BUDGET_TIMEOUTS * TIMEOUT_S
    finally:
        for s in servers:
            s.__exit__(None, None, None)

    assert [r.name for r in raws] == [f"envoy:default/{t.pod}" for t in targets]
    assert {k: v for k, v in raws[0].meta.items() if k != "not_asked"} == {
        "namespace": "default", "pod": "good-1", "url": good.url, "workload": "good"}
    # Only what the checks read: /certs when the dump has no certificates, /clusters when the
    # stats could not be read.
    assert {p.key for p in raws[0].payloads} == {"ready", "server_info", "stats", "config_dump"}
    assert set(raws[0].meta["not_asked"]) == {"certs", "clusters"}
    assert raws[2].get("certs") is not None  # truncated dump: the certificates come from /certs
    assert raws[4].get("clusters") is not None  # stats failed: membership from /clusters
    assert "filter" in {k for _m, path, _h in good.requests for k in path.partition("?")[2].split("&")
                        for k in [k.split("=")[0]]}
    assert not any("include_eds" in path for _m, path, _h in good.requests)
    assert raws[0].get("stats").url.endswith("/stats/prometheus")
    snap = build_snapshot(Bundle(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300, sources=raws))
    state = {s.name: s for s in snap.sources}
    assert state["envoy:default/good-1"].state is SourceState.OK
    assert state["envoy:default/goodjson-1"].state is SourceState.OK
    for name, word in (("truncated-1", "config_dump"), ("notjson-1", "clusters"), ("stats500-1", "500"),
                       ("slow-1", "timed out"), ("gone-1", "refused")):
        status = state[f"envoy:default/{name}"]
        assert status.state is SourceState.ERROR, name
        # The status's name says which proxy; its message says why (without repeating the name).
        assert word in status.message, status.message
    proxies = {p.pod: p for p in snap.proxies}
    # Every reachable proxy is kept with what could be read; only the unreachable one is missing.
    assert set(proxies) == {"good-1", "goodjson-1", "truncated-1", "notjson-1", "stats500-1", "slow-1"}
    reviews = "outbound|9080||reviews.default.svc.cluster.local"
    assert proxies["good-1"].cluster("service_envoyproxy_io").counter("update_attempt") == 1242
    assert proxies["goodjson-1"].cluster(reviews).counter("upstream_rq_timeout") == 4
    assert proxies["goodjson-1"].control_plane_connected is True
    assert proxies["truncated-1"].cluster("service_envoyproxy_io")  # from the stats, despite the bad dump
    assert proxies["stats500-1"].cluster(reviews).hosts  # from /clusters, as the stats failed
    assert proxies["notjson-1"].routes  # from the dump, despite the bad /clusters
    assert proxies["slow-1"].xds == () and proxies["slow-1"].envoy_version == "1.29.4"
    assert str(proxies["good-1"].workload) == "default/good"
    assert proxies["good-1"].ready is True


def test_concurrency_is_bounded() -> None:
    lock = threading.Lock()
    in_flight = {"now": 0, "peak": 0}

    def slow_ready(path: str, headers: dict[str, str]) -> tuple[int, str]:
        with lock:
            in_flight["now"] += 1
            in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
        time.sleep(0.3)
        with lock:
            in_flight["now"] -= 1
        return 200, "LIVE"

    with LoopbackServer() as srv:
        srv.route("/ready", handler=slow_ready)
        targets = [target(f"p{i}-1", srv.url) for i in range(20)]
        raws = EnvoyCollector(targets, timeout_s=5, concurrency=8).fetch()
        ready_calls = sum(1 for r in srv.requests if r[1] == "/ready")
    assert len(raws) == 20 and ready_calls == 20
    assert 2 <= in_flight["peak"] <= 8


def ctx_until(seconds: float, **kwargs: object) -> FetchContext:
    return FetchContext(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300, config=validate({}),
                        deadline=time.monotonic() + seconds, **kwargs)  # type: ignore[arg-type]


def test_run_deadline_stops_waiting() -> None:
    with LoopbackServer() as srv:
        srv.route("/ready", body="LIVE", delay_s=0.3)
        targets = [target(f"p{i}-1", srv.url) for i in range(6)]
        start = time.monotonic()
        raws = EnvoyCollector(targets, timeout_s=5, concurrency=1).fetch(ctx_until(0.5))
        took = time.monotonic() - start
    skipped = [r for r in raws if r.payloads and r.payloads[0].error and "deadline" in r.payloads[0].error]
    assert len(raws) == 6 and len(skipped) >= 3
    assert took < 1.5  # returned at the deadline, not after every proxy


def test_static_config_builds_targets(tmp_path: Path) -> None:
    config = validate({"sources": {"envoy": {"targets": [
        {"namespace": "shop", "pod": "cart-v1-5d9f8c7b6d-x2x8q", "workload": "cart-v1",
         "url": "http://127.0.0.1:15000/"}], "timeout": "2s", "concurrency": 3}}})
    collector = from_config(config, [])
    assert collector is not None
    assert (collector.timeout_s, collector.concurrency) == (2.0, 3)
    assert collector.targets[0].source_name == "envoy:shop/cart-v1-5d9f8c7b6d-x2x8q"
    assert collector.targets[0].url == "http://127.0.0.1:15000"
    assert from_config(validate({"sources": {"prometheus": {"url": "http://x"}}}), []) is None


class _Exploding:
    """A transport that raises what no client is expected to (not a requests error)."""

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> object:
        raise RuntimeError("can't start new thread")

    def close(self) -> None:
        pass


def test_one_proxy_raising_costs_that_proxy_only(corpus: Path) -> None:
    # Issue 9: a live --all at 1,000 services recorded one "envoy" source in error and 0 admin
    # requests: one worker's exception re-raised by the fan-out dropped every proxy's answers.
    from meshobs.collectors.envoy.fetch import Transport, http_transport

    def transport(t: Target) -> Transport:
        return _Exploding() if t.pod == "boom-1" else http_transport(t)  # type: ignore[return-value]

    with LoopbackServer() as srv:
        serve_good(srv, corpus)
        targets = [target(f"p{i}-1", srv.url) for i in range(5)]
        targets.insert(2, target("boom-1", srv.url))
        raws = EnvoyCollector(targets, timeout_s=5, concurrency=3, transport=transport).fetch()
        ready = sum(1 for _m, path, _h in srv.requests if path == "/ready")
    assert [r.name for r in raws] == [f"envoy:default/{t.pod}" for t in targets]
    assert ready == 5  # every other proxy was asked
    boom = raws[2]
    assert boom.error is not None and "RuntimeError" in boom.error and not boom.payloads
    snap = build_snapshot(Bundle(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300, sources=raws))
    state = {s.name: s.state for s in snap.sources}
    assert state["envoy:default/boom-1"] is SourceState.ERROR
    assert sum(st is SourceState.OK for st in state.values()) == 5
    assert {p.pod for p in snap.proxies} == {f"p{i}-1" for i in range(5)}


def test_a_recorded_proxy_is_trimmed_once(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording a bundle keeps each config dump and server_info reduced once (a merge had left
    a second pass over every body on this path); what is recorded is what one pass gives."""
    from meshobs.collectors.envoy import fetch as envoy_fetch
    from meshobs.collectors.envoy.minimise import minimise
    from meshobs.raw import Payload

    passes: dict[str, int] = {}

    def counted(payload: Payload) -> Payload:
        passes[payload.key] = passes.get(payload.key, 0) + 1
        return minimise(payload)

    monkeypatch.setattr(envoy_fetch, "minimise", counted)
    with LoopbackServer() as srv:
        serve_good(srv, corpus)
        raws = EnvoyCollector([target("good-1", srv.url)], timeout_s=5, concurrency=1).fetch()  # no digest: recorded
    dump, info = raws[0].get("config_dump"), raws[0].get("server_info")
    assert dump is not None and info is not None
    assert passes["config_dump"] == 1 and passes["server_info"] == 1
    once = minimise(Payload(key="config_dump", url="", body=(corpus / PRODUCTPAGE).read_text()))
    assert dump.body == once.body and dump.meta.get("minimised") is True
    assert info.body == minimise(Payload(key="server_info", url="", body=SERVER_INFO)).body
