"""The istiod collector against loopback servers serving the payloads a real istiod serves: each
replica's /ready and /debug/syncz, through the configured targets or found in Kubernetes; a
failing, refusing or hung istiod is "could not check" within its timeout, never healthy."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from meshobs.collect import build_snapshot
from meshobs.collectors import istiod
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.collectors.envoy.discovery import Target
from meshobs.collectors.envoy.fetch import HttpTransport
from meshobs.collectors.istiod.discovery import KubernetesDiscovery
from meshobs.config import validate
from meshobs.engine import diagnose
from meshobs.model import ServiceRef, SourceState, WorkloadRef
from meshobs.raw import RawSource
from tests.support.loopback import LoopbackServer, unused_port
from tests.support.scenarios import bundle

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CTX = NormalizeContext(time=T, window_s=300.0)


def recorded(name: str) -> RawSource:
    """The istiod payloads the scenario renders (what a real istiod serves)."""
    return next(s for s in bundle(name).sources if s.kind == "istiod")


def serve(srv: LoopbackServer, raw: RawSource, *, syncz_status: int = 200, delay_s: float = 0.0) -> list[str]:
    """Route each replica's endpoints under /<pod>/ as a port-forward reaches it; the pods."""
    pods = [p.key.split("/")[0] for p in raw.payloads if p.key.endswith("/ready")]
    for pod in pods:
        ready = raw.get(f"{pod}/ready")
        syncz = raw.get(f"{pod}/syncz")
        assert ready is not None and syncz is not None
        srv.route(f"/{pod}/ready", status=ready.status or 200, body="", content_type="text/plain", delay_s=delay_s)
        srv.route(f"/{pod}/debug/syncz", status=syncz_status, body=syncz.body or "", delay_s=delay_s)
    return pods


def fetch(url: str, pods: list[str], *, timeout: str = "2s", **ctx: object) -> RawSource:
    config = validate({"sources": {"istiod": {"timeout": timeout, "targets": [
        {"pod": p, "url": f"{url}/{p}"} for p in pods]}}})
    collector = istiod.from_config(config, [])
    assert collector is not None
    (raw,) = collector.fetch(FetchContext(time=T, window_s=300.0, config=config, **ctx))  # type: ignore[arg-type]
    return raw


def test_replicas_and_their_syncz_as_served() -> None:
    served = recorded("scoped-push-replicas")
    with LoopbackServer() as srv:
        pods = serve(srv, served)
        raw = fetch(srv.url, pods)
    assert len(pods) == 3
    assert sorted(p.key for p in raw.payloads) == sorted(p.key for p in served.payloads)
    part = istiod.normalize(raw, CTX)
    assert part.sources[0].state is SourceState.OK
    assert {r.pod for r in part.istiod} == set(pods) and all(r.ready and r.syncz for r in part.istiod)
    # Every proxy of the mesh, each listed by the replica it is connected to.
    assert len(part.xds_sync) == 8 and {s.istiod for s in part.xds_sync} == set(pods)
    assert all(s.status(x) == "SYNCED" for s in part.xds_sync for x in ("cds", "lds", "eds", "rds"))


def test_not_ready_and_a_failing_syncz_are_reported_as_istiod_said() -> None:
    served = recorded("istiod-not-ready")
    with LoopbackServer() as srv:
        pods = serve(srv, served, syncz_status=500)
        raw = fetch(srv.url, pods)
    part = istiod.normalize(raw, CTX)
    (replica,) = part.istiod
    assert replica.ready is False and "503" in replica.ready_detail
    assert replica.syncz is False and part.xds_sync == []
    assert "HTTP 500" in part.sources[0].message


def test_a_hung_istiod_costs_one_timeout_and_is_could_not_check() -> None:
    served = recorded("istiod-not-ready")
    with LoopbackServer() as srv:
        pods = serve(srv, served, delay_s=3.0)
        start = time.monotonic()
        raw = fetch(srv.url, pods, timeout="500ms")
        took = time.monotonic() - start
        asked = len(srv.requests)
    assert took < 2.0 and asked == 1  # /ready timed out; syncz was not asked to repeat the wait
    part = istiod.normalize(raw, CTX)
    (status,) = part.sources
    assert status.state is SourceState.ERROR and "did not answer within 0.5 s" in status.message
    (replica,) = part.istiod
    assert replica.ready is None and replica.unreachable


def test_a_refused_istiod_is_never_healthy_in_a_diagnosis() -> None:
    """The scenario's sources without Prometheus, and istiod's endpoints refusing: its pushes are
    "could not check"; its readiness is judged from the only signal left, its pods' Ready
    condition in Kubernetes, and the failed source is a finding of its own."""
    live = bundle("scoped-push-replicas")
    raw = fetch(f"http://127.0.0.1:{unused_port()}", ["istiod-x"])
    assert all(p.error and "refused" in p.error for p in raw.payloads)
    sources = [s for s in live.sources if s.kind not in ("istiod", "prometheus")] + [raw]
    from dataclasses import replace

    snapshot = build_snapshot(replace(live, sources=sources))
    report = diagnose(snapshot, ServiceRef("sales", "crm-api"))
    checks = {c.id: c for c in report.checks}
    assert checks["proxy.istiod_pushes"].status == "skipped"
    assert "no istiod metrics" in checks["proxy.istiod_pushes"].reason
    assert checks["proxy.istiod_ready"].status == "pass"  # three Ready pods in Kubernetes
    assert ("MSH0002", "Source istiod") in {(f.code, f.subject) for f in report.findings}
    assert report.status != "healthy"
    # Without the pods either, nothing says: could not check, never passed.
    no_pods = replace(live, sources=[s for s in sources if s.kind != "kubernetes"])
    report = diagnose(build_snapshot(no_pods), ServiceRef("sales", "crm-api"))
    checks = {c.id: c for c in report.checks}
    assert checks["proxy.istiod_ready"].status == "skipped" and "refused" in checks["proxy.istiod_ready"].reason


