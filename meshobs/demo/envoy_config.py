"""What istiod would push to each proxy of a scenario: clusters, routes, listeners, node info.

The translation follows Istio's own (VirtualService http rules -> RDS routes with
weighted_clusters, retry_policy and timeout; DestinationRule -> cluster outlier_detection,
circuit_breakers, TLS and subsets), so the effective layer agrees with the live config unless a
scenario says a proxy drifted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .render_kubernetes import ISTIO_VERSION, PodSpec
from .scenario import Scenario, WorkloadSpec
from .traffic import EdgeTraffic

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ADMIN = "type.googleapis.com/envoy.admin.v3."
MAX = 4294967295
RAW_BUFFER = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
ISTIO_DEFAULT_RETRY = {
    "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    "num_retries": 2,
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": "5",
    "retriable_status_codes": [503],
}


def _duration(istio: str) -> str:
    """An Istio duration (``250ms``, ``1.5s``, ``2m``) as Envoy's config dump writes the
    ``google.protobuf.Duration`` istiod made of it: seconds with 0, 3, 6 or 9 decimals
    (``0.250s``, ``1.500s``, ``120s``), never ``ms``. A value that is no duration (a test's
    malformed VirtualService) is copied as it is."""
    from meshobs.durations import parse_duration

    try:
        nanos = round(parse_duration(istio) * 1e9)
    except (ValueError, TypeError):
        return istio
    whole, frac = divmod(nanos, 10**9)
    if not frac:
        return f"{whole}s"
    digits = f"{frac:09d}"
    for keep in (3, 6):
        if digits[keep:] == "0" * (9 - keep):
            return f"{whole}.{digits[:keep]}s"
    return f"{whole}.{digits}s"


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


@dataclass
class ClusterView:
    """One outbound (or inbound) cluster of a proxy with the traffic it carries."""

    name: str
    service: str
    namespace: str
    port: int
    subset: str = ""
    hosts: list[PodSpec] = field(default_factory=list)
    edges: list[tuple[EdgeTraffic, float]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)  # merged DestinationRule trafficPolicy
    dr: str | None = None


class MeshView:
    """The scenario as istiod sees it, answering per-proxy questions."""

    def __init__(self, scenario: Scenario, all_pods: list[PodSpec]) -> None:
        self.scenario = scenario
        self.pods = all_pods
        gateways = {w.service for w in scenario.workloads if w.gateway}
        self.services = [(ns, svc) for ns, svc in scenario.services() if svc not in gateways]
        self.small = len(self.services) <= 20
        # Indexes in scenario order, so one proxy is rendered from its own edges and hosts: the
        # scans they replace cost O(mesh) per proxy (435 ms a proxy at 5,000 services), and the
        # served demo renders a proxy when it is first asked for.
        self._edges_from: dict[tuple[str, str], list[EdgeTraffic]] = {}
        self._edges_to: dict[tuple[str, str], list[EdgeTraffic]] = {}
        self._protocols: dict[tuple[str, str], str] = {}
        for e in scenario.edges:
            self._edges_from.setdefault((e.source_namespace, e.source_workload), []).append(e)
            self._edges_to.setdefault((e.destination_namespace, e.destination_workload or ""), []).append(e)
            self._protocols.setdefault((e.destination_service, e.destination_namespace), e.protocol)
        self._ports: dict[tuple[str, str], int] = {}
        for w in scenario.workloads:
            for svc in (w.service, *w.other_services):
                self._ports.setdefault((svc, w.namespace), w.port)
        self._hosts: dict[tuple[str, str], list[PodSpec]] = {}
        for p in all_pods:
            for svc in (p.workload.service, *p.workload.other_services):
                self._hosts.setdefault((svc, p.namespace), []).append(p)
        self._by_kind: dict[str, list[dict[str, Any]]] = {}
        self._rules_for: dict[tuple[str, str], list[dict[str, Any]]] | None = None

    # -- config lookups --------------------------------------------------------------------

    def _resources(self, kind: str) -> list[dict[str, Any]]:
        if kind not in self._by_kind:
            self._by_kind[kind] = [r for r in self.scenario.config if r["kind"] == kind]
        return self._by_kind[kind]

    def edges_from(self, namespace: str, workload: str) -> list[EdgeTraffic]:
        """The edges ``namespace/workload`` calls, in scenario order."""
        return self._edges_from.get((namespace, workload), [])

    def edges_to(self, namespace: str, workload: str) -> list[EdgeTraffic]:
        """The edges that reach ``namespace/workload``, in scenario order."""
        return self._edges_to.get((namespace, workload), [])

    def _destination_rules(self, service: str, namespace: str) -> list[dict[str, Any]]:
        """The DestinationRules whose host names ``service`` in ``namespace``, in config order."""
        if self._rules_for is None:
            self._rules_for = {}
            for r in self._resources("DestinationRule"):
                host, rns = r["spec"]["host"], r["metadata"]["namespace"]
                # _host_matches: the short name in the rule's namespace, or the FQDN anywhere.
                keys = {(host, rns)}
                parts = host.split(".")
                if len(parts) == 5 and host.endswith(".svc.cluster.local"):
                    keys.add((parts[0], parts[1]))
                for key in keys:
                    if self._host_matches(host, rns, *key):
                        self._rules_for.setdefault(key, []).append(r)
        return self._rules_for.get((service, namespace), [])

    def _host_matches(self, host: str, resource_ns: str, service: str, namespace: str) -> bool:
        return host in (service, fqdn(service, namespace)) and (
            resource_ns == namespace or host == fqdn(service, namespace))

    def destination_rule(self, caller: WorkloadSpec, service: str, namespace: str
                         ) -> tuple[str | None, dict[str, Any], list[dict[str, Any]]]:
        """(DR name, merged trafficPolicy, subsets) for ``caller`` calling ``service``."""
        base: dict[str, Any] | None = None
        scoped: dict[str, Any] | None = None
        for r in self._destination_rules(service, namespace):
            spec = r["spec"]
            selector = spec.get("workloadSelector", {}).get("matchLabels")
            if selector is None:
                base = r
            elif selector.get("app") == caller.service and r["metadata"]["namespace"] == caller.namespace:
                scoped = r
        chosen = scoped or base
        if chosen is None:
            return None, {}, []
        policy = dict((base or {}).get("spec", {}).get("trafficPolicy", {}))
        policy.update(chosen["spec"].get("trafficPolicy", {}))
        subsets = (base or chosen)["spec"].get("subsets", [])
        return chosen["metadata"]["name"], policy, subsets

    def virtual_service(self, service: str, namespace: str) -> dict[str, Any] | None:
        for r in self._resources("VirtualService"):
            if r["spec"].get("gateways"):
                continue
            if any(self._host_matches(h, r["metadata"]["namespace"], service, namespace)
                   for h in r["spec"]["hosts"]):
                return r
        return None

    def _port(self, service: str, namespace: str) -> int:
        return self._ports[(service, namespace)]

    def _protocol(self, service: str, namespace: str) -> str:
        return self._protocols.get((service, namespace), "http")

    # -- clusters ----------------------------------------------------------------------------

    def outbound_services(self, caller: WorkloadSpec) -> list[tuple[str, str]]:
        called = {(e.destination_namespace, e.destination_service)
                  for e in self.edges_from(caller.namespace, caller.name)}
        if self.small:
            return self.services
        return sorted(called)

    def clusters_for(self, pod: PodSpec) -> list[ClusterView]:
        caller = pod.workload
        out: list[ClusterView] = []
        for ns, svc in self.outbound_services(caller):
            port = self._port(svc, ns)
            dr_name, policy, subsets = self.destination_rule(caller, svc, ns)
            hosts = list(self._hosts.get((svc, ns), []))
            edges = [e for e in self.edges_from(caller.namespace, caller.name)
                     if e.destination_service == svc and e.destination_namespace == ns]
            routed = bool(subsets) and self.virtual_service(svc, ns) is not None
            host = fqdn(svc, ns)
            out.append(ClusterView(f"outbound|{port}||{host}", svc, ns, port, "", hosts,
                                   [] if routed else [(e, 1.0) for e in edges], policy, dr_name))
            for s in subsets:
                version = s.get("labels", {}).get("version")
                out.append(ClusterView(
                    f"outbound|{port}|{s['name']}|{host}", svc, ns, port, s["name"],
                    [p for p in hosts if p.workload.version == version],
                    [(e, 1.0) for e in edges if routed and e.destination_version == version], policy, dr_name))
        if not caller.gateway:
            out.append(ClusterView(f"inbound|{caller.port}||", caller.service, caller.namespace, caller.port,
                                   hosts=[pod]))
        return out

    def _cluster_resource(self, cl: ClusterView) -> dict[str, Any]:
        inbound = cl.name.startswith("inbound")
        c: dict[str, Any] = {"@type": CLUSTER, "name": cl.name,
                             "type": "ORIGINAL_DST" if inbound else "EDS", "connect_timeout": "10s"}
        if not inbound:
            c["eds_cluster_config"] = {"eds_config": {"ads": {}, "initial_fetch_timeout": "0s",
                                                      "resource_api_version": "V3"}, "service_name": cl.name}
        pool = cl.policy.get("connectionPool", {})
        c["circuit_breakers"] = {"thresholds": [{
            "max_connections": pool.get("tcp", {}).get("maxConnections", MAX),
            "max_pending_requests": pool.get("http", {}).get("http1MaxPendingRequests", MAX),
            "max_requests": pool.get("http", {}).get("http2MaxRequests", MAX),
            "max_retries": MAX, "track_remaining": True}]}
        od = cl.policy.get("outlierDetection")
        if od and not inbound:
            c["outlier_detection"] = {
                "consecutive_5xx": od.get("consecutive5xxErrors", 5), "interval": od.get("interval", "10s"),
                "base_ejection_time": od.get("baseEjectionTime", "30s"),
                "max_ejection_percent": od.get("maxEjectionPercent", 10),
                "enforcing_consecutive_5xx": 100, "enforcing_success_rate": 0,
                "enforcing_consecutive_gateway_failure": 0, "enforcing_consecutive_local_origin_failure": 0}
            c["common_lb_config"] = {"healthy_panic_threshold": {}}
        tls_mode = cl.policy.get("tls", {}).get("mode")
        if not inbound and tls_mode != "DISABLE":
            tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {
                    "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": {
                        "api_config_source": {"api_type": "GRPC", "transport_api_version": "V3",
                                              "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}]},
                        "resource_api_version": "V3"}}],
                    # ISTIO_MUTUAL: validate the peer against istio-agent's SDS root, as istiod does.
                    "combined_validation_context": {
                        "default_validation_context": {"match_subject_alt_names": [
                            {"exact": f"spiffe://cluster.local/ns/{cl.namespace}/sa/{sa}"}
                            for sa in sorted({p.workload.service_account for p in cl.hosts})]},
                        "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": {
                            "api_config_source": {"api_type": "GRPC", "transport_api_version": "V3",
                                                  "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}]},
                            "resource_api_version": "V3"}}},
                    "alpn_protocols": ["istio-peer-exchange", "istio"]},
                "sni": f"outbound_.{cl.port}_.{cl.subset}_.{fqdn(cl.service, cl.namespace)}"}}
            if tls_mode == "ISTIO_MUTUAL":
                c["transport_socket"] = tls
            else:  # auto mTLS: TLS only to endpoints labelled tlsMode=istio
                c["transport_socket_matches"] = [
                    {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": tls},
                    {"name": "tlsMode-disabled", "match": {}, "transport_socket": {
                        "name": "envoy.transport_sockets.raw_buffer", "typed_config": {
                            "@type": RAW_BUFFER}}}]
        istio: dict[str, Any] = {"services": [{"host": fqdn(cl.service, cl.namespace), "name": cl.service,
                                               "namespace": cl.namespace}]}
        if cl.dr:
            istio["config"] = f"/apis/networking.istio.io/v1/namespaces/{cl.namespace}/destination-rule/{cl.dr}"
        if cl.subset:
            istio["subset"] = cl.subset
        c["metadata"] = {"filter_metadata": {"istio": istio}}
        return c

    def _version(self, pod: PodSpec, xds: str) -> tuple[str, str]:
        """(version_info, last_updated) of one xDS type; stale on drifted proxies."""
        push = self.scenario.time - timedelta(minutes=8, seconds=13)
        if xds == "rds" and pod.workload.name in self.scenario.route_overrides:
            push = self.scenario.time - timedelta(days=2, hours=5)  # never got the new routes
        return f"{push.strftime('%Y-%m-%dT%H:%M:%SZ')}/{412 if push > pod.started else 17}", _ts(push)

    def clusters_dump(self, pod: PodSpec, clusters: list[ClusterView]) -> dict[str, Any]:
        version, updated = self._version(pod, "cds")
        static = [{"cluster": {"@type": CLUSTER, "name": n, "type": "STATIC", "connect_timeout": "1s"},
                   "last_updated": _ts(pod.started)} for n in ("prometheus_stats", "agent", "sds-grpc", "xds-grpc")]
        dynamic = [{"version_info": version, "cluster": {"@type": CLUSTER, "name": n,
                                                          "type": "STATIC" if "Black" in n else "ORIGINAL_DST",
                                                          "connect_timeout": "10s"},
                    "last_updated": updated} for n in ("BlackHoleCluster", "PassthroughCluster")]
        dynamic += [{"version_info": version, "cluster": self._cluster_resource(cl), "last_updated": updated}
                    for cl in clusters]
        return {"@type": ADMIN + "ClustersConfigDump", "version_info": version,
                "static_clusters": static, "dynamic_active_clusters": dynamic}

    def clusters_status(self, pod: PodSpec, clusters: list[ClusterView], counters: Any,
                        ejected: set[str]) -> dict[str, Any]:
        """``/clusters?format=json``."""
        statuses = []
        for cl in clusters:
            total = counters.values.get(cl.name, {})
            hosts = []
            for h in cl.hosts:
                share = 1.0 / max(1, len(cl.hosts))
                health: dict[str, Any] = {"eds_health_status": "HEALTHY"}
                if cl.service in ejected and not cl.name.startswith("inbound"):
                    health["failed_outlier_check"] = True
                def part(counter: str, share: float = share, total: Any = total) -> str:
                    return str(int(total.get(counter, 0) * share))

                stats = [{"name": "cx_connect_fail", "value": part("upstream_cx_connect_fail")},
                         {"name": "cx_total", "value": str(int(total.get("upstream_cx_total", 0) * share))},
                         {"name": "rq_error", "value": str(int(total.get("upstream_rq_5xx", 0) * share))},
                         {"name": "rq_success", "value": str(int(total.get("upstream_rq_2xx", 0) * share))},
                         {"name": "rq_timeout", "value": str(int(total.get("upstream_rq_timeout", 0) * share))},
                         {"name": "rq_total", "value": str(int(total.get("upstream_rq_total", 0) * share))},
                         {"type": "GAUGE", "name": "cx_active", "value": "2"},
                         {"type": "GAUGE", "name": "rq_active", "value": "0"}]
                stats = [{k: v for k, v in s.items() if v != "0"} for s in stats]  # Envoy omits zeros
                hosts.append({"address": {"socket_address": {"address": h.ip, "port_value": cl.port}},
                              "stats": stats, "health_status": health, "weight": 1,
                              "locality": {"zone": "demo-zone-1"}})
            statuses.append({"name": cl.name, "added_via_api": True, "host_statuses": hosts,
                             "circuit_breakers": {"thresholds": [
                                 {"max_connections": MAX, "max_pending_requests": MAX, "max_requests": MAX,
                                  "max_retries": MAX}, {"priority": "HIGH", "max_connections": 1024,
                                                        "max_pending_requests": 1024, "max_requests": 1024,
                                                        "max_retries": 3}]},
                             "observability_name": cl.name})
        return {"cluster_statuses": statuses}

    # -- routes ------------------------------------------------------------------------------

    def _routes(self, caller: WorkloadSpec, svc: str, ns: str, port: int) -> list[dict[str, Any]]:
        host = fqdn(svc, ns)
        vs = self.virtual_service(svc, ns)
        decorator = {"operation": f"{host}:{port}/*"}
        if vs is None:
            return [{"name": "default", "match": {"prefix": "/"},
                     "route": {"cluster": f"outbound|{port}||{host}", "timeout": "0s",
                               "retry_policy": ISTIO_DEFAULT_RETRY,
                               "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}},
                     "decorator": decorator}]
        override = self.scenario.route_overrides.get(caller.name, {}).get(svc)
        routes = []
        rules = vs["spec"]["http"]
        for i, rule in enumerate(rules):
            dests = [(d["destination"].get("subset", ""), d.get("weight", 100)) for d in rule["route"]]
            if override and (len(dests) > 1 or i == len(rules) - 1):
                dests = list(override)
            clusters = [{"name": f"outbound|{port}|{sub}|{host}", "weight": wt} for sub, wt in dests]
            action: dict[str, Any] = ({"cluster": clusters[0]["name"]} if len(clusters) == 1
                                      else {"weighted_clusters": {"clusters": clusters}})
            action["timeout"] = _duration(rule.get("timeout", "0s"))
            retries = rule.get("retries")
            if retries:
                action["retry_policy"] = {
                    "retry_on": retries.get("retryOn", ISTIO_DEFAULT_RETRY["retry_on"]),
                    "num_retries": retries.get("attempts", 2),
                    "per_try_timeout": _duration(retries.get("perTryTimeout", "0s")),
                    "retry_host_predicate": ISTIO_DEFAULT_RETRY["retry_host_predicate"],
                    "host_selection_retry_max_attempts": "5"}
            else:
                action["retry_policy"] = ISTIO_DEFAULT_RETRY
            action["max_stream_duration"] = {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}
            for m in rule.get("match") or [{}]:
                match: dict[str, Any] = {"prefix": "/"}
                headers = [{"name": k, "string_match": {"exact": v["exact"]}} for k, v in m.get("headers", {}).items()]
                if headers:
                    match["headers"] = headers
                routes.append(self._decorate(rule, m, port, {
                    "name": rule.get("name", "default"), "match": match, "route": action,
                    "decorator": decorator,
                    "metadata": {"filter_metadata": {"istio": {"config":
                        f"/apis/networking.istio.io/v1/namespaces/{vs['metadata']['namespace']}"
                        f"/virtual-service/{vs['metadata']['name']}"}}}}))
        return routes

    def _decorate(self, rule: dict[str, Any], match: dict[str, Any], port: int,
                  route: dict[str, Any]) -> dict[str, Any]:
        """A hook for richer translations (fault injection, mirroring): the classic demo's
        routes stay as they are."""
        return route

    def routes_dump(self, pod: PodSpec) -> dict[str, Any]:
        caller = pod.workload
        version, updated = self._version(pod, "rds")
        configs: dict[str, list[dict[str, Any]]] = {}
        if caller.gateway:
            for r in self._resources("VirtualService"):
                if not r["spec"].get("gateways"):
                    continue
                for rule in r["spec"]["http"]:
                    d = rule["route"][0]["destination"]
                    port = d.get("port", {}).get("number", 8080)
                    host = fqdn(d["host"], r["metadata"]["namespace"])
                    configs.setdefault("http.8080", []).append({
                        "name": f"{r['spec']['hosts'][0]}:8080", "domains": [f"{h}:*" for h in r["spec"]["hosts"]] +
                        list(r["spec"]["hosts"]),
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": f"outbound|{port}||{host}",
                                                                        "timeout": _duration(rule.get("timeout", "0s")),
                                                                        "retry_policy": ISTIO_DEFAULT_RETRY},
                                    "decorator": {"operation": f"{host}:{port}/*"}}]})
        else:
            for ns, svc in self.outbound_services(caller):
                if self._protocol(svc, ns) == "tcp":
                    continue
                port = self._port(svc, ns)
                host = fqdn(svc, ns)
                domains = [host, f"{host}:{port}"]
                if ns == caller.namespace:
                    domains += [svc, f"{svc}:{port}", f"{svc}.{ns}", f"{svc}.{ns}:{port}"]
                configs.setdefault(str(port), []).append({"name": f"{host}:{port}", "domains": domains,
                                                          "routes": self._routes(caller, svc, ns, port),
                                                          "include_request_attempt_count": True})
            for vhosts in configs.values():
                vhosts.append({"name": "allow_any", "domains": ["*"], "routes": [
                    {"name": "allow_any", "match": {"prefix": "/"},
                     "route": {"cluster": "PassthroughCluster", "timeout": "0s"}}]})
        return {"@type": ADMIN + "RoutesConfigDump", "dynamic_route_configs": [
            {"version_info": version, "last_updated": updated, "route_config": {
                "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": name,
                "virtual_hosts": vhosts, "validate_clusters": False, "ignore_port_in_host_matching": True}}
            for name, vhosts in sorted(configs.items())]}

    # -- listeners, node -----------------------------------------------------------------------

    def listeners_dump(self, pod: PodSpec) -> dict[str, Any]:
        version, updated = self._version(pod, "lds")
        names = [("0.0.0.0_8080", "0.0.0.0", 8080)]
        if not pod.workload.gateway:
            names += [("virtualOutbound", "0.0.0.0", 15001), ("virtualInbound", "0.0.0.0", 15006)]
        return {"@type": ADMIN + "ListenersConfigDump", "version_info": version, "dynamic_listeners": [
            {"name": n, "active_state": {"version_info": version, "last_updated": updated, "listener": {
                "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": n,
                "address": {"socket_address": {"address": a, "port_value": p}},
                "traffic_direction": "INBOUND" if n == "virtualInbound" else "OUTBOUND"}}}
            for n, a, p in names]}

    def node(self, pod: PodSpec) -> dict[str, Any]:
        w = pod.workload
        return {"id": pod.node_id, "cluster": f"{w.service}.{w.namespace}",
                "metadata": {"ISTIO_VERSION": ISTIO_VERSION, "NAMESPACE": w.namespace, "NAME": pod.name,
                             "POD_NAME": pod.name, "WORKLOAD_NAME": w.name, "SERVICE_ACCOUNT": w.service_account,
                             "CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local",
                             "OWNER": f"kubernetes://apis/apps/v1/namespaces/{w.namespace}/deployments/{w.name}",
                             "LABELS": {"app": w.service, "version": w.version,
                                        "service.istio.io/canonical-name": w.service,
                                        "service.istio.io/canonical-revision": w.version},
                             "INSTANCE_IPS": pod.ip},
                "user_agent_name": "envoy",
                "user_agent_build_version": {"version": {"major_number": 1, "minor_number": 32, "patch": 3},
                                             "metadata": {"build.type": "RELEASE", "revision.status": "Clean",
                                                          "ssl.version": "BoringSSL"}}}

    def bootstrap(self, pod: PodSpec) -> dict[str, Any]:
        return {"node": self.node(pod),
                "static_resources": {"clusters": [{"name": n, "type": "STATIC"} for n in
                                                  ("prometheus_stats", "agent", "sds-grpc", "xds-grpc")]},
                "dynamic_resources": {"lds_config": {"ads": {}, "initial_fetch_timeout": "0s",
                                                     "resource_api_version": "V3"},
                                      "cds_config": {"ads": {}, "initial_fetch_timeout": "0s",
                                                     "resource_api_version": "V3"},
                                      "ads_config": {"api_type": "GRPC", "set_node_on_first_message_only": True,
                                                     "transport_api_version": "V3",
                                                     "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]}},
                "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 15000}}}}
