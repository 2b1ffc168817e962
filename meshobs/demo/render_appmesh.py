"""The App Mesh side of a demo: Kubernetes objects as App Mesh injects them, App Mesh CRD lists,
and the Envoy admin API of App Mesh's sidecars.

Pods of App Mesh workloads carry the injected ``envoy`` container (``APPMESH_RESOURCE_ARN``
naming the virtual node) and the ``appmesh.k8s.aws/*`` annotations instead of Istio's sidecar.
Their Envoy is configured the way the App Mesh control plane does it: node id
``mesh/<mesh>/virtualNode/<node>``, clusters ``cds_egress_<mesh>_<node>_http_<port>`` per
target virtual node and ``cds_ingress_...`` for the local app, listeners ``lds_ingress_...`` /
``lds_egress_...``, and egress routes whose virtual hosts are named after the virtual service.
"""

from __future__ import annotations

import json
from typing import Any

from meshobs.raw import Payload, RawSource

from . import envoy_config as cfg
from .render_envoy import ADMIN, _Counters, _dump, _stats, _ts
from .render_kubernetes import CRDS, NOT_FOUND_BODY, NOT_INSTALLED, PodSpec, api_path, payload_bodies, pods
from .scenario import Scenario

ENVOY_IMAGE = "840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-envoy:v1.29.12.1-prod"
ENVOY_VERSION = "5e4b6a8f7a1c0e2d3b4c5d6e7f8091a2b3c4d5e6/1.29.12/Clean/RELEASE/BoringSSL"
REGION, ACCOUNT = "us-west-2", "111122223333"
INGRESS_PORT, EGRESS_PORT = 15000, 15001
# Lists the Kubernetes collector reads, per App Mesh kind.
APPMESH_LISTS = {"Mesh": "meshes", "VirtualService": "virtualservices", "VirtualRouter": "virtualrouters",
                 "VirtualNode": "virtualnodes", "VirtualGateway": "virtualgateways",
                 "GatewayRoute": "gatewayroutes"}


def mesh_of(scenario: Scenario) -> str:
    return next((r["metadata"]["name"] for r in scenario.appmesh_config if r["kind"] == "Mesh"), "")


def resource_arn(mesh: str, pod: PodSpec, aws_name: str | None = None) -> str:
    kind = "virtualGateway" if pod.workload.gateway else "virtualNode"
    return f"arn:aws:appmesh:{REGION}:{ACCOUNT}:mesh/{mesh}/{kind}/{aws_name or pod.workload.name}"


# -- Kubernetes ------------------------------------------------------------------------------

def _appmesh_pod(item: dict[str, Any], mesh: str, pod: PodSpec, istio_namespace: bool,
                 aws_name: str | None = None) -> dict[str, Any]:
    w = pod.workload
    meta, spec, status = item["metadata"], item["spec"], item["status"]
    labels = {k: v for k, v in meta["labels"].items() if "istio" not in k}
    if istio_namespace:  # a migration: keep Istio's injector off this pod
        labels["sidecar.istio.io/inject"] = "false"
    meta["labels"] = labels
    meta["annotations"] = {"appmesh.k8s.aws/mesh": mesh,
                           ("appmesh.k8s.aws/virtualGateway" if w.gateway else "appmesh.k8s.aws/virtualNode"):
                           w.name, "appmesh.k8s.aws/sidecarInjectorWebhook": "enabled"}
    envoy = {"name": "envoy", "image": ENVOY_IMAGE,
             "env": [{"name": "APPMESH_RESOURCE_ARN", "value": resource_arn(mesh, pod, aws_name)},
                     {"name": "APPMESH_PREVIEW", "value": "0"}, {"name": "ENVOY_LOG_LEVEL", "value": "info"},
                     {"name": "AWS_REGION", "value": REGION}],
             "ports": [{"containerPort": 9901, "name": "stats", "protocol": "TCP"}],
             "readinessProbe": {"exec": {"command": ["sh", "-c", "curl -s http://localhost:9901/server_info "
                                                     "| grep state | grep -q LIVE"]}}}
    spec["containers"] = [envoy if c["name"] == "istio-proxy" else c for c in spec["containers"]]
    if w.gateway:
        spec["containers"] = [envoy]
        spec.pop("initContainers", None)
    else:
        spec["initContainers"] = [{"name": "proxyinit", "image": "840364872350.dkr.ecr.us-west-2.amazonaws.com/"
                                   "aws-appmesh-proxy-route-manager:v7-prod"}]
    for s in status["containerStatuses"]:
        if s["name"] == "istio-proxy":
            s["name"], s["image"] = "envoy", ENVOY_IMAGE
    return item


