"""The Kubernetes API's view of a scenario: PodList, ServiceList, Deployments, Istio CRD lists.

Bodies are the JSON the API server returns for ``GET /api/v1/pods`` and friends, so the
Kubernetes collector parses a demo exactly as it parses a real cluster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from meshobs.raw import Payload, RawSource

from .scenario import Scenario, WorkloadSpec

ISTIO_VERSION = "1.24.2"
PROXY_IMAGE = f"docker.io/istio/proxyv2:{ISTIO_VERSION}"
NODES = ("demo-node-a", "demo-node-b", "demo-node-c")


def _h(text: str, n: int, alphabet: str = "bcdfghjklmnpqrstvwxz2456789") -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:n])


@dataclass(frozen=True)
class PodSpec:
    """One pod of a workload, with the names and addresses every renderer agrees on."""

    workload: WorkloadSpec
    name: str
    replicaset: str
    ip: str
    node: str
    uid: str
    started: datetime

    @property
    def namespace(self) -> str:
        return self.workload.namespace

    @property
    def node_id(self) -> str:
        """Envoy's node id as Istio sets it (``sidecar~IP~pod.ns~ns.svc.cluster.local``)."""
        kind = "router" if self.workload.gateway else "sidecar"
        return f"{kind}~{self.ip}~{self.name}.{self.namespace}~{self.namespace}.svc.cluster.local"


def pods(scenario: Scenario) -> list[PodSpec]:
    """Every pod of the scenario, in a stable order, with deterministic names and IPs."""
    out: list[PodSpec] = []
    for index, w in enumerate(scenario.workloads):
        rs = f"{w.name}-{_h('rs:' + w.namespace + w.name, 10)}"
        if w.kind == "Job":  # a CronJob's Job: <cronjob>-<scheduled minute since the epoch>
            rs = f"{w.name}-{int(scenario.time.timestamp() // 60) - 3}"
        for r in range(w.replicas):
            name = f"{rs}-{_h(f'pod:{w.namespace}/{w.name}/{r}', 5)}"
            n = len(out)
            uid_hex = hashlib.sha256(f"uid:{w.namespace}/{name}".encode()).hexdigest()
            uid = f"{uid_hex[:8]}-{uid_hex[8:12]}-{uid_hex[12:16]}-{uid_hex[16:20]}-{uid_hex[20:32]}"
            started = scenario.time - timedelta(days=3, hours=index, minutes=7 * r)
            state = scenario.pod_states.get(w.name)
            if state is not None and state.started_s_ago is not None and state.replica in (None, r):
                started = scenario.time - timedelta(seconds=state.started_s_ago + 60 * r)
            out.append(PodSpec(w, name, rs, f"10.244.{n // 250 % 250}.{n % 250 + 4}",
                               NODES[n % len(NODES)], uid, started))
    return out


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _labels(w: WorkloadSpec) -> dict[str, str]:
    if w.gateway:
        return {"app": w.service, "istio": "ingressgateway", "service.istio.io/canonical-name": w.service,
                "service.istio.io/canonical-revision": w.version}
    return {"app": w.service, "version": w.version, "security.istio.io/tlsMode": "istio",
            "service.istio.io/canonical-name": w.service, "service.istio.io/canonical-revision": w.version}


