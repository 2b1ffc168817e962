"""Envoy admin through the Kubernetes port-forward API: the real ``kubernetes`` client against a
loopback API server that upgrades to the v4 channel protocol and answers HTTP/1.1 behind it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import websocket

from meshobs.bundle import Bundle
from meshobs.collect import build_snapshot, collect
from meshobs.collectors.envoy.discovery import Target
from meshobs.collectors.envoy.portforward import PortForwardTransport, load_client_configuration
from meshobs.collectors.kubernetes import KubeConfigError, KubernetesCollector, load_configuration
from meshobs.config import validate
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot, SourceState
from tests.support.fake_portforward import FakePortForward

TOKEN = "tok-portforward-5e6f"
FRONTEND = ("shop", "frontend-v1-47gqnpsx4z-m8glk")
CART_V1 = "outbound|8080|v1|cart-service.shop.svc.cluster.local"
KUBELET_REFUSED = ("error forwarding port 15000 to pod 9d3c, uid : failed to execute portforward in "
                   "network namespace \"/var/run/netns/cni-1\": failed to connect to localhost:15000 "
                   "inside namespace \"9d3c\", IPv4: dial tcp4 127.0.0.1:15000: connect: connection refused ")


@pytest.fixture(scope="module")
def demo() -> Bundle:
    return load_demo("ecommerce")


def _stage(api: FakePortForward, demo: Bundle, modes: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Serve the demo's Kubernetes lists and every proxy's recorded admin payloads."""
    for raw in demo.sources:
        if raw.kind == "kubernetes":
            for p in raw.payloads:
                if p.ok and p.body and p.url:
                    api.serve(p.url.split("?", 1)[0], json.loads(p.body))
    pods = []
    for raw in demo.sources:
        if raw.kind != "envoy":
            continue
        ns, name = raw.meta["namespace"], raw.meta["pod"]
        mode = (modes or {}).get(name, "ok")
        api.add_pod(ns, name, {p.key: p.body for p in raw.payloads if p.body is not None}, mode=mode,
                    error=KUBELET_REFUSED if mode == "error" else "")
        pods.append((ns, name))
    return pods


def _collect(api: FakePortForward, tmp_path: Path, demo: Bundle, **envoy: Any) -> MeshSnapshot:
    kubeconfig = api.write_kubeconfig(tmp_path)  # current-context is a decoy: the context must be used
    config = validate({"mesh": "istio", "sources": {
        "kubernetes": {"kubeconfig": str(kubeconfig), "context": "fake"},
        "envoy": {"discovery": "kubernetes", "timeout": "3s", **envoy}}})
    return build_snapshot(collect(config, at=demo.time))


def _status(snap: MeshSnapshot, ns: str, pod: str) -> Any:
    return next(s for s in snap.sources if s.name == f"envoy:{ns}/{pod}")


def test_proxies_are_built_from_payloads_fetched_through_the_forward(tmp_path: Path, demo: Bundle) -> None:
    with FakePortForward(token=TOKEN) as api:
        pods = _stage(api, demo)
        snap = _collect(api, tmp_path, demo)
    assert len(pods) == 10
    assert all(_status(snap, ns, pod).state is SourceState.OK for ns, pod in pods)
    for ns, pod in pods:
        (fwd, *more) = api.forwards_to(ns, pod)
        assert not more  # one forward per proxy: HTTP keep-alive carries every request
        assert fwd.ports == "15000" and fwd.protocol == "v4.channel.k8s.io"
        assert fwd.authorization == f"Bearer {TOKEN}"
        # What the checks read (the demo's dumps carry SDS certificates, so no /certs).
        assert [r.split("?")[0] for r in fwd.admin_requests] == ["/ready", "/server_info", "/stats", "/config_dump"]

    proxy = next(p for p in snap.proxies if (p.namespace, p.pod) == FRONTEND)
    assert proxy.admin_url == f"portforward://{FRONTEND[0]}/{FRONTEND[1]}:15000"
    assert proxy.ready is True and proxy.cluster(CART_V1) is not None
    split = next(r for r in proxy.routes if r.name == "canary-split")
    assert {(d.cluster.split("|")[2], d.weight) for d in split.destinations} == {("v1", 90), ("v2", 10)}
    workload_cert = next(c for c in snap.certs if c.proxy_id == proxy.id and c.role == "workload")
    assert workload_cert.not_after == datetime.fromisoformat("2026-11-21T07:48:00+00:00")
    # Byte for byte the recorded payloads: the same model as the recorded bundle gives, but for
    # the host lists of /clusters, not asked since the stats carry the counts the checks read.
    recorded = {p.id: p for p in build_snapshot(demo).proxies}

    def clusters(proxy: Any) -> dict[str, Any]:
        return {c.name: replace(c, hosts=()) for c in proxy.clusters}

    for p in snap.proxies:
        assert (clusters(p), p.routes, p.xds, p.listeners) == (
            clusters(recorded[p.id]), recorded[p.id].routes, recorded[p.id].xds, recorded[p.id].listeners)