def kubernetes_bodies(scenario: Scenario) -> dict[str, tuple[int, str]]:
    """Payload key -> (HTTP status, body) of every list, with App Mesh pods and CRDs."""
    mesh = mesh_of(scenario)
    by_name = {p.name: p for p in pods(scenario)}
    bodies = {k: json.loads(v) for k, v in payload_bodies(scenario).items()}
    istio_used = any(not scenario.on_appmesh(w) for w in scenario.workloads)
    for item in bodies["pods"]["items"]:
        pod = by_name[item["metadata"]["name"]]
        if scenario.on_appmesh(pod.workload):
            _appmesh_pod(item, mesh, pod, istio_used, scenario.aws_name("node", pod.workload.name))
    for item in bodies["services"]["items"]:
        name = item["metadata"]["name"]
        if any(w.gateway and w.service == name and scenario.on_appmesh(w) for w in scenario.workloads):
            item["spec"]["selector"] = {"app": name}
    for ns in bodies["namespaces"]["items"]:
        labels = ns["metadata"]["labels"]
        if ns["metadata"]["name"] in {w.namespace for w in scenario.workloads if scenario.on_appmesh(w)}:
            labels.update({"mesh": mesh, "appmesh.k8s.aws/sidecarInjectorWebhook": "enabled"})
            if not istio_used:
                labels.pop("istio-injection", None)
    out = {k: (200, json.dumps(v, indent=1)) for k, v in bodies.items()}
    if not istio_used:  # Istio is not installed: its CRD lists answer 404 at both versions
        for key in CRDS:
            out[key] = (404, NOT_FOUND_BODY)
            out[key.replace("/v1/", "/v1beta1/")] = (404, NOT_FOUND_BODY)
    for key in NOT_INSTALLED:
        kind = next(k for k, plural in APPMESH_LISTS.items() if key.endswith("/" + plural))
        items = [_live(r, n, _arn(scenario, mesh, r)) for n, r in enumerate(scenario.appmesh_config)
                 if r["kind"] == kind]
        out[key] = (200, json.dumps({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": f"{kind}List",
                                     "metadata": {"resourceVersion": "52007"}, "items": items}, indent=1))
    return out


def _live(r: dict[str, Any], n: int, arn: str | None = None) -> dict[str, Any]:
    """A CRD as the API server returns it: server metadata, and the ARN in the status."""
    meta = {**r["metadata"], "uid": f"0a1b2c3d-{n:04d}-4e5f-8a9b-{n:012d}", "resourceVersion": str(52000 + n),
            "generation": 1, "creationTimestamp": "2026-11-10T09:00:00Z"}
    status: dict[str, Any] = {"conditions": [{"type": f"{r['kind']}Active", "status": "True"}]}
    if arn:
        status[f"{r['kind'][0].lower()}{r['kind'][1:]}ARN"] = arn
        status["observedGeneration"] = 1
    return {"apiVersion": r["apiVersion"], "kind": r["kind"], "metadata": meta, "spec": r["spec"],
            "status": status}


_ARN_KIND = {"Mesh": "", "VirtualNode": "virtualNode", "VirtualService": "virtualService",
             "VirtualRouter": "virtualRouter", "VirtualGateway": "virtualGateway"}


def _arn(scenario: Scenario, mesh: str, r: dict[str, Any]) -> str | None:
    """The ARN the App Mesh controller writes into a resource's status, from its awsName (only
    for scenarios named as the controller names things; the classic demo has none)."""
    kind = _ARN_KIND.get(r["kind"])
    if not scenario.appmesh_aws_names or kind is None:
        return None
    base = f"arn:aws:appmesh:{REGION}:{ACCOUNT}:mesh/{mesh}"
    return base if not kind else f"{base}/{kind}/{r['spec'].get('awsName', r['metadata']['name'])}"


