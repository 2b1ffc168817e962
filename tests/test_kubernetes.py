"""Kubernetes collector: real ``kubernetes`` client against a fake API server on loopback."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from meshobs.bundle import Bundle, write_bundle
from meshobs.collectors import kubernetes as kube
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.config import validate
from meshobs.model import Layer, Mesh, ServiceRef, SourceState, WorkloadRef
from meshobs.raw import RawSource
from tests.support.fake_kube import FakeKube, custom_list, k8s_list, pod, service
from tests.support.loopback import unused_port

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TOKEN = "tok-9f8e7d6c5b4a"
NS = "bookinfo"


def _ctx() -> FetchContext:
    return FetchContext(time=T, window_s=300, config=validate({}))


def _pods() -> list[dict[str, Any]]:
    return [
        pod(NS, "reviews-v1-7bbd79f8fd-k6j79", owner=("ReplicaSet", "reviews-v1-7bbd79f8fd"),
            labels={"app": "reviews", "version": "v1", "pod-template-hash": "7bbd79f8fd"}, sa="bookinfo-reviews"),
        pod(NS, "reviews-v2-5c6d7e8f9a-x2x2x", owner=("ReplicaSet", "reviews-v2-5c6d7e8f9a"),
            labels={"app": "reviews", "version": "v2", "pod-template-hash": "5c6d7e8f9a"},
            sidecar_ready=False, sidecar_restarts=4, restarts=1, ip="10.244.0.11"),
        pod(NS, "ratings-v1-6d8f9c7b5d-aaaaa", owner=("ReplicaSet", "ratings-v1-6d8f9c7b5d"),
            labels={"app": "ratings", "version": "v1", "pod-template-hash": "6d8f9c7b5d",
                    "sidecar.istio.io/inject": "false"}, sidecar=None, annotations={}),
        pod(NS, "details-0", owner=("StatefulSet", "details"),
            labels={"service.istio.io/canonical-name": "details",
                    "service.istio.io/canonical-revision": "v9", "controller-revision-hash": "details-abc"},
            native=True),
        pod("colors", "blue-7f9d8c6b5a-zzzzz", owner=("ReplicaSet", "blue-7f9d8c6b5a"),
            labels={"app": "color", "version": "blue", "pod-template-hash": "7f9d8c6b5a"}, sidecar="envoy",
            annotations={"appmesh.k8s.aws/mesh": "colors", "appmesh.k8s.aws/virtualNode": "blue_colors"}),
    ]


def _services() -> list[dict[str, Any]]:
    return [service(NS, "reviews", {"app": "reviews"}, [9080]), service(NS, "ratings", {"app": "ratings"}, [9080]),
            service(NS, "details", {"service.istio.io/canonical-name": "details"}, [9080, 9443]),
            service("colors", "color", {"app": "color"}, [8080])]


def _corpus_docs(corpus: Path, rel: str, kind: str) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((corpus / rel).read_text())
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == kind]


@pytest.fixture
def cluster(corpus: Path, tmp_path: Path) -> Any:
    with FakeKube(token=TOKEN) as fk:
        fk.serve("/api/v1/pods", k8s_list("PodList", _pods()))
        fk.serve("/api/v1/services", k8s_list("ServiceList", _services()))
        fk.serve("/api/v1/namespaces", k8s_list("NamespaceList", [
            {"metadata": {"name": NS, "labels": {"istio-injection": "enabled"}}}]))
        vs = _corpus_docs(corpus, "istio-config/kiali/subset-presence-no-matching-subsets-1.yaml", "VirtualService")
        dr = _corpus_docs(corpus, "istio-config/istio/destination-rule-all-mtls.yaml", "DestinationRule")
        # Only v1beta1 of PeerAuthentication is served: the collector must fall back.
        pa = _corpus_docs(corpus, "istio-config/kiali/peer-auth-drs.yaml", "PeerAuthentication")
        fk.serve("/apis/networking.istio.io/v1/virtualservices",
                 custom_list(vs, "VirtualService", "networking.istio.io/v1"))
        fk.serve("/apis/networking.istio.io/v1/destinationrules",
                 custom_list(dr, "DestinationRule", "networking.istio.io/v1"))
        fk.serve("/apis/security.istio.io/v1beta1/peerauthentications",
                 custom_list(pa, "PeerAuthentication", "security.istio.io/v1beta1"))
        yield fk, fk.write_kubeconfig(tmp_path)


def _collector(kubeconfig: Path, **kw: Any) -> kube.KubernetesCollector:
    return kube.KubernetesCollector(kubeconfig=str(kubeconfig), context="fake", timeout_s=3, **kw)


def test_fetch_and_normalize_through_real_client(cluster: Any) -> None:
    _, kubeconfig = cluster
    [raw] = _collector(kubeconfig).fetch(_ctx())
    assert raw.name == raw.kind == "kubernetes" and raw.error is None
    assert raw.meta == {"context": "fake", "namespaces": []}
    assert raw.get("pods").status == 200 and raw.get("pods").json()["kind"] == "PodList"
    assert raw.get("crd/networking.istio.io/v1/gateways").status == 404  # not installed
    assert raw.get("crd/security.istio.io/v1/peerauthentications").status == 404
    assert raw.get("crd/security.istio.io/v1beta1/peerauthentications").status == 200
    assert raw.get("crd/appmesh.k8s.aws/v1beta2/virtualnodes").status == 404
    assert raw.get("crd/networking.istio.io/v1beta1/virtualservices") is None  # v1 answered

    part = kube.normalize(raw, NormalizeContext(T, 300))
    [st] = part.sources
    assert st.state is SourceState.OK and st.kind == "kubernetes", st.message
    pods = {p.name: p for p in part.pods}
    r1, r2 = pods["reviews-v1-7bbd79f8fd-k6j79"], pods["reviews-v2-5c6d7e8f9a-x2x2x"]
    assert r1.workload == WorkloadRef(NS, "reviews-v1") and r1.has_sidecar and r1.ready and r1.sidecar_ready
    assert r1.service_account == "bookinfo-reviews" and r1.ip == "10.244.0.10" and r1.phase == "Running"
    assert r1.sidecar_injection_expected is True  # from the namespace label
    assert not r2.ready and r2.sidecar_ready is False and r2.sidecar_restarts == 4 and r2.restarts == 5
    assert not pods["ratings-v1-6d8f9c7b5d-aaaaa"].has_sidecar
    assert pods["ratings-v1-6d8f9c7b5d-aaaaa"].sidecar_injection_expected is False
    assert pods["details-0"].has_sidecar and pods["details-0"].workload == WorkloadRef(NS, "details")
    assert pods["blue-7f9d8c6b5a-zzzzz"].has_sidecar
    assert r1.proxy_image == "docker.io/istio/proxyv2:1.24.0"  # the sidecar's image, not the app's
    assert pods["details-0"].proxy_image == "docker.io/istio/proxyv2:1.24.0"  # a native sidecar (init container)
    assert pods["ratings-v1-6d8f9c7b5d-aaaaa"].proxy_image is None

    wl = {str(w.ref): w for w in part.workloads}
    assert wl["bookinfo/reviews-v2"].version == "v2" and wl["bookinfo/reviews-v2"].app == "reviews"
    assert wl["bookinfo/reviews-v2"].mesh is Mesh.ISTIO and wl["bookinfo/reviews-v2"].meshed is True
    assert "pod-template-hash" not in wl["bookinfo/reviews-v2"].labels
    assert wl["bookinfo/ratings-v1"].meshed is False
    assert wl["bookinfo/details"].app == "details" and wl["bookinfo/details"].version == "v9"
    assert wl["colors/blue"].mesh is Mesh.APPMESH
    assert wl["bookinfo/reviews-v1"].services == (ServiceRef(NS, "reviews"),)
    assert wl["bookinfo/reviews-v1"].proxy_image == "docker.io/istio/proxyv2:1.24.0"

    svc = {str(s.ref): s for s in part.services}
    assert svc["bookinfo/reviews"].workloads == (WorkloadRef(NS, "reviews-v1"), WorkloadRef(NS, "reviews-v2"))
    assert svc["bookinfo/details"].ports == (9080, 9443)
    assert svc["bookinfo/reviews"].mesh is Mesh.ISTIO

    cfg = {(c.kind, c.name): c for c in part.config}
    vs = cfg[("VirtualService", "reviews-vs")]
    assert vs.layer is Layer.LIVE and vs.mesh is Mesh.ISTIO and vs.namespace == NS and vs.origin == "kubernetes"
    assert [r["route"][0]["destination"]["subset"] for r in vs.spec["http"]] == ["not-v1", "not-v2"]
    assert cfg[("DestinationRule", "reviews")].spec["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    pa = cfg[("PeerAuthentication", "strict-namespace-mtls")]
    assert pa.api_version == "security.istio.io/v1beta1" and pa.spec["mtls"]["mode"] == "STRICT"
    assert "status" not in vs.spec and "managedFields" not in vs.annotations
    # The cluster-wide Namespace list: its labels, and the mark that it lists every namespace.
    ns = cfg[("Namespace", NS)]
    assert (ns.namespace, ns.labels["istio-injection"], ns.origin) == ("", "enabled", kube.ALL_NAMESPACES)


def test_istios_mesh_config_is_read_and_its_absence_is_the_default(cluster: Any) -> None:
    fk, kubeconfig = cluster
    [raw] = _collector(kubeconfig).fetch(_ctx())
    assert raw.get("configmap/istio-system/istio").status == 404  # not there: Istio's defaults
    part = kube.normalize(raw, NormalizeContext(T, 300))
    assert part.sources[0].state is SourceState.OK and all(c.kind != "MeshConfig" for c in part.config)
    fk.serve("/api/v1/namespaces/istio-system/configmaps/istio", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
        "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"
                         "defaultConfig:\n  holdApplicationUntilProxyStarts: true\n"}})
    [raw] = _collector(kubeconfig).fetch(_ctx())
    part = kube.normalize(raw, NormalizeContext(T, 300))
    [mesh] = [c for c in part.config if c.kind == "MeshConfig"]
    assert (mesh.namespace, mesh.name, dict(mesh.spec)) == (
        "istio-system", "istio", {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})


def test_bundle_holds_no_token(cluster: Any, tmp_path: Path) -> None:
    fk, kubeconfig = cluster
    raws = _collector(kubeconfig).fetch(_ctx())
    sent = [{k.lower(): v for k, v in h.items()}.get("authorization") for _, h in fk.requests]
    assert len(sent) > 10 and set(sent) == {f"Bearer {TOKEN}"}  # the token was used ...
    out = write_bundle(Bundle(time=T, window_s=300, sources=raws,
                              config={"sources": {"kubernetes": {"kubeconfig": str(kubeconfig)}}}),
                       tmp_path / "bundle")
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    for f in files:
        assert TOKEN not in f.read_text(), f


def test_namespace_filter_sends_per_namespace_requests(cluster: Any) -> None:
    fk, kubeconfig = cluster
    fk.serve(f"/api/v1/namespaces/{NS}/pods", k8s_list("PodList", _pods()[:2]))
    fk.serve(f"/api/v1/namespaces/{NS}/services", k8s_list("ServiceList", _services()[:1]))
    fk.serve(f"/api/v1/namespaces/{NS}", {"kind": "Namespace", "apiVersion": "v1",
                                          "metadata": {"name": NS, "labels": {"istio-injection": "enabled"}}})
    [raw] = _collector(kubeconfig, namespaces=[NS, "other"]).fetch(_ctx())
    paths = fk.paths_requested()
    assert "/api/v1/pods" not in paths and "/api/v1/services" not in paths
    assert f"/api/v1/namespaces/{NS}/pods" in paths and "/api/v1/namespaces/other/pods" in paths
    assert f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices" in paths
    assert paths.count("/apis/appmesh.k8s.aws/v1beta2/meshes") == 1  # cluster-scoped: once
    assert raw.get(f"pods@{NS}").status == 200 and raw.get("pods@other").status == 404
    assert raw.meta["namespaces"] == [NS, "other"]
    part = kube.normalize(raw, NormalizeContext(T, 300))
    assert {p.name for p in part.pods} == {"reviews-v1-7bbd79f8fd-k6j79", "reviews-v2-5c6d7e8f9a-x2x2x"}
    assert part.sources[0].state is SourceState.ERROR  # pods@other answered 404
    # One namespace read by name vouches for itself, not for the namespaces it did not list.
    assert [(c.name, c.origin) for c in part.config if c.kind == "Namespace"] == [(NS, "kubernetes")]


def test_unreachable_api_is_a_status_not_an_exception(tmp_path: Path) -> None:
    fk = FakeKube(token=TOKEN)  # never started: only used to write the kubeconfig
    kubeconfig = fk.write_kubeconfig(tmp_path, server=f"http://127.0.0.1:{unused_port()}")
    [raw] = _collector(kubeconfig).fetch(_ctx())
    assert len(raw.payloads) == 1 and raw.payloads[0].error
    assert "connection refused" in raw.payloads[0].error
    [st] = kube.normalize(raw, NormalizeContext(T, 300)).sources
    assert st.state is SourceState.ERROR and "127.0.0.1" in st.message
    fk._server.stop()  # releases the socket of the never-started server


def test_forbidden_and_unauthorized(cluster: Any, tmp_path: Path) -> None:
    fk, kubeconfig = cluster
    fk.forbid("/api/v1/pods")
    [raw] = _collector(kubeconfig).fetch(_ctx())
    assert raw.get("pods").status == 403
    [st] = kube.normalize(raw, NormalizeContext(T, 300)).sources
    assert st.state is SourceState.ERROR and st.message.startswith("forbidden") and "pods" in st.message

    bad = tmp_path / "bad"
    bad.mkdir()
    [raw] = _collector(fk.write_kubeconfig(bad, token="wrong")).fetch(_ctx())
    assert [p.status for p in raw.payloads] == [401]  # stops after the probe
    assert kube.normalize(raw, NormalizeContext(T, 300)).sources[0].state is SourceState.ERROR


def test_kubeconfig_lookup(monkeypatch: pytest.MonkeyPatch, cluster: Any, tmp_path: Path) -> None:
    _, kubeconfig = cluster
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    c = kube.from_config(validate({"sources": {"kubernetes": {"context": "fake"}}}), [])
    assert c is not None
    [raw] = c.fetch(_ctx())
    assert raw.get("pods").status == 200 and raw.meta["context"] == "fake"
    # Without a context the kubeconfig's current-context (the decoy, unreachable) is used.
    [raw] = kube.from_config(validate({"sources": {"kubernetes": {}}}), []).fetch(_ctx())  # type: ignore[union-attr]
    assert raw.meta["context"] == "decoy" and raw.payloads[0].error
    # A missing kubeconfig is a clear source error.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    [raw] = kube.from_config(validate({"sources": {"kubernetes": {}}}), []).fetch(_ctx())  # type: ignore[union-attr]
    assert raw.error and str(tmp_path / "nope") in raw.error


def test_from_config_none_when_absent_or_manifests_only() -> None:
    assert kube.from_config(validate({"sources": {"prometheus": {"url": "http://x"}}}), []) is None
    assert kube.from_config(validate({"sources": {"kubernetes": {"manifests": ["a"]}}}), []) is None
    c = kube.from_config(validate({"sources": {"kubernetes": {"namespaces": ["a"], "timeout": "2s"}}}), [])
    assert c is not None and c.namespaces == ["a"] and c.timeout_s == 2


def test_malformed_list_body_is_value_error() -> None:
    from meshobs.raw import Payload

    raw = RawSource("kubernetes", "kubernetes", payloads=[Payload("pods", body="{trunc", status=200)])
    with pytest.raises(ValueError, match="pods"):
        kube.normalize(raw, NormalizeContext(T, 300))


@pytest.mark.parametrize("mesh, istio, appmesh", [("istio", True, False), ("appmesh", False, True),
                                                  ("auto", True, True)])
def test_mesh_setting_picks_whose_crds_are_listed(cluster: Any, mesh: str, istio: bool, appmesh: bool) -> None:
    """`mesh: istio` never asks for App Mesh CRDs (and vice versa); `auto` asks for both."""
    fk, kubeconfig = cluster
    [raw] = _collector(kubeconfig, mesh=mesh).fetch(_ctx())
    paths = fk.paths_requested()
    assert any("/apis/networking.istio.io/" in p for p in paths) is istio
    assert any("/apis/appmesh.k8s.aws/" in p for p in paths) is appmesh
    assert raw.get("pods").status == 200


def test_big_lists_are_paged_and_joined(tmp_path: Path) -> None:
    """A list is read page by page (limit/continue, as kubectl does) and the pages make one list:
    1,234 pods come in three pages, every one of them in the model, each page asked with the
    token the previous one gave."""
    pods = [pod(NS, f"worker-{i:04d}-abc", owner=("ReplicaSet", "worker-7f9d8c6b5a"),
                labels={"app": "worker", "version": "v1"}) for i in range(1234)]
    with FakeKube(token=TOKEN) as fk:
        fk.serve("/api/v1/pods", k8s_list("PodList", pods))
        [raw] = _collector(fk.write_kubeconfig(tmp_path)).fetch(_ctx())
        asked = [p for p, _ in fk.requests if p.split("?", 1)[0] == "/api/v1/pods"]
    assert len(asked) == 3 and all(f"limit={kube.PAGE_SIZE}" in p for p in asked)
    assert "continue" not in asked[0] and "continue=" in asked[1] and "continue=" in asked[2]
    tokens = [parse_qs(urlsplit(p).query)["continue"][0] for p in asked[1:]]
    assert len(set(tokens)) == 2  # each page asked with the token the page before gave
    body = raw.get("pods").json()
    assert body["kind"] == "PodList" and "continue" not in body["metadata"] and len(body["items"]) == 1234
    part = kube.normalize(raw, NormalizeContext(T, 300))
    assert sorted(p.name for p in part.pods) == sorted(p["metadata"]["name"] for p in pods)


@pytest.mark.parametrize("phase, digest, handed", [("graph", False, True), ("all", True, True), ("all", False, False)])
def test_a_paged_list_is_handed_to_the_normaliser_decoded_only_when_it_is_normalised_soon(
        tmp_path: Path, phase: str, digest: bool, handed: bool) -> None:
    """The merged pages' objects go to the normaliser as decoded (not decoded again from the
    body) when the run normalises them soon (a question's graph phase; a run recording no
    bundle), equal to what the body parses to; a run that only records a bundle (snapshot) does
    not hold them beside the body. The model is the same either way."""
    from meshobs.shape import loads

    services = [service(NS, f"svc-{i:04d}", {"app": f"svc-{i:04d}"}, [8080]) for i in range(1234)]
    with FakeKube(token=TOKEN) as fk:
        fk.serve("/api/v1/services", k8s_list("ServiceList", services))
        fk.serve("/api/v1/namespaces", k8s_list("NamespaceList", [{"metadata": {"name": NS}}]))
        ctx = FetchContext(time=T, window_s=300, config=validate({}), phase=phase,
                           digest=(lambda r: r) if digest else None)
        [raw] = _collector(fk.write_kubeconfig(tmp_path)).fetch(ctx)
    listed = raw.get("services")
    assert listed.body is not None and (listed.decoded is not None) is handed
    if handed:
        assert listed.decoded == loads(listed.body)
    again = RawSource(raw.name, raw.kind, [replace(p, decoded=None) for p in raw.payloads])
    ctx_n = NormalizeContext(T, 300)
    assert kube.normalize(raw, ctx_n).services == kube.normalize(again, ctx_n).services
    assert len(kube.normalize(again, ctx_n).services) == 1234


def test_the_size_cap_counts_every_page(tmp_path: Path) -> None:
    """The response cap bounds the whole list, not each page: pages that fit one by one but not
    together are refused with the configured cap in the message."""
    from meshobs.collectors.netbound import RunLimits, run_limits

    pods = [pod(NS, f"worker-{i:04d}-abc", owner=("ReplicaSet", "worker-7f9d8c6b5a"),
                labels={"app": "worker", "version": "v1"}) for i in range(1500)]
    with FakeKube(token=TOKEN) as fk:
        fk.serve("/api/v1/pods", k8s_list("PodList", pods))
        page_bytes = len(json.dumps(k8s_list("PodList", pods[:500])))
        with run_limits(RunLimits(max_bytes=int(page_bytes * 1.5))):
            [raw] = _collector(fk.write_kubeconfig(tmp_path)).fetch(_ctx())
    got = raw.get("pods")
    assert got.body is None and got.error and "larger than" in got.error


@pytest.mark.parametrize("demo", ["ecommerce", "generated-100"])
def test_added_mesh_configuration_is_read_alone_with_the_same_result(demo: str) -> None:
    """A scoped question's second phase appends the mesh configuration to the topology lists:
    normalize_added reads only those and gives exactly what normalising everything gives."""
    from meshobs.demo.catalog import scenario_for
    from meshobs.demo.render_kubernetes import kubernetes_source

    whole = kubernetes_source(scenario_for(demo))
    topology = [p for p in whole.payloads if kube._base(p.key) in kube.TOPOLOGY - {"pods"}]
    pods = [p for p in whole.payloads if kube._base(p.key) == "pods"]
    config = [p for p in whole.payloads if kube._base(p.key) not in kube.TOPOLOGY]
    assert topology and config and pods
    ctx = NormalizeContext(time=T, window_s=300)
    graph = RawSource("kubernetes", "kubernetes", list(topology))
    earlier = kube.normalize(graph, ctx)
    # The scoped phase adds the pods and the configuration: the pods' workloads replace the
    # Deployments', exactly as one normalisation of everything makes them.
    for added in (config, pods + config, config + pods):
        merged = RawSource("kubernetes", "kubernetes", topology + added)
        assert kube.normalize_added(merged, earlier, len(topology), ctx) == kube.normalize(merged, ctx)
    merged = RawSource("kubernetes", "kubernetes", topology + pods + config)
    assert kube.normalize(merged, ctx).config and kube.normalize(merged, ctx).pods  # really there
    # A pod of a workload the graph phase did not see (a Service may select it): read everything.
    stray = RawSource("kubernetes", "kubernetes", [p for p in topology if kube._base(p.key) != "deployments"] + pods)
    assert kube.normalize_added(stray, kube.normalize(RawSource("kubernetes", "kubernetes", stray.payloads[:-1]), ctx),
                                len(stray.payloads) - 1, ctx) is None
    # Pods already in the earlier part (a mesh-wide graph phase): read everything.
    assert kube.normalize_added(RawSource("kubernetes", "kubernetes", topology + pods + config),
                                kube.normalize(RawSource("kubernetes", "kubernetes", topology + pods), ctx),
                                len(topology) + 1, ctx) is None
    # The topology among the added payloads: read everything again.
    late = RawSource("kubernetes", "kubernetes", config + topology)
    assert kube.normalize_added(late, kube.normalize(RawSource("kubernetes", "kubernetes", config), ctx),
                                len(config), ctx) is None


@pytest.mark.parametrize("root", [None, "mesh-root"])
def test_a_scoped_question_lists_the_mesh_configs_root_namespace(cluster: Any, root: str | None) -> None:
    """Mesh-wide policies live in meshConfig.rootNamespace: a scoped question lists mesh
    configuration there beside its own namespaces, Istio's default when the mesh config does
    not say (or is absent)."""
    fk, kubeconfig = cluster
    if root:
        fk.serve("/api/v1/namespaces/istio-system/configmaps/istio", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": f"rootNamespace: {root}\ndefaultConfig:\n  concurrency: 2\n"}})
    scope = Scope(target=ServiceRef(NS, "reviews"), services=frozenset({ServiceRef(NS, "reviews")}))
    ctx = FetchContext(time=T, window_s=300, config=validate({}), scope=scope, phase="scoped")
    [raw] = _collector(kubeconfig).fetch(ctx)
    listed = kube.listed_config_namespaces(raw.payloads)
    assert listed == tuple(sorted({NS, root or "istio-system"}))
    paths = fk.paths_requested()
    assert f"/apis/security.istio.io/v1/namespaces/{root or 'istio-system'}/peerauthentications" in paths
    if root:
        # istio-system's pods are listed (istiod's), its mesh configuration is not.
        assert not [p for p in paths if "/namespaces/istio-system/" in p
                    and not p.endswith(("/configmaps/istio", "/pods"))]
        assert f"/api/v1/namespaces/{root}/pods" in paths
    # The scoped phase lists the pods of its namespaces, never the mesh's.
    assert "/api/v1/pods" not in paths and f"/api/v1/namespaces/{NS}/pods" in paths


@pytest.mark.parametrize("phase", ["all", "graph", "scoped", "scoped-wide", "scoped-unnarrowed"])
def test_pods_are_listed_in_the_scoped_phase_for_its_namespaces_only(cluster: Any, phase: str) -> None:
    """The graph phase lists no pods (the neighbourhood comes from Services, Deployments and
    edges); the scoped phase lists the whole pod list of each namespace involved plus the root
    namespace, cluster-wide when they are many or nothing narrowed the question; "all" lists
    every pod, once."""
    fk, kubeconfig = cluster
    fk.serve(f"/api/v1/namespaces/{NS}/pods", k8s_list("PodList", _pods()[:2]))
    many = {ServiceRef(f"ns-{i}", "svc") for i in range(kube.SCOPED_POD_NAMESPACES_MAX)}
    scopes = {"scoped": Scope(target=ServiceRef(NS, "reviews"), services=frozenset({ServiceRef(NS, "reviews")}),
                              workloads=frozenset({WorkloadRef("shop", "web")})),
              "scoped-wide": Scope(target=ServiceRef(NS, "reviews"), services=frozenset(many))}
    ctx = FetchContext(time=T, window_s=300, config=validate({}), scope=scopes.get(phase),
                       phase=phase.split("-")[0])
    [raw] = _collector(kubeconfig).fetch(ctx)
    pods = [p.split("?", 1)[0] for p, _ in fk.requests if p.split("?", 1)[0].endswith("/pods")]
    if phase == "graph":
        assert pods == [] and raw.get("services").status == 200 and raw.get("deployments") is not None
        part = kube.normalize(raw, NormalizeContext(time=T, window_s=300))
        assert part.services and not part.pods and part.sources[0].state is SourceState.OK
    elif phase == "scoped":
        assert sorted(pods) == [f"/api/v1/namespaces/{n}/pods" for n in sorted({NS, "shop", "istio-system"})]
        assert raw.get(f"pods@{NS}").status == 200 and raw.get("services") is None
        part = kube.normalize(raw, NormalizeContext(time=T, window_s=300))
        assert {p.name for p in part.pods} == {p["metadata"]["name"] for p in _pods()[:2]}
    else:  # everything: "all", a scope of more namespaces than the bound, or no scope at all
        assert pods == ["/api/v1/pods"] and raw.get("pods").status == 200
