"""Envoy target discovery from Kubernetes PodLists, and the port-forward failure path."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshobs.bundle import Bundle
from meshobs.collect import build_snapshot
from meshobs.collectors.envoy import discover_targets, from_config, pods_from_prior
from meshobs.collectors.envoy.discovery import workload_of_pod
from meshobs.config import validate
from meshobs.model import SourceState
from meshobs.raw import Payload, RawSource
from tests.support.loopback import unused_port


def pod(name: str, ns: str = "default", *, containers: tuple[str, ...] = ("app", "istio-proxy"),
        phase: str = "Running", owner: tuple[str, str] | None = None, labels: dict[str, str] | None = None,
        **extra_md: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}",
                          "labels": labels or {}, **extra_md}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                  "uid": "u", "controller": True, "blockOwnerDeletion": True}]
    return {"metadata": md,
            "spec": {"containers": [{"name": c, "image": f"{c}:1"} for c in containers]},
            "status": {"phase": phase, "podIP": "10.0.0.1"}}


def pod_list(*items: dict[str, Any]) -> str:
    return json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "123"},
                       "items": list(items)})


CART = pod("cart-v1-7bbd79f8fd-k6j79", owner=("ReplicaSet", "cart-v1-7bbd79f8fd"),
           labels={"app": "cart", "version": "v1", "pod-template-hash": "7bbd79f8fd"},
           generateName="cart-v1-7bbd79f8fd-")


def k8s_prior(*bodies: tuple[str, str]) -> list[RawSource]:
    raw = RawSource("kubernetes", "kubernetes")
    for key, body in bodies:
        raw.add(Payload(key, body=body, status=200))
    return [raw]


def test_discovery_picks_running_sidecars_with_workloads() -> None:
    appmesh = pod("colorteller-5f6c7d8b9c-abcde", "mesh", containers=("app", "envoy"),
                  owner=("ReplicaSet", "colorteller-5f6c7d8b9c"), labels={"pod-template-hash": "5f6c7d8b9c"})
    appmesh["spec"]["containers"][1]["env"] = [{"name": "ENVOY_ADMIN_ACCESS_PORT", "value": "9902"}]
    appmesh["spec"]["containers"][1]["image"] = ("840364872350.dkr.ecr.us-west-2.amazonaws.com/"
                                                 "aws-appmesh-envoy:v1.29.6.0-prod")
    # An Envoy that is a workload's own program (Contour's, an edge proxy), not App Mesh's sidecar:
    # the model reads no sidecar there (k8s_objects.sidecar_of), and neither does discovery.
    contour = pod("envoy-x7k2p", "projectcontour", containers=("shutdown-manager", "envoy"),
                  owner=("DaemonSet", "envoy"))
    native = pod("db-0", owner=("StatefulSet", "db"), containers=("app",))
    native["spec"]["initContainers"] = [{"name": "istio-proxy", "restartPolicy": "Always"}]
    prior = k8s_prior(
        ("pods", pod_list(CART, pod("pending-6d9f8c7b6d-aaaaa", phase="Pending"),
                          pod("plain-6d9f8c7b6d-bbbbb", containers=("app",)),
                          pod("leaving-6d9f8c7b6d-ccccc", deletionTimestamp="2024-01-01T00:00:00Z"))),
        ("pods@mesh", pod_list(appmesh)),
        ("pods@projectcontour", pod_list(contour)),
        ("pods@default", pod_list(CART, native)),  # the same pod twice is asked once
    )
    targets = discover_targets(pods_from_prior(prior))
    assert [(t.namespace, t.pod, t.workload, t.port) for t in targets] == [
        ("default", "cart-v1-7bbd79f8fd-k6j79", "cart-v1", 15000),
        ("default", "db-0", "db", 15000),
        ("mesh", "colorteller-5f6c7d8b9c-abcde", "colorteller", 9902),
    ]
    assert targets[0].source_name == "envoy:default/cart-v1-7bbd79f8fd-k6j79"
    assert [t.pod for t in discover_targets(pods_from_prior(prior), namespaces=["mesh"], port=15001)] == [
        "colorteller-5f6c7d8b9c-abcde"]
    assert discover_targets(pods_from_prior(prior), namespaces=["mesh"], port=15001)[0].port == 15001


def test_workload_names_without_owner_labels() -> None:
    assert workload_of_pod(pod("cart-v2-86c9f01fd7-xq2zt", owner=("ReplicaSet", "cart-v2-86c9f01fd7"))) == "cart-v2"
    assert workload_of_pod(pod("agent-x7k2p", owner=("DaemonSet", "agent"))) == "agent"
    assert workload_of_pod(pod("debug")) == "debug"


def test_unusable_prior_payloads_are_skipped() -> None:
    raw = RawSource("kubernetes", "kubernetes")
    raw.add(Payload("pods", body="not json", status=200))
    raw.add(Payload("pods@x", error="forbidden"))
    raw.add(Payload("services", body=pod_list(CART), status=200))
    assert pods_from_prior([raw]) == []


def test_port_forward_failure_is_a_clean_error(tmp_path: Path) -> None:
    port = unused_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "test", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}))
    config = validate({"sources": {"kubernetes": {"kubeconfig": str(kubeconfig)},
                                   "envoy": {"discovery": "kubernetes", "timeout": "2s"}}})
    collector = from_config(config, k8s_prior(("pods", pod_list(CART))))
    assert collector is not None and len(collector.targets) == 1
    start = time.monotonic()
    raws = collector.fetch()
    assert time.monotonic() - start < 30
    assert [r.name for r in raws] == ["envoy:default/cart-v1-7bbd79f8fd-k6j79"]
    ready = raws[0].get("ready")
    assert ready is not None and ready.error is not None
    assert ready.error == "could not port-forward to default/cart-v1-7bbd79f8fd-k6j79:15000: connection refused"
    assert len(raws[0].payloads) == 1  # nothing else is attempted
    snap = build_snapshot(Bundle(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300, sources=raws))
    assert snap.sources[0].state is SourceState.ERROR and not snap.proxies


def test_kubernetes_discovery_without_pods_is_a_source_error() -> None:
    config = validate({"sources": {"envoy": {"discovery": "kubernetes"}}})
    collector = from_config(config, [])
    assert collector is not None
    raws = collector.fetch()
    assert len(raws) == 1 and raws[0].error and "sources.kubernetes" in raws[0].error


def test_no_sidecars_found_is_no_data(tmp_path: Path) -> None:
    config = validate({"sources": {"kubernetes": {"kubeconfig": str(tmp_path / "missing")},
                                   "envoy": {"discovery": "kubernetes"}}})
    collector = from_config(config, k8s_prior(("pods", pod_list(pod("plain-1", containers=("app",))))))
    assert collector is not None
    snap = build_snapshot(Bundle(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300,
                                 sources=collector.fetch()))
    assert [(s.name, s.state) for s in snap.sources] == [("envoy", SourceState.NO_DATA)]


def test_ambients_node_proxy_is_not_an_envoy_target() -> None:
    """ztunnel's container is named istio-proxy like a sidecar's, but it has no Envoy admin API:
    it is told by its image, as the Kubernetes reader tells it (meshobs.images.node_proxy_image)."""
    ztunnel = pod("ztunnel-x7k2p", "istio-system", containers=("istio-proxy",), owner=("DaemonSet", "ztunnel"))
    ztunnel["spec"]["containers"][0]["image"] = \
        "gcr.io/istio-release/ztunnel:1.24.2-distroless@sha256:" + "ab" * 32
    sidecar = pod("ledger-0", "ztunnel-apps", owner=("StatefulSet", "ledger"))
    sidecar["spec"]["containers"][1]["image"] = "registry.example/ztunnel/proxyv2:1.24.2"  # a path, not the name
    assert [t.pod for t in discover_targets([ztunnel, sidecar])] == ["ledger-0"]