def test_a_failed_forward_costs_that_proxy_only_and_says_why(tmp_path: Path, demo: Bundle) -> None:
    refused, unreachable = "cart-v1-djkrm79fzr-gtfb6", "product-v2-nfntxbz5tg-qb8xr"
    with FakePortForward(token=TOKEN) as api:
        pods = _stage(api, demo, {refused: "refuse", unreachable: "error"})
        snap = _collect(api, tmp_path, demo)
    failed = {pod: _status(snap, ns, pod) for ns, pod in pods if pod in (refused, unreachable)}
    assert {s.state for s in failed.values()} == {SourceState.ERROR}
    assert refused in failed[refused].message and "403" in failed[refused].message
    assert "pods/portforward" in failed[refused].message  # the permission to grant
    assert unreachable in failed[unreachable].message and "connection refused" in failed[unreachable].message
    assert [s.state for ns, pod in pods if pod not in failed
            for s in [_status(snap, ns, pod)]] == [SourceState.OK] * 8
    assert len([p for p in snap.proxies if p.clusters]) == 8
    # The error arrived on the error channel after the upgrade; nothing more was asked.
    assert len(api.forwards_to("shop", unreachable)) == 1


def test_concurrency_bounds_the_open_forwards(tmp_path: Path, demo: Bundle) -> None:
    with FakePortForward(token=TOKEN, delay_s=0.05) as api:
        pods = _stage(api, demo)
        snap = _collect(api, tmp_path, demo, concurrency=2)
    assert all(_status(snap, ns, pod).state is SourceState.OK for ns, pod in pods)
    assert api.max_active == 2


def test_an_api_server_that_never_upgrades_costs_one_timeout(tmp_path: Path, demo: Bundle) -> None:
    hung = "database-v1-hl2md9mxs4-2cz2k"
    before = websocket.getdefaulttimeout()
    with FakePortForward(token=TOKEN) as api:
        pods = _stage(api, demo, {hung: "hang"})
        start = time.monotonic()
        # 2 s: with 1 s, ten forwards opening at once on a loaded machine sometimes ran out.
        snap = _collect(api, tmp_path, demo, timeout="2s")
        elapsed = time.monotonic() - start
    # The abandoned open ends once the fake hangs up (no thread outlives the test: a later test
    # of this worker would find it alive, and meshobs does not fork beside such a thread).
    for thread in threading.enumerate():
        if thread.name.startswith("portforward "):
            thread.join(10)
            assert not thread.is_alive(), thread.name
    status = _status(snap, "shop", hung)
    assert status.state is SourceState.ERROR and hung in status.message and "timed out" in status.message
    assert sum(_status(snap, ns, pod).state is SourceState.OK for ns, pod in pods) == 9
    assert elapsed < 8  # one 2 s timeout, not a hang (the fake holds the upgrade for 30 s)
    assert websocket.getdefaulttimeout() == before  # no process-wide setting changed


def test_a_rejected_token_is_a_401_for_that_proxy(tmp_path: Path, demo: Bundle) -> None:
    with FakePortForward(token=TOKEN) as api:
        _stage(api, demo)
        path = api.write_kubeconfig(tmp_path, token="stale-token")
        target = Target(namespace=FRONTEND[0], pod=FRONTEND[1], port=15000,
                        url=f"portforward://{FRONTEND[0]}/{FRONTEND[1]}:15000")
        transport = PortForwardTransport(target, load_client_configuration(str(path), "fake"))
        try:
            payload = transport.get("/ready", "ready", {}, 3.0)
        finally:
            transport.close()
    assert payload.error and "401" in payload.error and FRONTEND[1] in payload.error
    assert api.forwards_to(*FRONTEND)[0].authorization == "Bearer stale-token"


def test_both_loaders_pick_the_same_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakePortForward(token=TOKEN) as api:
        path = api.write_kubeconfig(tmp_path, context="decoy-free")
    # $KUBECONFIG, no explicit path, the file's current-context (the decoy) - for both.
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")  # a file wins over in-cluster
    _, context, server = KubernetesCollector().load()
    assert (context, server) == ("decoy", "http://127.0.0.1:1")
    assert load_client_configuration(None, None).host == server
    assert load_client_configuration(None, "decoy-free").host == api.url
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(KubeConfigError):
        load_configuration(None, None)
    with pytest.raises(KubeConfigError):
        load_client_configuration(None, None)