def appmesh_kubernetes_source(scenario: Scenario) -> RawSource:
    """The ``kubernetes`` RawSource of a scenario with App Mesh workloads."""
    raw = RawSource(name="kubernetes", kind="kubernetes", meta={"context": "demo", "namespaces": []})
    when = scenario.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    for key, (status, body) in kubernetes_bodies(scenario).items():
        raw.add(Payload(key=key, body=body, status=status, url=api_path(key), fetched_at=when))
    return raw


# -- Envoy admin -----------------------------------------------------------------------------

def _clusters(scenario: Scenario, mesh: str, pod: PodSpec, all_pods: list[PodSpec]) -> list[cfg.ClusterView]:
    w = pod.workload
    out: list[cfg.ClusterView] = []
    mine = [e for e in scenario.edges if e.source_workload == w.name and e.source_namespace == w.namespace]
    for svc in sorted({e.destination_service for e in mine if e.destination_service in scenario.appmesh}):
        for node in [x for x in scenario.workloads if x.service == svc]:
            edges = [(e, 1.0) for e in mine if e.destination_workload == node.name]
            out.append(cfg.ClusterView(f"cds_egress_{mesh}_{scenario.aws_name('node', node.name)}_http_{node.port}",
                                       svc, node.namespace,
                                       node.port, "", [p for p in all_pods if p.workload == node], edges))
    if not w.gateway:
        out.append(cfg.ClusterView(f"cds_ingress_{mesh}_{scenario.aws_name('node', w.name)}_http_{w.port}",
                                   w.service, w.namespace,
                                   w.port, hosts=[pod]))
    return out


def _cluster_resource(scenario: Scenario, cl: cfg.ClusterView) -> dict[str, Any]:
    ingress = cl.name.startswith("cds_ingress_")
    address = "127.0.0.1" if ingress else f"{cl.service}.{cl.namespace}.svc.cluster.local"
    c: dict[str, Any] = {"@type": cfg.CLUSTER, "name": cl.name, "type": "STATIC" if ingress else "STRICT_DNS",
                         "connect_timeout": "1s", "load_assignment": {"cluster_name": cl.name, "endpoints": [
                             {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                                 "address": address, "port_value": cl.port}}}}]}]}}
    # awsNames may hold underscores (the controller's <name>_<namespace>): match the suffix.
    spec = None if ingress else next(
        (r["spec"] for r in scenario.appmesh_config if r["kind"] == "VirtualNode"
         and cl.name.endswith(f"_{scenario.aws_name('node', r['metadata']['name'])}_http_{cl.port}")), None)
    od = (spec or {}).get("listeners", [{}])[0].get("outlierDetection")
    if od:  # the target's listener outlier detection is applied by its callers' egress clusters
        c["outlier_detection"] = {"consecutive_5xx": od["maxServerErrors"],
                                  "interval": f"{od['interval']['value']}{od['interval']['unit']}",
                                  "base_ejection_time": f"{od['baseEjectionDuration']['value']}"
                                                        f"{od['baseEjectionDuration']['unit']}",
                                  "max_ejection_percent": od["maxEjectionPercent"]}
    return c


def _duration(value: dict[str, Any]) -> str:
    seconds = value["value"] / 1000.0 if value.get("unit") == "ms" else float(value["value"])
    return f"{seconds:g}s"


