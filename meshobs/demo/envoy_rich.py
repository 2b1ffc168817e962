"""Each sidecar's Envoy in an authored (``rich``) scenario: what istiod would push to it and the
counters it keeps, beyond the classic demo.

- **Sidecar scoping**: a ``Sidecar`` resource's ``egress.hosts`` (``./*``, ``ns/*``,
  ``*/host``) limits the clusters and virtual hosts a proxy gets; its (or the mesh's)
  ``outboundTrafficPolicy`` picks the catch-all virtual host: ``allow_any`` ->
  PassthroughCluster, or REGISTRY_ONLY's ``block_all`` (a ``direct_response`` 502).
- **ServiceEntry** hosts get ``outbound|PORT||HOST`` clusters (STRICT_DNS, no mTLS).
- **Gateways** route only the VirtualServices bound to an existing Gateway whose server hosts
  match (a binding mistake leaves the host without a virtual host: 404 NR).
- **Fault injection and mirroring** from VirtualService rules (``typed_per_filter_config`` for
  ``envoy.filters.http.fault``, ``request_mirror_policies``).
- **xDS versions per type**, consistent with istiod's syncz: a NACKing proxy keeps the last
  accepted ``version_info``/``last_updated`` of the rejected type; per route configuration RDS
  stats (``http.<stat_prefix>.rds.<route config>.update_rejected``...).
- Counters and readiness: see :mod:`meshobs.demo.envoy_counters`.

Unsure (said so in docs/scenarios.md): Envoy's config_dump can carry ``error_state`` for a
rejected resource, but whether it is filled for RDS over ADS is not documented; it is not
rendered. Istio exposes only some stats by default (``proxyStatsMatcher``); the demo's proxies
expose all, as if ``sidecar.istio.io/statsInclusionPrefixes`` asked for them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import envoy_config as cfg
from .envoy_config import ADMIN, CLUSTER, ClusterView, MeshView, fqdn
from .render_istiod import accepted_s_ago, push_version, replica_for_pod
from .render_kubernetes import PodSpec
from .scenario import WorkloadSpec


def _ts(t: Any) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _host_allowed(hosts: list[str], caller_ns: str, ns: str, host: str) -> bool:
    for entry in hosts:
        ns_part, _, name = entry.partition("/")
        ns_ok = ns_part == "*" or ns_part == ns or (ns_part == "." and ns == caller_ns)
        name_ok = name == "*" or name == host or (name.startswith("*.") and host.endswith(name[1:]))
        if ns_ok and name_ok:
            return True
    return False


class RichMeshView(MeshView):
    """MeshView with Sidecar scoping, ServiceEntries, gateway binding, faults, mirroring and
    per-type xDS versions."""

    # -- scoping -------------------------------------------------------------------------------

    def sidecar_resource(self, caller: WorkloadSpec) -> dict[str, Any] | None:
        """The Sidecar that applies to ``caller``: one selecting it, else its namespace's
        default, else the root namespace's (istio-system)."""
        labels = {"app": caller.service, "version": caller.version}
        candidates = self._resources("Sidecar")
        for r in candidates:
            sel = (r["spec"].get("workloadSelector") or {}).get("labels")
            if r["metadata"]["namespace"] == caller.namespace and sel and all(
                    labels.get(k) == v for k, v in sel.items()):
                return r
        for ns in (caller.namespace, "istio-system"):
            for r in candidates:
                if r["metadata"]["namespace"] == ns and not (r["spec"].get("workloadSelector") or {}):
                    return r
        return None

    def outbound_policy(self, caller: WorkloadSpec) -> str:
        sidecar = self.sidecar_resource(caller)
        mode = ((sidecar or {}).get("spec", {}).get("outboundTrafficPolicy") or {}).get("mode")
        mesh = (self.scenario.mesh_config or {}).get("outboundTrafficPolicy") or {}
        return str(mode or mesh.get("mode") or "ALLOW_ANY")

    def visible(self, caller: WorkloadSpec, ns: str, host: str) -> bool:
        sidecar = self.sidecar_resource(caller)
        egress = (sidecar or {}).get("spec", {}).get("egress")
        if not egress:
            return True
        hosts = [h for e in egress for h in e.get("hosts", [])]
        return _host_allowed(hosts, caller.namespace, ns, host)

    def outbound_services(self, caller: WorkloadSpec) -> list[tuple[str, str]]:
        return [(ns, svc) for ns, svc in super().outbound_services(caller)
                if self.visible(caller, ns, fqdn(svc, ns))]

    def service_entries(self, caller: WorkloadSpec) -> list[tuple[str, str, int, str]]:
        """(namespace, host, port, protocol) of every ServiceEntry host visible to ``caller``."""
        out = []
        for r in self._resources("ServiceEntry"):
            ns = r["metadata"]["namespace"]
            for host in r["spec"].get("hosts", []):
                if not self.visible(caller, ns, host):
                    continue
                for port in r["spec"].get("ports", []):
                    out.append((ns, host, int(port["number"]), str(port.get("protocol", "HTTP")).lower()))
        return out

    # -- clusters ------------------------------------------------------------------------------

    def _state(self, pod: PodSpec) -> Any:
        return self.scenario.proxy_states.get(pod.workload.name)

    def clusters_for(self, pod: PodSpec) -> list[ClusterView]:
        state = self._state(pod)
        if state is not None and not state.initialized:
            return []
        out = super().clusters_for(pod)
        for service in state.stale_endpoints if state else ():
            for cl in out:
                if cl.service == service and not cl.name.startswith("inbound"):
                    cl.hosts = [_previous(h) for h in cl.hosts]
        if pod.workload.gateway:
            return out
        for ns, host, port, _protocol in self.service_entries(pod.workload):
            edges = [(e, 1.0) for e in self.scenario.edges if e.source_workload == pod.workload.name
                     and e.source_namespace == pod.workload.namespace and e.destination_host == host]
            out.append(ClusterView(f"outbound|{port}||{host}", host, ns, port, "", [], edges))
        return out

    def _cluster_resource(self, cl: ClusterView) -> dict[str, Any]:
        if "." not in cl.service:  # a Kubernetes service
            return super()._cluster_resource(cl)
        return {"@type": CLUSTER, "name": cl.name, "type": "STRICT_DNS", "connect_timeout": "10s",
                "dns_lookup_family": "V4_ONLY", "respect_dns_ttl": True,
                "load_assignment": {"cluster_name": cl.name, "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": cl.service, "port_value": cl.port}}}}]}]},
                "circuit_breakers": {"thresholds": [{"max_connections": cfg.MAX, "max_pending_requests": cfg.MAX,
                                                     "max_requests": cfg.MAX, "max_retries": cfg.MAX,
                                                     "track_remaining": True}]},
                "metadata": {"filter_metadata": {"istio": {"services": [
                    {"host": cl.service, "name": cl.service, "namespace": cl.namespace}],
                    "config": f"/apis/networking.istio.io/v1/namespaces/{cl.namespace}/service-entry/"
                              f"{self._entry_name(cl.namespace, cl.service)}"}}}}

    def _entry_name(self, ns: str, host: str) -> str:
        for r in self._resources("ServiceEntry"):
            if r["metadata"]["namespace"] == ns and host in r["spec"].get("hosts", []):
                return str(r["metadata"]["name"])
        return host

    # -- routes --------------------------------------------------------------------------------

    def _decorate(self, rule: dict[str, Any], match: dict[str, Any], port: int,
                  route: dict[str, Any]) -> dict[str, Any]:
        uri = (match.get("uri") or {})
        if "prefix" in uri:
            route["match"]["prefix"] = uri["prefix"]
        elif "exact" in uri:
            route["match"] = {"path": uri["exact"], **{k: v for k, v in route["match"].items() if k != "prefix"}}
        fault = rule.get("fault")
        if fault:
            config: dict[str, Any] = {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}
            if "abort" in fault:
                pct = fault["abort"].get("percentage", {}).get("value", 100.0)
                config["abort"] = {"http_status": fault["abort"].get("httpStatus", 503),
                                   "percentage": {"numerator": int(pct * 10000), "denominator": "MILLION"}}
            if "delay" in fault:
                pct = fault["delay"].get("percentage", {}).get("value", 100.0)
                config["delay"] = {"fixed_delay": fault["delay"].get("fixedDelay", "1s"),
                                   "percentage": {"numerator": int(pct * 10000), "denominator": "MILLION"}}
            route["typed_per_filter_config"] = {"envoy.filters.http.fault": config}
        mirror = rule.get("mirror")
        if mirror:
            host = mirror["host"]
            ns = route["metadata"]["filter_metadata"]["istio"]["config"].split("/namespaces/")[1].split("/")[0]
            full = host if "." in host else fqdn(host, ns)
            pct = (rule.get("mirrorPercentage") or {}).get("value", 100.0)
            route["route"] = {**route["route"], "request_mirror_policies": [{
                "cluster": f"outbound|{port}|{mirror.get('subset', '')}|{full}",
                "runtime_fraction": {"default_value": {"numerator": int(pct * 10000), "denominator": "MILLION"}},
                "trace_sampled": False}]}
        return route

    def listeners_dump(self, pod: PodSpec) -> dict[str, Any]:
        dump = super().listeners_dump(pod)
        state = self._state(pod)
        if state is not None and not state.initialized:
            dump["dynamic_listeners"] = []
        return dump

    def routes_dump(self, pod: PodSpec) -> dict[str, Any]:
        state = self._state(pod)
        if state is not None and not state.initialized:
            return {"@type": ADMIN + "RoutesConfigDump"}
        if pod.workload.gateway:
            return self._gateway_routes(pod)
        dump = super().routes_dump(pod)
        caller = pod.workload
        registry_only = self.outbound_policy(caller) == "REGISTRY_ONLY"
        by_name = {c["route_config"]["name"]: c for c in dump["dynamic_route_configs"]}
        for _ns, host, port, protocol in self.service_entries(caller):
            if protocol not in ("http", "http2", "grpc"):
                continue
            config = by_name.get(str(port))
            if config is None:
                continue  # no outbound HTTP listener on that port: the SE would get one; rare here
            vhosts = config["route_config"]["virtual_hosts"]
            vhosts.insert(len(vhosts) - 1, {
                "name": f"{host}:{port}", "domains": [host, f"{host}:{port}"], "include_request_attempt_count": True,
                "routes": [{"name": "default", "match": {"prefix": "/"},
                            "route": {"cluster": f"outbound|{port}||{host}", "timeout": "0s",
                                      "retry_policy": cfg.ISTIO_DEFAULT_RETRY},
                            "decorator": {"operation": f"{host}:{port}/*"}}]})
        if registry_only:
            for config in dump["dynamic_route_configs"]:
                vhosts = config["route_config"]["virtual_hosts"]
                vhosts[-1] = {"name": "block_all", "domains": ["*"], "include_request_attempt_count": True,
                              "routes": [{"name": "block_all", "match": {"prefix": "/"},
                                          "direct_response": {"status": 502}}]}
        return dump

    def _gateway_routes(self, pod: PodSpec) -> dict[str, Any]:
        """The ingress gateway's ``http.<port>`` route config: one virtual host per host of each
        VirtualService bound (``gateways: [ns/name]``) to a Gateway that selects this gateway
        and lists the host."""
        version, updated = self._version(pod, "rds")
        gateways = self._resources("Gateway")
        vhosts: dict[str, list[dict[str, Any]]] = {}
        for vs in self._resources("VirtualService"):
            vs_ns = vs["metadata"]["namespace"]
            for ref in vs["spec"].get("gateways") or []:
                gw_ns, _, gw_name = ref.rpartition("/")
                gw_ns = gw_ns or vs_ns
                gw = next((g for g in gateways if g["metadata"]["name"] == gw_name
                           and g["metadata"]["namespace"] == gw_ns), None)
                if gw is None:
                    continue  # bound to a Gateway that does not exist: nothing reaches the proxy
                for server in gw["spec"].get("servers", []):
                    port = int(server["port"]["number"])
                    served = [h.split("/")[-1] for h in server.get("hosts", [])]
                    for host in vs["spec"].get("hosts", []):
                        if host not in served and "*" not in served:
                            continue
                        routes = []
                        for rule in vs["spec"].get("http", []):
                            d = rule["route"][0]["destination"]
                            dport = d.get("port", {}).get("number") or self._port_or(d["host"], vs_ns)
                            target = d["host"] if "." in d["host"] else fqdn(d["host"], vs_ns)
                            routes.append({"match": {"prefix": ((rule.get("match") or [{}])[0].get("uri") or {})
                                                     .get("prefix", "/")},
                                           "route": {"cluster": f"outbound|{dport}|{d.get('subset', '')}|{target}",
                                                     "timeout": rule.get("timeout", "0s"),
                                                     "retry_policy": cfg.ISTIO_DEFAULT_RETRY},
                                           "decorator": {"operation": f"{target}:{dport}/*"},
                                           "metadata": {"filter_metadata": {"istio": {"config":
                                               f"/apis/networking.istio.io/v1/namespaces/{vs_ns}/virtual-service/"
                                               f"{vs['metadata']['name']}"}}}})
                        vhosts.setdefault(f"http.{port}", []).append(
                            {"name": f"{host}:{port}", "domains": [host, f"{host}:*"], "routes": routes})
        return {"@type": ADMIN + "RoutesConfigDump", "dynamic_route_configs": [
            {"version_info": version, "last_updated": updated, "route_config": {
                "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": name,
                "virtual_hosts": hosts, "validate_clusters": False, "ignore_port_in_host_matching": True}}
            for name, hosts in sorted(vhosts.items())]}

    def _port_or(self, host: str, ns: str) -> int:
        """The port of the Service ``host`` names (short, in ``ns``, or ``name.namespace...``);
        80 for a host that is no Service of the mesh."""
        name, _, rest = host.partition(".")
        return self._ports.get((name, rest.split(".", 1)[0] if rest else ns), 80)

    def clusters_dump(self, pod: PodSpec, clusters: list[ClusterView]) -> dict[str, Any]:
        dump = super().clusters_dump(pod, clusters)
        state = self.scenario.proxy_states.get(pod.workload.name)
        if state is not None and not state.initialized:
            dump["dynamic_active_clusters"] = []  # not even Black/PassthroughCluster: nothing came
            dump.pop("version_info", None)
        warming = set(state.warming_clusters if state else ())
        if warming:
            active = dump["dynamic_active_clusters"]
            dump["dynamic_active_clusters"] = [c for c in active if c["cluster"]["name"] not in warming]
            dump["dynamic_warming_clusters"] = [
                {**c, "version_info": push_version(self.scenario, 60.0, replica_for_pod(self.scenario, pod))}
                for c in active if c["cluster"]["name"] in warming]
        return dump

    # -- versions ------------------------------------------------------------------------------

    def _version(self, pod: PodSpec, xds: str) -> tuple[str, str]:
        """The version istiod's syncz says this proxy accepted last (per replica counters)."""
        age = accepted_s_ago(self.scenario, pod, xds)
        version = push_version(self.scenario, age, replica_for_pod(self.scenario, pod))
        return version, _ts(self.scenario.time - timedelta(seconds=age))


def _previous(pod: PodSpec) -> PodSpec:
    """The pod the ReplicaSet before the current one ran in ``pod``'s place (deleted since)."""
    from dataclasses import replace as copy_with

    octets = pod.ip.split(".")
    old_rs = f"{pod.workload.name}-{pod.replicaset.rsplit('-', 1)[1][::-1]}"
    return copy_with(pod, name=f"{old_rs}-{pod.name.rsplit('-', 1)[1][::-1]}", replicaset=old_rs,
                     ip=f"10.244.{(int(octets[2]) + 7) % 250}.{octets[3]}")