def _pod(p: PodSpec) -> dict[str, Any]:
    w = p.workload
    labels = {**_labels(w), "pod-template-hash": p.replicaset.rsplit("-", 1)[1]}
    started = _ts(p.started)
    proxy: dict[str, Any] = {"name": "istio-proxy", "image": PROXY_IMAGE,
             "args": ["proxy", "router" if w.gateway else "sidecar", "--domain",
                      "$(POD_NAMESPACE).svc.cluster.local", "--proxyLogLevel=warning"],
             "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
             "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}}
    containers = [proxy] if w.gateway else [
        {"name": w.service, "image": f"registry.example.com/shop/{w.service}:{w.version}",
         "ports": [{"containerPort": w.port, "name": "http", "protocol": "TCP"}]}, proxy]
    statuses = [{"name": c["name"], "image": c["image"], "ready": True, "restartCount": 0,
                 "started": True, "containerID": f"containerd://{_h(p.uid + c['name'], 32, '0123456789abcdef')}",
                 "state": {"running": {"startedAt": started}}} for c in containers]
    meta: dict[str, Any] = {
        "name": p.name, "namespace": p.namespace, "uid": p.uid, "labels": labels,
        "creationTimestamp": started, "generateName": p.replicaset + "-",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": p.replicaset,
                             "uid": _h("rsuid" + p.replicaset, 32, "0123456789abcdef"),
                             "controller": True, "blockOwnerDeletion": True}],
    }
    spec: dict[str, Any] = {"containers": containers, "serviceAccountName": w.service_account,
                            "nodeName": p.node, "restartPolicy": "Always"}
    if not w.gateway:
        meta["annotations"] = {"sidecar.istio.io/status": json.dumps(
            {"initContainers": ["istio-init"], "containers": ["istio-proxy"],
             "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"],
             "revision": "default"}, separators=(",", ":")),
            "prometheus.io/path": "/stats/prometheus", "prometheus.io/port": "15020",
            "prometheus.io/scrape": "true"}
        spec["initContainers"] = [{"name": "istio-init", "image": PROXY_IMAGE,
                                   "args": ["istio-iptables", "-p", "15001", "-z", "15006"]}]
    conditions = [{"type": t, "status": "True", "lastTransitionTime": started}
                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                            "PodScheduled")]
    return {"metadata": meta, "spec": spec,
            "status": {"phase": "Running", "conditions": conditions,
                       "hostIP": f"172.18.0.{2 + NODES.index(p.node)}",
                       "podIP": p.ip, "podIPs": [{"ip": p.ip}], "startTime": started,
                       "containerStatuses": statuses, "qosClass": "Burstable"}}


def _list(kind: str, api_version: str, items: list[dict[str, Any]]) -> str:
    return json.dumps({"kind": kind, "apiVersion": api_version,
                       "metadata": {"resourceVersion": "48211"}, "items": items}, indent=1)


def _service(scenario: Scenario, namespace: str, name: str, index: int) -> dict[str, Any]:
    gateway = any(w.gateway and w.service == name and w.namespace == namespace for w in scenario.workloads)
    backing = scenario.backing(namespace, name)
    port = backing.port
    selector = {"istio": "ingressgateway"} if gateway else {"app": backing.service}
    ports = ([{"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
              {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}]
             if gateway else [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}])
    ip = f"10.96.{index // 250 % 250}.{index % 250 + 10}"
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name},
                         "uid": _h(f"svc:{namespace}/{name}", 32, "0123456789abcdef"),
                         "creationTimestamp": _ts(scenario.time - timedelta(days=30))},
            "spec": {"type": "LoadBalancer" if gateway else "ClusterIP", "clusterIP": ip,
                     "clusterIPs": [ip], "selector": selector, "ports": ports},
            "status": {"loadBalancer": {}}}


def _deployment(scenario: Scenario, w: WorkloadSpec) -> dict[str, Any]:
    labels = _labels(w)
    return {"metadata": {"name": w.name, "namespace": w.namespace, "labels": {"app": w.service},
                         "generation": 3, "creationTimestamp": _ts(scenario.time - timedelta(days=30))},
            "spec": {"replicas": w.replicas, "selector": {"matchLabels": {k: labels[k] for k in labels
                                                                            if k in ("app", "version", "istio")}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"serviceAccountName": w.service_account}}},
            "status": {"replicas": w.replicas, "readyReplicas": w.replicas,
                       "availableReplicas": w.replicas, "updatedReplicas": w.replicas,
                       "observedGeneration": 3}}


