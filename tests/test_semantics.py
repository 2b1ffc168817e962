"""Only what a source really says counts as evidence.

An Envoy admin API answering /ready with 429, 500, an HTML page or garbage says nothing about
the proxy: readiness is "could not check" (MSH0002 names the proxy), never MSH0102 "proxy not
ready" ranked as the cause. 503 with Envoy's own state name is "not ready". One malformed host
in /clusters costs that host, not the proxy's readiness, config, certificates and stats.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from meshobs.bundle import Bundle
from meshobs.collect import build_snapshot
from meshobs.collectors.envoy import EnvoyCollector, Target
from meshobs.collectors.envoy.server_info import readiness
from meshobs.demo.catalog import load_demo
from meshobs.engine import diagnose
from meshobs.model import MeshSnapshot, SourceState
from meshobs.raw import RawSource
from tests.support.loopback import LoopbackServer

POD = "envoy:shop/cart-v1"  # prefix of the demo proxy the tests replace


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, "LIVE\n", (True, "LIVE")),
    (503, "PRE_INITIALIZING\n", (False, "PRE_INITIALIZING")),
    (503, "DRAINING", (False, "DRAINING")),
    (503, "INITIALIZING\n", (False, "INITIALIZING")),
    (429, "Too Many Requests", (None, None)),
    (500, "upstream connect error", (None, None)),
    (503, "<html>Service Unavailable</html>", (None, None)),
    (200, "\x00\xff garbage", (None, None)),
    (200, "", (None, None)),
    (503, "LIVE", (None, None)),  # Envoy never says both: not evidence
])
def test_readiness_is_what_envoy_says(status: int, body: str, expected: tuple[bool | None, str | None]) -> None:
    ready, state, why = readiness(status, body)
    assert (ready, state) == expected
    assert (why is None) == (ready is not None)


def _demo_with_proxy_from(server: LoopbackServer, ready: tuple[int, str]) -> tuple[Bundle, str]:
    """The healthy demo with one proxy's admin payloads fetched live from ``server``, whose
    /ready answers ``ready`` (status, body)."""
    bundle = load_demo("healthy")
    original = next(s for s in bundle.sources if s.name.startswith(POD))
    for p in original.payloads:
        server.route(f"/{p.key}", status=p.status or 200, body=p.body or "")
    server.route("/ready", status=ready[0], body=ready[1], content_type="text/plain")
    meta = original.meta
    target = Target(namespace=meta["namespace"], pod=meta["pod"], url=server.url, workload=meta.get("workload"))
    [fetched] = EnvoyCollector([target], timeout_s=5).fetch()
    sources = [fetched if s is original else s for s in bundle.sources]
    return replace(bundle, sources=sources), original.name


def _findings(snapshot: MeshSnapshot, pod: str) -> list[tuple[str, str]]:
    """(code, subject) of the diagnosis of the service whose pod ``pod`` is (sources included)."""
    proxy = next(p for p in snapshot.proxies if p.pod == pod)
    workload = next(w for w in snapshot.workloads if w.ref == proxy.workload)
    report = diagnose(snapshot, workload.services[0])
    return [(f.code, f.subject) for f in report.findings]


@pytest.mark.parametrize(("status", "body"), [
    (429, "rate limited\n"), (500, "internal error"), (503, "<html><body>Service Unavailable</body></html>"),
    (200, "{\"not\": \"envoy\"}"),
])
def test_an_unusable_ready_answer_is_could_not_check(status: int, body: str) -> None:
    with LoopbackServer() as srv:
        bundle, name = _demo_with_proxy_from(srv, (status, body))
    snapshot = build_snapshot(bundle)
    proxy = next(p for p in snapshot.proxies if name.endswith(p.pod))
    assert proxy.ready is None and proxy.state == "LIVE"  # /server_info still says LIVE
    assert proxy.clusters and proxy.routes  # the rest of the proxy was read
    status_of = {s.name: s for s in snapshot.sources}[name]
    assert status_of.state is SourceState.ERROR and "could not check readiness" in status_of.message
    found = _findings(snapshot, proxy.pod)
    assert ("MSH0002", f"Source {name}") in found
    assert not [f for f in found if f[0] == "MSH0102"], found


def test_envoy_saying_it_is_not_ready_is_a_finding() -> None:
    with LoopbackServer() as srv:
        bundle, name = _demo_with_proxy_from(srv, (503, "PRE_INITIALIZING\n"))
    snapshot = build_snapshot(bundle)
    proxy = next(p for p in snapshot.proxies if name.endswith(p.pod))
    assert proxy.ready is False
    assert [f for f in _findings(snapshot, proxy.pod) if f[0] == "MSH0102"] == [("MSH0102", f"Proxy {proxy.id}")]


def test_one_bad_host_costs_that_host_only() -> None:
    bundle = load_demo("healthy")
    original = next(s for s in bundle.sources if s.name.startswith(POD))
    clusters = json.loads(original.get("clusters").body)  # type: ignore[union-attr]
    victim = next(c for c in clusters["cluster_statuses"] if c.get("host_statuses"))
    hosts = len(victim["host_statuses"])
    victim["host_statuses"][0]["stats"] = [{"name": "rq_total", "value": {"oops": 1}}]
    broken = RawSource(original.name, "envoy", meta=original.meta, payloads=[
        replace(p, body=json.dumps(clusters)) if p.key == "clusters" else p for p in original.payloads])
    snapshot = build_snapshot(replace(bundle, sources=[broken if s is original else s for s in bundle.sources]))
    before = build_snapshot(bundle)
    proxy = next(p for p in snapshot.proxies if original.name.endswith(p.pod))
    intact = next(p for p in before.proxies if p.id == proxy.id)
    assert proxy.ready is True and proxy.routes == intact.routes and proxy.xds == intact.xds
    assert [c for c in snapshot.certs if c.proxy_id == proxy.id] == [c for c in before.certs if c.proxy_id == proxy.id]
    cluster = proxy.cluster(victim["name"])
    assert cluster is not None and len(cluster.hosts) == hosts - 1
    assert cluster.counters == intact.cluster(victim["name"]).counters  # type: ignore[union-attr]
    status = {s.name: s for s in snapshot.sources}[original.name]
    assert status.state is SourceState.OK and len(status.problems) == 1 and victim["name"] in status.problems[0]
    assert ("MSH0003", f"Source {original.name}") in _findings(snapshot, proxy.pod)


def test_requests_without_a_status_class_are_not_errors() -> None:
    from meshobs.model import Edge, ResponseStat, ServiceRef, WorkloadRef

    edge = Edge(WorkloadRef("m", "a"), ServiceRef("m", "b"), request_rate=10.0,
                responses=(ResponseStat("2xx", "-", 6.0), ResponseStat("unknown", "-", 4.0)))
    assert edge.error_rate == 0.0 and edge.rate_by_code_class() == {"2xx": 6.0, "unknown": 4.0}
    assert ResponseStat("0", "UF", 1.0).is_error and ResponseStat("503", "UO", 1.0).is_error