def test_the_graph_phase_asks_nothing_and_a_scoped_run_asks_its_namespaces() -> None:
    served = recorded("scoped-push-replicas")
    scope = Scope(target=ServiceRef("sales", "crm-api"), services=frozenset({ServiceRef("sales", "crm-api")}),
                  workloads=frozenset({WorkloadRef("reporting", "report-builder-v1")}))
    with LoopbackServer() as srv:
        pods = serve(srv, served)
        config = validate({"sources": {"istiod": {"targets": [{"pod": p, "url": f"{srv.url}/{p}"} for p in pods]}}})
        collector = istiod.from_config(config, [])
        assert collector is not None
        assert collector.fetch(FetchContext(time=T, window_s=300.0, config=config, phase="graph")) == []
        assert srv.requests == []
        (raw,) = collector.fetch(FetchContext(time=T, window_s=300.0, config=config, phase="scoped", scope=scope))
        queried = sorted(path for _m, path, _h in srv.requests if "syncz" in path)
    assert queried == sorted(f"/{p}/debug/syncz?namespace={ns}" for p in pods for ns in ("reporting", "sales"))
    part = istiod.normalize(raw, CTX)
    assert {r.syncz_namespaces for r in part.istiod} == {("reporting", "sales")}
    assert {s.namespace for s in part.xds_sync} == {"reporting", "sales"}


def test_pods_found_in_kubernetes_are_asked_and_recorded_minimal() -> None:
    """Kubernetes discovery: one pod list (label selector app=istiod), each running pod asked
    through the transport (a port-forward in a cluster; plain HTTP to the loopback here)."""
    served = recorded("proxy-unacked")
    pods = [p.key.split("/")[0] for p in served.payloads if p.key.endswith("/ready")]
    pod_list = {"kind": "PodList", "apiVersion": "v1", "items": [
        {"metadata": {"name": p, "namespace": "istio-system", "labels": {"app": "istiod", "istio.io/rev": "1-24"}},
         "spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.24.2",
                                  "env": [{"name": "SECRET_TOKEN", "value": "hunter2"}]}]},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}} for p in pods]}
    pod_list["items"].append({"metadata": {"name": "istiod-old", "namespace": "istio-system",
                                           "deletionTimestamp": "2026-11-20T11:59:00Z"},
                              "status": {"phase": "Running"}})
    with LoopbackServer() as srv:
        serve(srv, served)
        srv.route("/api/v1/namespaces/istio-system/pods", body=json.dumps(pod_list))
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = srv.url
        discover = KubernetesDiscovery(configuration, "istio-system", "app=istiod", 8080, 15014)

        def to_loopback(target: Target) -> HttpTransport:
            assert target.url.startswith("portforward://istio-system/") and target.port in (8080, 15014)
            return HttpTransport(f"{srv.url}/{target.pod}")

        collector = istiod.IstiodCollector(transport=to_loopback, discover=discover)
        config = validate({})
        (raw,) = collector.fetch(FetchContext(time=T, window_s=300.0, config=config))
        listed = [path for _m, path, _h in srv.requests if "/api/v1/" in path]
    assert listed == ["/api/v1/namespaces/istio-system/pods?labelSelector=app%3Distiod"]
    kept = raw.get("pods")
    assert kept is not None and "hunter2" not in (kept.body or "") and "istiod-old" not in (kept.body or "")
    part = istiod.normalize(raw, CTX)
    assert sorted(r.pod for r in part.istiod) == sorted(pods)
    assert all(r.revision == "1-24" and r.version == "1.24.2" and r.pod_ready for r in part.istiod)
    assert any(s.status("cds") == "STALE" for s in part.xds_sync)


def test_kubernetes_discovery_that_cannot_list_pods_says_why() -> None:
    with LoopbackServer() as srv:
        srv.route("/api/v1/namespaces/istio-system/pods", status=403, body=json.dumps(
            {"kind": "Status", "message": "pods is forbidden", "code": 403}))
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = srv.url
        collector = istiod.IstiodCollector(discover=KubernetesDiscovery(configuration, "istio-system",
                                                                        "app=istiod", 8080, 15014))
        (raw,) = collector.fetch(FetchContext(time=T, window_s=300.0, config=validate({})))
    (status,) = istiod.normalize(raw, CTX).sources
    assert status.state is SourceState.ERROR and "forbidden" in status.message


@pytest.mark.parametrize(("image", "version"), [
    ("docker.io/istio/pilot:1.24.2", "1.24.2"),
    ("gcr.io/istio-release/pilot:1.24.2-distroless@sha256:" + "cd" * 32, "1.24.2-distroless"),
    ("registry.local:5000/istio/pilot:1.23.0", "1.23.0"),
    ("registry.local:5000/istio/pilot@sha256:" + "ef" * 32, None),  # pinned by digest alone: no version said
])
def test_istiods_version_is_its_images_tag_whatever_the_reference(image: str, version: str | None) -> None:
    from meshobs.collectors.istiod.normalize import _image_tag

    pod = {"spec": {"containers": [{"name": "discovery", "image": image}]}}
    assert _image_tag(pod) == version