def _route_action(scenario: Scenario, svc: str, ns: str) -> dict[str, Any]:
    """Timeout and retry policy of the router's route as the App Mesh control plane writes them:
    ``timeout`` from ``perRequest`` (15 s by default), ``retry_policy`` from ``retryPolicy``
    (server-error -> 5xx, gateway-error, client-error -> retriable-4xx, connection-error ->
    connect-failure)."""
    router = next((r for r in scenario.appmesh_config if r["kind"] == "VirtualRouter"
                   and r["metadata"]["name"] == f"{svc}-router" and r["metadata"].get("namespace") == ns), None)
    routes = (router or {}).get("spec", {}).get("routes") or [{}]
    http = routes[0].get("httpRoute") or {}
    out: dict[str, Any] = {"timeout": "15s"}
    per_request = (http.get("timeout") or {}).get("perRequest")
    if per_request:
        out["timeout"] = _duration(per_request)
    retry = http.get("retryPolicy")
    if retry:
        events = {"server-error": "5xx", "client-error": "retriable-4xx", "stream-error": "refused-stream",
                  "connection-error": "connect-failure"}
        conditions = [events.get(e, e) for e in [*retry.get("httpRetryEvents", []), *retry.get("tcpRetryEvents", [])]]
        out["retry_policy"] = {"retry_on": ",".join(conditions), "num_retries": retry["maxRetries"],
                               "per_try_timeout": _duration(retry["perRetryTimeout"])}
    return out


def _routes_dump(scenario: Scenario, pod: PodSpec, clusters: list[cfg.ClusterView], version: str,
                 updated: str) -> dict[str, Any]:
    configs: list[dict[str, Any]] = []
    by_service: dict[tuple[str, str, int], list[cfg.ClusterView]] = {}
    for cl in clusters:
        if cl.name.startswith("cds_egress_"):
            by_service.setdefault((cl.service, cl.namespace, cl.port), []).append(cl)
    vhosts = []
    for (svc, ns, port), group in sorted(by_service.items()):
        host = f"{svc}.{ns}.svc.cluster.local"
        total = sum(e.rps for cl in group for e, _ in cl.edges) or 1.0
        weights = [(cl.name, max(1, round(100 * sum(e.rps for e, _ in cl.edges) / total))) for cl in group]
        action: dict[str, Any] = ({"cluster": group[0].name} if len(group) == 1 else
                                  {"weighted_clusters": {"clusters": [{"name": n, "weight": wt} for n, wt in weights]}})
        vhosts.append({"name": f"{host}:{port}", "domains": [host, f"{host}:{port}"],
                       "routes": [{"name": f"{svc}-route", "match": {"prefix": "/"},
                                   "route": {**action, **_route_action(scenario, svc, ns)}}]})
    if vhosts:
        configs.append({"name": f"rds_egress_http_{EGRESS_PORT}", "virtual_hosts": vhosts})
    ingress = [cl for cl in clusters if cl.name.startswith("cds_ingress_")]
    if ingress:
        configs.append({"name": f"rds_ingress_http_{ingress[0].port}", "virtual_hosts": [
            {"name": f"{scenario.aws_name('node', pod.workload.name)}_{ingress[0].port}", "domains": ["*"],
             "routes": [{"match": {"prefix": "/"}, "route": {"cluster": ingress[0].name, "timeout": "15s"}}]}]})
    return {"@type": ADMIN + "RoutesConfigDump", "dynamic_route_configs": [
        {"version_info": version, "last_updated": updated, "route_config": {
            "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", **c}} for c in configs]}


def _node(mesh: str, pod: PodSpec, aws_name: str) -> dict[str, Any]:
    kind = "virtualGateway" if pod.workload.gateway else "virtualNode"
    node_id = f"mesh/{mesh}/{kind}/{aws_name}"
    return {"id": node_id, "cluster": node_id,
            "metadata": {"aws.appmesh.platformInfo": {"k8sVersion": "v1.31.2-eks",
                                                      "appMeshController": {"k8sVersion": "v1.13.1"}},
                         "aws.appmesh.task.interfaces": {"ipv4": [pod.ip]}},
            "user_agent_name": "envoy",
            "user_agent_build_version": {"version": {"major_number": 1, "minor_number": 29, "patch": 12},
                                         "metadata": {"build.type": "RELEASE", "revision.status": "Clean",
                                                      "ssl.version": "BoringSSL"}}}


