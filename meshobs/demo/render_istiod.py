"""istiod as a source: its pods, its debug endpoints and its Prometheus metrics.

- ``/ready`` on port 8080: 200 with an empty body when ready, 503 otherwise (istiod's
  ``istiodReadyHandler`` writes only the status).
- ``/debug/syncz`` on port 15014: a JSON list of ``SyncStatus`` (pilot/pkg/xds/debug.go), one
  per proxy connected *to this replica*, with the nonce istiod last sent and the nonce the proxy
  last acknowledged per xDS type. A nonce is the push version followed by a UUID
  (``nonce(push.PushVersion)``); a proxy that NACKs keeps acking the previous one. Istio 1.24
  still serves this JSON; newer releases also answer the same question over xDS
  (``istio.io/debug/syncz``, CSDS ``ClientConfig``), which is not rendered here.
- Metrics (scraped from 15014 by the ``kubernetes-pods`` job): ``pilot_xds`` (connected proxies by
  version), ``pilot_xds_pushes{type}`` (``<xds>_senderr`` counts send failures),
  ``pilot_total_xds_rejects{type}``, ``pilot_xds_<xds>_reject{node,err}`` (set when a proxy
  NACKs; ``err`` is the gRPC code name Envoy sends, ``Internal``),
  ``pilot_xds_push_context_errors``, ``pilot_proxy_convergence_time`` (histogram, seconds) and
  ``istio_build``. Istio's docs list no ``pilot_xds_push_errors`` for current releases (it was
  ``pilot_xds_push_errors{type=unrecoverable|retry}`` in 1.0-1.4); push errors are the
  ``*_senderr`` pushes here. Unsure: whether a reject gauge is ever reset without a restart.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from meshobs.raw import Payload, RawSource

from .prom_timeline import Series
from .render_kubernetes import PodSpec, _h, pods
from .scenario import Scenario
from .state import XDS_TYPES, IstiodSpec

NAMESPACE = "istio-system"
CONVERGENCE_BUCKETS_S = (0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0)
LAST_PUSH_S_AGO = 493.0  # the mesh's last push (8 m 13 s, as the classic demo's config_dump)
_SYNCZ_FIELDS = {"cds": "cluster", "lds": "listener", "rds": "route", "eds": "endpoint"}


@dataclass(frozen=True)
class IstiodPod:
    name: str
    ip: str
    index: int
    ready: bool
    started: datetime


def istiod_pods(scenario: Scenario) -> list[IstiodPod]:
    """The istiod replicas of the scenario (none when it declares no control plane)."""
    spec = scenario.istiod
    if spec is None:
        return []
    rs = f"istiod-{_h('rs:istiod' + spec.revision, 10)}"
    started = scenario.time - timedelta(seconds=spec.restarted_s_ago)
    return [IstiodPod(f"{rs}-{_h(f'istiod/{i}', 5)}", f"10.244.250.{10 + i}", i, i not in spec.not_ready,
                      started - timedelta(minutes=3 * i)) for i in range(spec.replicas)]


def push_version(scenario: Scenario, age_s: float, replica: int = 0) -> str:
    """Istio's PushVersion of the push ``age_s`` seconds ago: RFC 3339 time / push counter.
    Each istiod replica counts its own pushes, so replicas disagree on the number."""
    when = scenario.time - timedelta(seconds=age_s)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%SZ')}/{max(1, 412 - 131 * replica - int(age_s // 97))}"


def _nonce(version: str, seed: str) -> str:
    hexes = hashlib.sha256(seed.encode()).hexdigest()
    return f"{version}{hexes[:8]}-{hexes[8:12]}-4{hexes[13:16]}-a{hexes[17:20]}-{hexes[20:32]}"


def proxy_pods(scenario: Scenario) -> list[PodSpec]:
    """Pods whose proxy connects to istiod (sidecars and gateways)."""
    return [p for p in pods(scenario) if p.workload.sidecar and not scenario.on_appmesh(p.workload)]


def replica_of(scenario: Scenario, index: int) -> int:
    """Which istiod replica the ``index``-th proxy is connected to."""
    spec = scenario.istiod or IstiodSpec()
    serving = [i for i in range(spec.replicas) if i not in spec.not_ready] or list(range(spec.replicas))
    return serving[index % len(serving)]


def replica_for_pod(scenario: Scenario, pod: PodSpec) -> int:
    """The istiod replica ``pod``'s proxy is connected to."""
    names = [p.name for p in proxy_pods(scenario)]
    return replica_of(scenario, names.index(pod.name)) if pod.name in names else 0


