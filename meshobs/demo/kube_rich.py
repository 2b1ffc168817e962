"""What the Kubernetes API says about an authored (``rich``) scenario beyond the classic demo.

Applied on top of :func:`render_kubernetes.payload_bodies`: namespace labels (injection,
``istio.io/dataplane-mode=ambient``), pod histories (restarts with ``lastState`` times, start
times, readiness, pods without a sidecar, Job-owned pods), istiod and its injector webhook,
ztunnel in ambient meshes, the mesh config (ConfigMap ``istio-system/istio``), and the Istio
kinds the classic demo never has (EnvoyFilter, Telemetry).

The Kubernetes collector lists only some of these today (see docs/scenarios.md, "signals
rendered, not yet collected"); the live demo serves them all.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import yaml

from .render_kubernetes import NODES, PodSpec, _h, pods
from .scenario import Scenario
from .state import PodState

# Extra list keys -> (kind, apiVersion, API path).
EXTRA_LISTS = {
    "crd/networking.istio.io/v1alpha3/envoyfilters": ("EnvoyFilter", "networking.istio.io/v1alpha3",
                                                      "/apis/networking.istio.io/v1alpha3/envoyfilters"),
    "crd/telemetry.istio.io/v1/telemetries": ("Telemetry", "telemetry.istio.io/v1",
                                              "/apis/telemetry.istio.io/v1/telemetries"),
    "crd/gateway.networking.k8s.io/v1/gateways": ("Gateway", "gateway.networking.k8s.io/v1",
                                                  "/apis/gateway.networking.k8s.io/v1/gateways"),
    "mutatingwebhookconfigurations": ("MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1",
                                      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"),
}
MESH_CONFIGMAP_KEY = "configmap/istio-system/istio"
MESH_CONFIGMAP_PATH = "/api/v1/namespaces/istio-system/configmaps/istio"
ZTUNNEL_IMAGE = "docker.io/istio/ztunnel:1.24.2"
DEFAULT_MESH = {
    "accessLogFile": "/dev/stdout",
    "defaultConfig": {"discoveryAddress": "istiod.istio-system.svc:15012",
                      "tracing": {"zipkin": {"address": "zipkin.istio-system:9411"}}},
    "enablePrometheusMerge": True,
    "rootNamespace": "istio-system",
    "trustDomain": "cluster.local",
}


def api_path(key: str) -> str | None:
    """The API path of an extra key, None for a key of the classic demo."""
    if key in EXTRA_LISTS:
        return EXTRA_LISTS[key][2]
    if key == MESH_CONFIGMAP_KEY:
        return MESH_CONFIGMAP_PATH
    return None


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_state(scenario: Scenario, pod: PodSpec, replica: int) -> PodState | None:
    state = scenario.pod_states.get(pod.workload.name)
    if state is None or (state.replica is not None and state.replica != replica):
        return None
    return state


def _apply_pod_state(item: dict[str, Any], scenario: Scenario, pod: PodSpec, state: PodState) -> None:
    statuses = item["status"]["containerStatuses"]
    app = pod.workload.service
    for restart in state.restarts:
        name = app if restart.container == "app" else restart.container
        for s in statuses:
            if s["name"] != name:
                continue
            ended = scenario.time - timedelta(seconds=restart.s_ago)
            s["restartCount"] = restart.count
            s["state"] = {"running": {"startedAt": _ts(ended + timedelta(seconds=2))}}
            s["lastState"] = {"terminated": {
                "exitCode": restart.exit_code, "reason": restart.reason,
                "startedAt": _ts(ended - timedelta(seconds=restart.ran_s)), "finishedAt": _ts(ended),
                "containerID": f"containerd://{_h(pod.uid + name + 'previous', 32, '0123456789abcdef')}"}}
    if not state.ready:
        for c in item["status"]["conditions"]:
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"] = "False"
                c["reason"] = "ContainersNotReady"
        for s in statuses:
            if s["name"] == app:
                s["ready"] = False


def _strip_sidecar(item: dict[str, Any], ambient: bool) -> None:
    """A pod Istio did not inject: no istio-proxy, no istio-init, no injection annotations."""
    meta, spec, status = item["metadata"], item["spec"], item["status"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "istio-proxy"]
    spec.pop("initContainers", None)
    status["containerStatuses"] = [s for s in status["containerStatuses"] if s["name"] != "istio-proxy"]
    meta["labels"].pop("security.istio.io/tlsMode", None)
    meta["annotations"] = {"ambient.istio.io/redirection": "enabled"} if ambient else {}


def _job_owner(item: dict[str, Any], pod: PodSpec) -> None:
    job = pod.replicaset  # <cronjob>-<minute>, as a CronJob names its Jobs
    meta = item["metadata"]
    meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                                "uid": _h("job" + job, 32, "0123456789abcdef"),
                                "controller": True, "blockOwnerDeletion": True}]
    meta["labels"].pop("pod-template-hash", None)
    meta["labels"].update({"batch.kubernetes.io/job-name": job, "job-name": job,
                           "batch.kubernetes.io/controller-uid": _h("jobuid" + job, 32, "0123456789abcdef")})
    item["spec"]["restartPolicy"] = "Never"


def ambient_namespaces(scenario: Scenario) -> set[str]:
    return {ns for ns, labels in scenario.namespace_labels.items()
            if labels.get("istio.io/dataplane-mode") == "ambient"}


def _ztunnel_pods(scenario: Scenario) -> list[dict[str, Any]]:
    started = _ts(scenario.time - timedelta(days=6))
    out = []
    for i, node in enumerate(NODES):
        name = f"ztunnel-{_h(f'ztunnel/{node}', 5)}"
        ip = f"10.244.251.{10 + i}"
        out.append({"metadata": {"name": name, "namespace": "istio-system", "creationTimestamp": started,
                                 "labels": {"app": "ztunnel", "controller-revision-hash": _h("zt", 10),
                                            "pod-template-generation": "1",
                                            "sidecar.istio.io/inject": "false"},
                                 "annotations": {"prometheus.io/port": "15020", "prometheus.io/scrape": "true",
                                                 "sidecar.istio.io/inject": "false"},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                      "name": "ztunnel", "controller": True,
                                                      "uid": _h("ds-ztunnel", 32, "0123456789abcdef")}]},
                    "spec": {"nodeName": node, "serviceAccountName": "ztunnel",
                             "containers": [{"name": "istio-proxy", "image": ZTUNNEL_IMAGE,
                                             "args": ["proxy", "ztunnel"],
                                             "ports": [{"containerPort": 15020, "name": "ztunnel-stats",
                                                        "protocol": "TCP"}]}]},
                    "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started,
                               "conditions": [{"type": t, "status": "True", "lastTransitionTime": started}
                                              for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                               "containerStatuses": [{"name": "istio-proxy", "image": ZTUNNEL_IMAGE, "ready": True,
                                                      "restartCount": 0, "started": True,
                                                      "state": {"running": {"startedAt": started}}}]}})
    return out


def _waypoints(scenario: Scenario) -> dict[str, list[dict[str, Any]]]:
    """Pods, Deployments and Services of the waypoints the scenario's Gateway API objects ask for
    (gatewayClassName istio-waypoint): istiod deploys an Envoy named after the Gateway."""
    out: dict[str, list[dict[str, Any]]] = {"pods": [], "deployments": [], "services": []}
    started = _ts(scenario.time - timedelta(days=5))
    for i, gw in enumerate(o for o in scenario.objects if o["kind"] == "Gateway"
                           and o["spec"].get("gatewayClassName") == "istio-waypoint"):
        name, ns = gw["metadata"]["name"], gw["metadata"]["namespace"]
        labels = {"gateway.networking.k8s.io/gateway-name": name,
                  "gateway.istio.io/managed": "istio.io-mesh-controller"}
        rs = f"{name}-{_h('wp-rs' + ns, 10)}"
        pod = f"{rs}-{_h('wp' + ns, 5)}"
        ip = f"10.244.252.{10 + i}"
        out["pods"].append({
            "metadata": {"name": pod, "namespace": ns, "creationTimestamp": started,
                         "labels": {**labels, "pod-template-hash": rs.rsplit("-", 1)[1]},
                         "annotations": {"prometheus.io/port": "15020", "prometheus.io/scrape": "true"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                              "controller": True, "uid": _h("wprs" + ns, 32, "0123456789abcdef")}]},
            "spec": {"nodeName": NODES[i % len(NODES)], "serviceAccountName": name,
                     "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.2",
                                     "args": ["proxy", "waypoint", "--domain", f"{ns}.svc.cluster.local"],
                                     "ports": [{"containerPort": 15008, "name": "hbone", "protocol": "TCP"},
                                               {"containerPort": 15021, "name": "status-port", "protocol": "TCP"},
                                               {"containerPort": 15090, "name": "http-envoy-prom",
                                                "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started,
                       "conditions": [{"type": t, "status": "True", "lastTransitionTime": started}
                                      for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                       "containerStatuses": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.2",
                                              "ready": True, "restartCount": 0, "started": True,
                                              "state": {"running": {"startedAt": started}}}]}})
        out["deployments"].append({
            "metadata": {"name": name, "namespace": ns, "labels": labels, "generation": 1, "creationTimestamp": started,
                         "ownerReferences": [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                                              "name": name, "uid": _h("gw" + ns, 32, "0123456789abcdef")}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": name}},
                     "template": {"metadata": {"labels": labels}, "spec": {"serviceAccountName": name}}},
            "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1,
                       "observedGeneration": 1}})
        out["services"].append({
            "metadata": {"name": name, "namespace": ns, "labels": labels, "creationTimestamp": started},
            "spec": {"type": "ClusterIP", "clusterIP": f"10.96.252.{10 + i}", "clusterIPs": [f"10.96.252.{10 + i}"],
                     "selector": {"gateway.networking.k8s.io/gateway-name": name},
                     "ports": [{"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
                               {"name": "mesh", "port": 15008, "protocol": "TCP", "targetPort": 15008}]},
            "status": {"loadBalancer": {}}})
    return out


def _list(kind: str, api_version: str, items: list[dict[str, Any]]) -> str:
    return json.dumps({"kind": kind, "apiVersion": api_version,
                       "metadata": {"resourceVersion": "48211"}, "items": items}, indent=1)


def _live(r: dict[str, Any], scenario: Scenario, n: int) -> dict[str, Any]:
    from .render_kubernetes import _live_resource

    return _live_resource(r, scenario, n)


def enrich(scenario: Scenario, bodies: dict[str, str]) -> dict[str, str]:
    """The classic lists of ``bodies`` with the rich scenario's additions; new keys appended."""
    from .render_istiod import kubernetes_objects

    docs = {k: json.loads(v) for k, v in bodies.items()}
    ambient = ambient_namespaces(scenario)
    # Namespaces: the scenario's labels replace the default injection label.
    for item in docs["namespaces"]["items"]:
        ns = item["metadata"]["name"]
        if ns in scenario.namespace_labels:
            item["metadata"]["labels"] = {"kubernetes.io/metadata.name": ns, **scenario.namespace_labels[ns]}
    if scenario.istiod is not None and not any(i["metadata"]["name"] == "istio-system"
                                               for i in docs["namespaces"]["items"]):
        docs["namespaces"]["items"].append({"metadata": {"name": "istio-system", "labels": {
            "kubernetes.io/metadata.name": "istio-system"}}, "status": {"phase": "Active"}})
    # Pods: states, sidecars, owners.
    by_name = {p.name: p for p in pods(scenario)}
    replica_index: dict[str, int] = {}
    for item in docs["pods"]["items"]:
        pod = by_name[item["metadata"]["name"]]
        r = replica_index.get(pod.workload.name, 0)
        replica_index[pod.workload.name] = r + 1
        if not pod.workload.sidecar:
            _strip_sidecar(item, pod.namespace in ambient)
        if pod.workload.kind == "Job":
            _job_owner(item, pod)
        state = pod_state(scenario, pod, r)
        if state is not None:
            _apply_pod_state(item, scenario, pod, state)
    docs["deployments"]["items"] = [
        d for d, w in zip(docs["deployments"]["items"], scenario.workloads, strict=True) if w.kind != "Job"]
    cp = kubernetes_objects(scenario)
    docs["pods"]["items"] += cp.get("pods", [])
    docs["deployments"]["items"] += cp.get("deployments", [])
    docs["services"]["items"] += cp.get("services", [])
    if ambient:
        docs["pods"]["items"] += _ztunnel_pods(scenario)
    for key, items in _waypoints(scenario).items():
        docs[key]["items"] += items
    out = {k: json.dumps(v, indent=1) for k, v in docs.items()}
    # Kinds the classic demo never lists.
    for key, (kind, api, _path) in EXTRA_LISTS.items():
        if key == "mutatingwebhookconfigurations":
            items = cp.get("webhooks", [])
        else:
            items = [_live(r, scenario, 100 + n) for n, r in enumerate([*scenario.config, *scenario.objects])
                     if r["kind"] == kind and r["apiVersion"] == api]
        out[key] = _list(f"{kind}List", api, items)
    mesh = {**DEFAULT_MESH, **(scenario.mesh_config or {})}
    out[MESH_CONFIGMAP_KEY] = json.dumps({
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "istio", "namespace": "istio-system", "labels": {
            "app": "istiod", "istio.io/rev": "default", "operator.istio.io/component": "Pilot"},
            "creationTimestamp": _ts(scenario.time - timedelta(days=90)), "resourceVersion": "1187"},
        "data": {"mesh": yaml.safe_dump(mesh, sort_keys=True), "meshNetworks": "networks: {}\n"}}, indent=1)
    return out