def _proxy(scenario: Scenario, view: cfg.MeshView, mesh: str, pod: PodSpec, all_pods: list[PodSpec]) -> RawSource:
    w = pod.workload
    uptime = (scenario.time - pod.started).total_seconds()
    url = f"http://{pod.ip}:9901"
    raw = RawSource(name=f"envoy:{pod.namespace}/{pod.name}", kind="envoy",
                    meta={"namespace": pod.namespace, "pod": pod.name, "workload": w.name, "url": url})
    clusters = _clusters(scenario, mesh, pod, all_pods)
    counters = _Counters(uptime)
    ejected = scenario.ejected.get(w.name, set())
    for cl in clusters:
        for edge, share in cl.edges:
            counters.add(cl.name, edge.rps * share / w.replicas, edge.responses)
    for edge in scenario.edges:
        if edge.destination_workload == w.name and edge.destination_namespace == w.namespace and not w.gateway:
            served = tuple(r for r in edge.responses if not any(f in r[1] for f in ("UH", "UF", "UO", "UC")))
            counters.add(f"cds_ingress_{mesh}_{scenario.aws_name('node', w.name)}_http_{w.port}",
                         edge.rps / w.replicas, served)
    node = _node(mesh, pod, scenario.aws_name("node", w.name))
    version, updated = view._version(pod, "cds")
    server_info = {"version": ENVOY_VERSION, "state": "LIVE", "hot_restart_version": "11.104",
                   "command_line_options": {"concurrency": 2, "config_path": "/tmp/envoy.yaml",
                                            "log_level": "info", "mode": "Serve"},
                   "node": node, "uptime_current_epoch": f"{int(uptime)}s", "uptime_all_epochs": f"{int(uptime)}s"}
    listeners = [("lds_ingress_0.0.0.0_15000", INGRESS_PORT, "INBOUND"), ("lds_egress_0.0.0.0_15001", EGRESS_PORT,
                                                                          "OUTBOUND")]
    if w.gateway:
        listeners = [(f"lds_ingress_0.0.0.0_{w.port}", w.port, "INBOUND")]
    dump = {"configs": [
        {"@type": ADMIN + "BootstrapConfigDump", "bootstrap": {
            "node": node, "admin": {"address": {"socket_address": {"address": "0.0.0.0", "port_value": 9901}}},
            "dynamic_resources": {"ads_config": {"api_type": "GRPC", "transport_api_version": "V3", "grpc_services": [
                {"google_grpc": {"target_uri": f"appmesh-envoy-management.{REGION}.amazonaws.com:443",
                                 "stat_prefix": "ads"}}]}}},
         "last_updated": _ts(pod.started)},
        {"@type": ADMIN + "ClustersConfigDump", "version_info": version, "dynamic_active_clusters": [
            {"version_info": version, "cluster": _cluster_resource(scenario, cl), "last_updated": updated}
            for cl in clusters]},
        {"@type": ADMIN + "ListenersConfigDump", "version_info": version, "dynamic_listeners": [
            {"name": n, "active_state": {"version_info": version, "last_updated": updated, "listener": {
                "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": n,
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
                "traffic_direction": direction}}} for n, port, direction in listeners]},
        _routes_dump(scenario, pod, clusters, version, updated),
    ]}
    when = _ts(scenario.time)
    for key, path, body in (
            ("ready", "/ready", "LIVE\n"), ("server_info", "/server_info", _dump(server_info)),
            ("clusters", "/clusters?format=json", _dump(view.clusters_status(pod, clusters, counters, ejected))),
            ("stats", "/stats?format=json", _dump(_stats(clusters, counters, ejected, uptime))),
            ("config_dump", "/config_dump", _dump(dump)), ("certs", "/certs", _dump({"certificates": []}))):
        raw.add(Payload(key=key, body=body, status=200, url=url + path, fetched_at=when,
                        meta={"content_type": "text/plain" if key == "ready" else "application/json"}))
    return raw


def render_appmesh_proxies(scenario: Scenario) -> list[RawSource]:
    """One ``envoy:<ns>/<pod>`` RawSource per pod of an App Mesh workload, in pod order."""
    all_pods = pods(scenario)
    view = cfg.MeshView(scenario, all_pods)
    mesh = mesh_of(scenario)
    return [_proxy(scenario, view, mesh, p, all_pods) for p in all_pods if scenario.on_appmesh(p.workload)]