def pushed_s_ago(scenario: Scenario, pod: PodSpec, xds: str) -> float:
    """When istiod last sent ``xds`` to the proxy of ``pod`` (a scoped push reached only some)."""
    state = scenario.proxy_states.get(pod.workload.name)
    if state is not None and xds in state.pushed_s_ago:
        return state.pushed_s_ago[xds]
    spec = scenario.istiod
    if spec is not None and spec.scoped_push_to and pod.workload.name in spec.scoped_push_to:
        return spec.scoped_push_s_ago  # the scoped push reached this proxy only
    return LAST_PUSH_S_AGO


def accepted_s_ago(scenario: Scenario, pod: PodSpec, xds: str) -> float:
    """When the proxy of ``pod`` last *accepted* an ``xds`` push (older when it NACKs)."""
    state = scenario.proxy_states.get(pod.workload.name)
    sent = pushed_s_ago(scenario, pod, xds)
    for r in state.rejections if state else ():
        if r.xds == xds:
            return max(sent, r.since_s_ago + 1.0)
    return sent


def _sync_status(scenario: Scenario, pod: PodSpec) -> dict[str, Any]:
    spec = scenario.istiod or IstiodSpec()
    state = scenario.proxy_states.get(pod.workload.name)
    proxy_id = f"{pod.name}.{pod.namespace}"
    out: dict[str, Any] = {"cluster_id": "Kubernetes", "proxy": proxy_id,
                           "proxy_type": "router" if pod.workload.gateway else "sidecar",
                           "istio_version": (state.istio_version if state and state.istio_version
                                             else spec.version)}
    replica = replica_for_pod(scenario, pod)
    for xds in XDS_TYPES:
        sent_v = push_version(scenario, pushed_s_ago(scenario, pod, xds), replica)
        sent = _nonce(sent_v, f"{proxy_id}/{xds}/{sent_v}")
        acked_v = push_version(scenario, accepted_s_ago(scenario, pod, xds), replica)
        acked = _nonce(acked_v, f"{proxy_id}/{xds}/{acked_v}")
        if xds in spec.unacked.get(pod.workload.name, ()):
            acked = _nonce(acked_v, f"{proxy_id}/{xds}/previous")
        out[f"{_SYNCZ_FIELDS[xds]}_sent"] = sent
        out[f"{_SYNCZ_FIELDS[xds]}_acked"] = acked
    return out


def syncz(scenario: Scenario, replica: int) -> list[dict[str, Any]]:
    """``/debug/syncz`` of one istiod replica: the proxies connected to it."""
    return [_sync_status(scenario, p) for i, p in enumerate(proxy_pods(scenario))
            if replica_of(scenario, i) == replica
            and (scenario.proxy_states.get(p.workload.name) is None
                 or scenario.proxy_states[p.workload.name].connected)]


def istiod_source(scenario: Scenario) -> RawSource:
    """A RawSource of kind ``istiod`` as :mod:`meshobs.collectors.istiod` fetches it: per replica
    ``<pod>/ready`` and ``<pod>/syncz``."""
    raw = RawSource(name="istiod", kind="istiod", meta={"namespace": NAMESPACE})
    when = scenario.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    for pod in istiod_pods(scenario):
        url = f"http://{pod.ip}"
        raw.add(Payload(key=f"{pod.name}/ready", status=200 if pod.ready else 503, body="",
                        url=f"{url}:8080/ready", fetched_at=when))
        raw.add(Payload(key=f"{pod.name}/syncz", status=200, url=f"{url}:15014/debug/syncz", fetched_at=when,
                        body=json.dumps(syncz(scenario, pod.index), indent=1)))
    return raw


# -- Kubernetes objects ------------------------------------------------------------------------

