"""Ambient's node proxy (Istio's ztunnel) is told apart from a sidecar where pods are normalised.

ztunnel's DaemonSet names its container ``istio-proxy`` like a sidecar's; only its image says what
it is (repository name ``ztunnel``), whatever the registry, path, tag, digest, namespace or pod
name. The pods here are shaped as the API returns the ones Istio's ztunnel chart makes (1.24).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from meshobs.collectors.k8s_objects import objects_to_part
from meshobs.images import node_proxy_image
from meshobs.model import Layer, Mesh, MeshSnapshot, WorkloadRef
from meshobs.tui.proxy_model import proxy_list_rows
from tests.support.manifests import analyzer_findings, manifests_snapshot, pairs

DIGEST = "sha256:" + "4f1c9a0d2e7b" * 5 + "9c3e"
STARTED = "2026-11-24T08:12:03Z"


@pytest.mark.parametrize(("image", "node_proxy"), [
    ("docker.io/istio/ztunnel:1.24.2", True),
    (f"gcr.io/istio-release/ztunnel:1.24.2-distroless@{DIGEST}", True),
    (f"registry.internal:5000/mirror/istio/ztunnel@{DIGEST}", True),
    ("ztunnel:dev", True),
    # "ztunnel" elsewhere than the repository's own name: a sidecar's image.
    ("docker.io/istio/proxyv2:1.24.2", False),
    ("registry.example:5000/ztunnel/proxyv2:1.24.2", False),
    ("ztunnel.registry.example/istio/proxyv2:1.24.2", False),
    ("docker.io/istio/proxyv2:ztunnel", False),
    (f"docker.io/istio/proxyv2@{DIGEST}", False),
    ("docker.io/acme/ztunnel-exporter:2.0", False),
    ("auto", False),
    (None, False),
])
def test_the_node_proxy_is_told_by_its_repository_name(image: str | None, node_proxy: bool) -> None:
    assert node_proxy_image(image) is node_proxy


def _ztunnel_pod(name: str = "ztunnel-4vx9k", namespace: str = "istio-system",
                 image: str = f"gcr.io/istio-release/ztunnel:1.24.2-distroless@{DIGEST}") -> dict[str, Any]:
    """A ztunnel pod as the API lists it (the chart's labels, annotations, container and probe)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "generateName": "ztunnel-", "namespace": namespace,
            "uid": "6f1d2c3b-8a9e-4c7d-b1a2-0e9f8d7c6b5a", "creationTimestamp": STARTED,
            "labels": {"app": "ztunnel", "app.kubernetes.io/name": "ztunnel", "app.kubernetes.io/part-of": "istio",
                       "controller-revision-hash": "6b8c9d7f5c", "istio.io/dataplane-mode": "none",
                       "pod-template-generation": "1", "sidecar.istio.io/inject": "false"},
            "annotations": {"prometheus.io/port": "15020", "prometheus.io/scrape": "true",
                            "sidecar.istio.io/inject": "false"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ztunnel",
                                 "uid": "0c1b2a39-4d5e-4f60-8a7b-9c8d7e6f5a4b", "controller": True,
                                 "blockOwnerDeletion": True}]},
        "spec": {
            "nodeName": "gke-prod-pool-1-3c9f2d1a-x7q2", "serviceAccountName": "ztunnel",
            "serviceAccount": "ztunnel", "priorityClassName": "system-node-critical",
            "containers": [{"name": "istio-proxy", "image": image, "args": ["proxy", "ztunnel"],
                            "ports": [{"containerPort": 15020, "name": "ztunnel-stats", "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021,
                                                           "scheme": "HTTP"}},
                            "imagePullPolicy": "IfNotPresent"}]},
        "status": {
            "phase": "Running", "podIP": "10.48.2.7", "hostIP": "10.128.0.41", "startTime": STARTED,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": STARTED}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{
                "name": "istio-proxy", "ready": True, "restartCount": 1, "started": True,
                "image": "gcr.io/istio-release/ztunnel:1.24.2-distroless",
                "imageID": f"gcr.io/istio-release/ztunnel@{DIGEST}",
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                             "finishedAt": "2026-11-24T09:40:11Z"}},
                "state": {"running": {"startedAt": "2026-11-24T09:40:12Z"}}}]}}


def _ztunnel_daemonset(pod: dict[str, Any]) -> dict[str, Any]:
    """The DaemonSet whose template made ``pod`` (as Istio's chart writes it, in Git)."""
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "ztunnel", "namespace": "istio-system"},
            "spec": {"selector": {"matchLabels": {"app": "ztunnel"}},
                     "template": {"metadata": {"labels": copy.deepcopy(pod["metadata"]["labels"]),
                                               "annotations": pod["metadata"]["annotations"]},
                                  "spec": copy.deepcopy(pod["spec"])}}}