# payload key -> (kind, apiVersion) of the Istio lists a real cluster serves.
CRDS = {
    "crd/networking.istio.io/v1/virtualservices": ("VirtualService", "networking.istio.io/v1"),
    "crd/networking.istio.io/v1/destinationrules": ("DestinationRule", "networking.istio.io/v1"),
    "crd/networking.istio.io/v1/gateways": ("Gateway", "networking.istio.io/v1"),
    "crd/networking.istio.io/v1/serviceentries": ("ServiceEntry", "networking.istio.io/v1"),
    "crd/networking.istio.io/v1/sidecars": ("Sidecar", "networking.istio.io/v1"),
    "crd/security.istio.io/v1/peerauthentications": ("PeerAuthentication", "security.istio.io/v1"),
    "crd/security.istio.io/v1/authorizationpolicies": ("AuthorizationPolicy", "security.istio.io/v1"),
    "crd/security.istio.io/v1/requestauthentications": ("RequestAuthentication", "security.istio.io/v1"),
}
# App Mesh is not installed in the demo cluster: the API server answers these with 404.
NOT_INSTALLED = tuple(f"crd/appmesh.k8s.aws/v1beta2/{p}" for p in (
    "meshes", "virtualservices", "virtualrouters", "virtualnodes", "virtualgateways", "gatewayroutes"))
NOT_FOUND_BODY = "404 page not found\n"


def _live_resource(r: dict[str, Any], scenario: Scenario, n: int) -> dict[str, Any]:
    """A config resource as the API server returns it (with server-set metadata)."""
    meta = dict(r["metadata"])
    authored = {k: meta[k] for k in ("creationTimestamp", "generation", "managedFields") if k in meta}
    meta.update({"uid": _h(f"cfg:{r['kind']}/{meta['namespace']}/{meta['name']}", 32, "0123456789abcdef"),
                 "resourceVersion": str(41000 + n), "generation": 1,
                 "creationTimestamp": _ts(scenario.time - timedelta(days=10, hours=n))})
    meta.update(authored)  # an authored scenario dates its changes (see author.Mesh.apply)
    return {"apiVersion": r["apiVersion"], "kind": r["kind"], "metadata": meta, "spec": r["spec"]}


def payload_bodies(scenario: Scenario) -> dict[str, str]:
    """Payload key -> JSON body of every list the Kubernetes collector reads."""
    all_pods = pods(scenario)
    namespaces = scenario.namespaces
    bodies = {
        "namespaces": _list("NamespaceList", "v1", [
            {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns,
                                                  **({} if ns == "istio-system" else {"istio-injection": "enabled"})}},
             "status": {"phase": "Active"}} for ns in namespaces]),
        "pods": _list("PodList", "v1", [_pod(p) for p in all_pods]),
        "services": _list("ServiceList", "v1", [_service(scenario, ns, svc, i)
                                                for i, (ns, svc) in enumerate(scenario.services())]),
        "deployments": _list("DeploymentList", "apps/v1", [_deployment(scenario, w) for w in scenario.workloads]),
    }
    for key, (kind, api) in CRDS.items():
        items = [_live_resource(r, scenario, n) for n, r in enumerate(scenario.config) if r["kind"] == kind]
        bodies[key] = _list(f"{kind}List", api, items)
    if scenario.rich:
        from .kube_rich import enrich

        bodies = enrich(scenario, bodies)
    return bodies


# payload key -> the API path a real client GETs (cluster-wide list).
def api_path(key: str) -> str:
    """The Kubernetes API path of a payload key (``pods`` -> ``/api/v1/pods``)."""
    from .kube_rich import api_path as rich_path

    extra = rich_path(key)
    if extra is not None:
        return extra
    if key.startswith("crd/"):
        return "/apis/" + key[len("crd/"):]
    if key == "deployments":
        return f"/apis/apps/v1/{key}"
    return f"/api/v1/{key}"


def kubernetes_source(scenario: Scenario) -> RawSource:
    """The ``kubernetes`` RawSource of a scenario."""
    raw = RawSource(name="kubernetes", kind="kubernetes", meta={"context": "demo", "namespaces": []})
    for key, body in payload_bodies(scenario).items():
        raw.add(Payload(key=key, body=body, status=200, url=api_path(key),
                        fetched_at=_ts(scenario.time)))
    for key in NOT_INSTALLED:
        raw.add(Payload(key=key, body=NOT_FOUND_BODY, status=404, url=api_path(key),
                        fetched_at=_ts(scenario.time)))
    return raw