def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def kubernetes_objects(scenario: Scenario) -> dict[str, list[dict[str, Any]]]:
    """List key -> istiod's Pods, Deployment, Service and the sidecar injector webhook."""
    spec = scenario.istiod
    if spec is None:
        return {}
    image = f"docker.io/istio/pilot:{spec.version}"
    labels = {"app": "istiod", "istio": "pilot", "istio.io/rev": spec.revision,
              "install.operator.istio.io/owning-resource": "unknown", "operator.istio.io/component": "Pilot"}
    out: dict[str, list[dict[str, Any]]] = {"pods": [], "deployments": [], "services": [], "webhooks": []}
    for pod in istiod_pods(scenario):
        started = _ts(pod.started)
        ready = "True" if pod.ready else "False"
        out["pods"].append({
            "metadata": {"name": pod.name, "namespace": NAMESPACE, "labels": {**labels,
                         "pod-template-hash": pod.name.split("-")[1]},
                         "annotations": {"prometheus.io/port": "15014", "prometheus.io/scrape": "true",
                                         "sidecar.istio.io/inject": "false"},
                         "creationTimestamp": started, "uid": _h("uid" + pod.name, 32, "0123456789abcdef"),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": pod.name.rsplit("-", 1)[0], "controller": True,
                                              "uid": _h("rs" + pod.name, 32, "0123456789abcdef")}]},
            "spec": {"serviceAccountName": "istiod", "containers": [{
                "name": "discovery", "image": image, "args": [
                    "discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
                    "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 15010, "protocol": "TCP"},
                          {"containerPort": 15017, "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 3,
                                   "timeoutSeconds": 5, "initialDelaySeconds": 1}}]},
            "status": {"phase": "Running", "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "startTime": started,
                       "conditions": [{"type": t, "status": ready if t in ("Ready", "ContainersReady") else "True",
                                       "lastTransitionTime": started}
                                      for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                       "containerStatuses": [{"name": "discovery", "image": image, "ready": pod.ready,
                                              "restartCount": 0, "started": True,
                                              "state": {"running": {"startedAt": started}}}]}})
    ready_count = sum(p.ready for p in istiod_pods(scenario))
    out["deployments"].append({
        "metadata": {"name": "istiod", "namespace": NAMESPACE, "labels": labels, "generation": 4,
                     "creationTimestamp": _ts(scenario.time - timedelta(days=90))},
        "spec": {"replicas": spec.replicas, "selector": {"matchLabels": {"app": "istiod", "istio": "pilot"}},
                 "template": {"metadata": {"labels": labels}, "spec": {"serviceAccountName": "istiod"}}},
        "status": {"replicas": spec.replicas, "readyReplicas": ready_count, "availableReplicas": ready_count,
                   "updatedReplicas": spec.replicas, "observedGeneration": 4}})
    out["services"].append({
        "metadata": {"name": "istiod", "namespace": NAMESPACE, "labels": {"app": "istiod", "istio": "pilot"},
                     "creationTimestamp": _ts(scenario.time - timedelta(days=90))},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.250.10", "clusterIPs": ["10.96.250.10"],
                 "selector": {"app": "istiod", "istio": "pilot"},
                 "ports": [{"name": "grpc-xds", "port": 15010, "targetPort": 15010, "protocol": "TCP"},
                           {"name": "https-dns", "port": 15012, "targetPort": 15012, "protocol": "TCP"},
                           {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                           {"name": "http-monitoring", "port": 15014, "targetPort": 15014, "protocol": "TCP"}]},
        "status": {"loadBalancer": {}}})
    out["webhooks"].append({
        "metadata": {"name": "istio-sidecar-injector", "labels": {"app": "sidecar-injector",
                                                                  "istio.io/rev": spec.revision}},
        "webhooks": [{"name": f"{ns}.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"],
                      "clientConfig": {"service": {"name": "istiod", "namespace": NAMESPACE,
                                                   "path": "/inject", "port": 443}},
                      "failurePolicy": "Fail", "sideEffects": "None", "reinvocationPolicy": "Never",
                      "namespaceSelector": sel, "objectSelector": obj}
                     for ns, sel, obj in (
                         ("namespace", {"matchExpressions": [{"key": "istio-injection", "operator": "In",
                                                              "values": ["enabled"]}]},
                          {"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn",
                                                 "values": ["false"]}]}),
                         ("object", {"matchExpressions": [{"key": "istio-injection", "operator": "DoesNotExist"},
                                                          {"key": "istio.io/rev", "operator": "DoesNotExist"}]},
                          {"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "In",
                                                 "values": ["true"]}]}))]})
    return out