def _sidecar_pod(image: str) -> dict[str, Any]:
    """An application pod injected with Istio's sidecar of ``image``."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "ledger-7d9c8b6f5d-q2w3e", "namespace": "payments",
                        "labels": {"app": "ledger", "version": "v3", "pod-template-hash": "7d9c8b6f5d"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "ledger-7d9c8b6f5d", "controller": True}]},
           "spec": {"serviceAccountName": "ledger",
                    "containers": [{"name": "ledger", "image": "registry.example/payments/ledger:3.4.1"},
                                   {"name": "istio-proxy", "image": image, "args": ["proxy", "sidecar"]}]},
           "status": {"phase": "Running", "podIP": "10.48.3.9",
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "ledger", "ready": True, "restartCount": 0},
                                            {"name": "istio-proxy", "ready": True, "restartCount": 0}]}}
    return pod


def _namespaces(*names: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels}}
            for n, labels in (("istio-system", {}), ("payments", {"istio-injection": "enabled"}),
                              ("ztunnel-system", {})) if n in names]


def test_a_ztunnel_pod_is_the_node_proxy_not_a_sidecar() -> None:
    part = objects_to_part([(o, "kubernetes") for o in [*_namespaces("istio-system"), _ztunnel_pod()]], Layer.LIVE)
    [pod] = part.pods
    assert (pod.has_sidecar, pod.node_proxy, pod.ambient) == (False, True, False)
    # Its container is its own, not a sidecar: no sidecar readiness or restarts, its restart is its own.
    assert pod.sidecar_ready is None and pod.sidecar_restarts == 0 and pod.restarts == 1
    assert [(h.container, h.sidecar, h.reason) for h in pod.restart_history] == [("istio-proxy", False, "OOMKilled")]
    assert pod.proxy_image == f"gcr.io/istio-release/ztunnel:1.24.2-distroless@{DIGEST}"
    assert pod.workload == WorkloadRef("istio-system", "ztunnel") and pod.node == "gke-prod-pool-1-3c9f2d1a-x7q2"
    [workload] = part.workloads
    assert (workload.mesh, workload.meshed) == (Mesh.ISTIO, False)  # Istio's, and no sidecar in it


def test_the_node_proxy_is_told_by_its_image_not_its_namespace_or_name() -> None:
    pods = [_ztunnel_pod("node-agent-0", "ztunnel-system", f"registry.internal:5000/mirror/istio/ztunnel@{DIGEST}"),
            _ztunnel_pod("ztunnel-j8k2p", "istio-system", "registry.example:5000/ztunnel/proxyv2:1.24.2")]
    part = objects_to_part([(o, "kubernetes") for o in [*_namespaces("istio-system", "ztunnel-system"), *pods]],
                           Layer.LIVE)
    by_name = {p.name: p for p in part.pods}
    assert (by_name["node-agent-0"].has_sidecar, by_name["node-agent-0"].node_proxy) == (False, True)
    # Named and placed like ztunnel, but its istio-proxy runs the sidecar image: a sidecar.
    assert (by_name["ztunnel-j8k2p"].has_sidecar, by_name["ztunnel-j8k2p"].node_proxy) == (True, False)


@pytest.mark.parametrize("image", ["docker.io/istio/proxyv2:1.24.2", "registry.example:5000/ztunnel/proxyv2:1.24.2",
                                   f"ztunnel.registry.example/istio/proxyv2:1.24.2@{DIGEST}"])
def test_a_sidecar_whose_image_path_says_ztunnel_is_still_a_sidecar(image: str) -> None:
    part = objects_to_part([(o, "kubernetes") for o in [*_namespaces("payments"), _sidecar_pod(image)]], Layer.LIVE)
    [pod] = part.pods
    assert (pod.has_sidecar, pod.node_proxy, pod.sidecar_ready, pod.proxy_image) == (True, False, True, image)
    [workload] = part.workloads
    assert (workload.mesh, workload.meshed) == (Mesh.ISTIO, True)


def test_the_ztunnel_daemonset_template_is_no_sidecar_workload() -> None:
    daemonset = _ztunnel_daemonset(_ztunnel_pod())
    part = objects_to_part([(daemonset, "ztunnel.yaml")], Layer.INTENDED)
    [workload] = part.workloads
    # The chart says sidecar.istio.io/inject: "false": no sidecar, now or after admission.
    assert (workload.mesh, workload.meshed, workload.proxy_image) == (
        Mesh.ISTIO, False, f"gcr.io/istio-release/ztunnel:1.24.2-distroless@{DIGEST}")


def _manifests(*objects: dict[str, Any]) -> MeshSnapshot:
    return manifests_snapshot({"cluster.json": json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})})


def test_a_namespace_holding_only_ztunnel_runs_no_proxy_that_enforces_its_policies() -> None:
    """ztunnel enforces policies for the ambient pods of its node, not for its own namespace:
    a PeerAuthentication beside it alone protects nothing (MSH0260), as beside any workload
    without a proxy; in Istio's root namespace the same policy is the mesh-wide default."""
    peer_auth = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                 "metadata": {"name": "strict", "namespace": "ztunnel-system"}, "spec": {"mtls": {"mode": "STRICT"}}}
    snapshot = _manifests(*_namespaces("ztunnel-system"), _ztunnel_pod(namespace="ztunnel-system"), peer_auth)
    assert pairs(analyzer_findings(snapshot, ["config.namespace_injection"])) == {
        ("MSH0260", "Namespace ztunnel-system")}
    root = _manifests(*_namespaces("istio-system"), _ztunnel_pod(),
                      {**peer_auth, "metadata": {"name": "strict", "namespace": "istio-system"}})
    assert pairs(analyzer_findings(root, ["config.namespace_injection"])) == set()