# -- metrics -----------------------------------------------------------------------------------

def _target(pod: IstiodPod) -> dict[str, str]:
    """The labels Prometheus's kubernetes-pods job attaches to everything it scrapes from istiod."""
    return {"app": "istiod", "istio": "pilot", "instance": f"{pod.ip}:15014", "job": "kubernetes-pods",
            "namespace": NAMESPACE, "pod": pod.name}


def _lognormal_cdf(x: float, p50: float, p99: float) -> float:
    sigma = math.log(max(p99, p50 * 1.0001) / p50) / 2.326347874
    return 0.5 * (1.0 + math.erf((math.log(x) - math.log(p50)) / sigma / math.sqrt(2.0)))


def istiod_series(scenario: Scenario) -> list[Series]:
    """Every istiod metric series of the scenario over its history."""
    spec = scenario.istiod
    if spec is None:
        return []
    out: list[Series] = []
    proxies = proxy_pods(scenario)

    def add(name: str, family: str, kind: str, labels: dict[str, str], cuts: tuple[float, ...],
            values: list[float | None], counter: bool = True) -> None:
        out.append(Series(name, family, kind, labels, cuts, values, counter))

    for pod in istiod_pods(scenario):
        target = _target(pod)
        mine = [p for i, p in enumerate(proxies) if replica_of(scenario, i) == pod.index]
        add("istio_build", "istio_build", "gauge", {**target, "component": "pilot", "tag": spec.version},
            (), [1.0], counter=False)
        add("pilot_xds", "pilot_xds", "gauge", {**target, "version": spec.version}, (),
            [float(len(mine)) if pod.ready else 0.0], counter=False)
        for xds in XDS_TYPES:
            add("pilot_xds_pushes", "pilot_xds_pushes", "counter", {**target, "type": xds}, (),
                [spec.pushes_per_s * max(1, len(mine))])
        if spec.push_errors_per_s:
            for xds in ("cds", "lds"):
                add("pilot_xds_pushes", "pilot_xds_pushes", "counter", {**target, "type": f"{xds}_senderr"},
                    (spec.push_errors_since_s_ago,), [spec.push_errors_per_s, 0.0])
        add("pilot_xds_push_context_errors", "pilot_xds_push_context_errors", "counter", target,
            (spec.push_errors_since_s_ago,), [spec.push_context_errors_per_s, 0.0])
        rejects: dict[str, float] = {}
        for i, p in enumerate(proxies):
            if replica_of(scenario, i) != pod.index:
                continue
            state = scenario.proxy_states.get(p.workload.name)
            for r in state.rejections if state else ():
                # Each rejected push is one reject; pushes come every few minutes.
                rate = r.attempts / max(r.since_s_ago, 1.0)
                rejects[r.xds] = rejects.get(r.xds, 0.0) + rate
                add(f"pilot_xds_{r.xds}_reject", f"pilot_xds_{r.xds}_reject", "gauge",
                    {**target, "node": f"{p.name}.{p.namespace}", "err": "Internal"},
                    (r.since_s_ago,), [1.0, None], counter=False)
        for xds, rate in sorted(rejects.items()):
            since = min(r.since_s_ago for s in scenario.proxy_states.values() for r in s.rejections if r.xds == xds)
            add("pilot_total_xds_rejects", "pilot_total_xds_rejects", "counter", {**target, "type": xds},
                (since,), [rate, 0.0])
        pushes = spec.pushes_per_s * max(1, len(mine))
        hist = "pilot_proxy_convergence_time"
        for bound in (*CONVERGENCE_BUCKETS_S, math.inf):
            share = 1.0 if math.isinf(bound) else _lognormal_cdf(bound, spec.convergence_p50_s,
                                                                   spec.convergence_p99_s)
            le = "+Inf" if math.isinf(bound) else repr(bound)
            add(f"{hist}_bucket", hist, "histogram", {**target, "le": le}, (), [pushes * share])
        add(f"{hist}_count", hist, "histogram", target, (), [pushes])
        add(f"{hist}_sum", hist, "histogram", target, (), [pushes * spec.convergence_p50_s * 1.3])
    return out