def test_the_proxy_list_offers_no_envoy_of_the_node_proxy() -> None:
    """The proxy list lists the sidecar pods whose Envoy was not collected (entering one fetches
    its admin API): ztunnel has no Envoy to fetch."""
    snapshot = _manifests(*_namespaces("istio-system", "payments"), _ztunnel_pod(),
                          _sidecar_pod("docker.io/istio/proxyv2:1.24.2"))
    rows = proxy_list_rows(snapshot, {})
    assert [r.key for r in rows] == ["ledger-7d9c8b6f5d-q2w3e.payments"]


def test_the_charts_deprecated_annotation_on_ztunnel_is_not_the_users_to_fix() -> None:
    """Istio's ztunnel chart writes ``sidecar.istio.io/inject`` as an annotation (deprecated, info
    MSH0244) on its own pods and template: not reported there, live pod or DaemonSet in Git, while
    the same annotation on an application's pod still is."""
    app = _sidecar_pod("docker.io/istio/proxyv2:1.24.2")
    app["metadata"]["annotations"] = {"sidecar.istio.io/inject": "true"}
    pod = _ztunnel_pod()
    daemonset = _ztunnel_daemonset(pod)
    for ztunnel in (pod, daemonset):
        snapshot = _manifests(*_namespaces("istio-system", "payments"), ztunnel, app)
        assert pairs(analyzer_findings(snapshot, ["config.deprecated"])) == {
            ("MSH0244", "Workload payments/ledger")}, ztunnel["kind"]


def _istiod_pod() -> dict[str, Any]:
    """An istiod pod of revision 1-24-2, its metadata as Istio's istio-discovery chart writes it."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "istiod-1-24-2-6f8d9c7b54-k2m9x", "namespace": "mesh-control",
                         "labels": {"app": "istiod", "istio": "pilot", "istio.io/rev": "1-24-2",
                                    "sidecar.istio.io/inject": "false", "pod-template-hash": "6f8d9c7b54"},
                         "annotations": {"prometheus.io/port": "15014", "prometheus.io/scrape": "true",
                                         "sidecar.istio.io/inject": "false"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "istiod-1-24-2-6f8d9c7b54", "controller": True}]},
            "spec": {"serviceAccountName": "istiod-1-24-2",
                     "containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.24.2",
                                     "args": ["discovery", "--monitoringAddr=:15014"]}]},
            "status": {"phase": "Running", "podIP": "10.48.0.12",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "discovery", "ready": True, "restartCount": 0}]}}


def test_the_charts_deprecated_annotation_on_istiod_is_not_the_users_to_fix() -> None:
    """istiod's chart writes the same deprecated annotation on its pods and template: every Istio
    mesh has it, so it is not reported (live pod or Deployment in Git, in whatever namespace),
    while on an application's pod it still is."""
    app = _sidecar_pod("docker.io/istio/proxyv2:1.24.2")
    app["metadata"]["annotations"] = {"sidecar.istio.io/inject": "true"}
    pod = _istiod_pod()
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "istiod-1-24-2", "namespace": "mesh-control"},
                  "spec": {"selector": {"matchLabels": {"app": "istiod", "istio.io/rev": "1-24-2"}},
                           "template": {"metadata": {"labels": copy.deepcopy(pod["metadata"]["labels"]),
                                                     "annotations": pod["metadata"]["annotations"]},
                                        "spec": copy.deepcopy(pod["spec"])}}}
    for istiod in (pod, deployment):
        snapshot = _manifests(*_namespaces("payments"), {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": "mesh-control"}}, istiod, app)
        assert pairs(analyzer_findings(snapshot, ["config.deprecated"])) == {
            ("MSH0244", "Workload payments/ledger")}, istiod["kind"]
