"""Each proxy's Envoy admin API (Istio 1.24 sidecars): /ready, /server_info, /clusters, /stats,
/config_dump and /certs, derived from the scenario's config, traffic and proxy overrides.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict, defaultdict
from datetime import datetime, timedelta
from typing import Any

from meshobs.raw import Payload, RawSource

from . import envoy_config as cfg
from .certs import IssuedCert, root_ca, workload_cert
from .render_kubernetes import PodSpec, pods
from .scenario import Scenario

ENVOY_VERSION = "6c72b2179f5a58988b920a55b0be8346de3f7b35/1.32.3/Clean/RELEASE/BoringSSL"
# A fault started this long before the scenario time (error counters grow only since then).
FAULT_AGE_S = 1800.0
ADMIN = "type.googleapis.com/envoy.admin.v3."


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _dump(value: Any) -> str:
    return json.dumps(value, indent=1)


class _Counters:
    """Cumulative per-cluster counters of one proxy, built from the traffic it carried."""

    def __init__(self, uptime_s: float) -> None:
        self.uptime_s = uptime_s
        self.values: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, cluster: str, rps: float, responses: tuple[tuple[str, str, float], ...],
            duration_s: float | None = None) -> None:
        """Count ``rps`` with ``responses`` for ``duration_s`` (default: the uptime, and a fault's
        errors only since ``FAULT_AGE_S``)."""
        c = self.values[cluster]
        for code, flags, fraction in responses:
            bad = code.startswith("5") or code == "0"
            span = duration_s if duration_s is not None else (
                min(self.uptime_s, FAULT_AGE_S) if bad else self.uptime_s)
            n = int(rps * fraction * span)
            local = any(f in flags for f in ("UH", "UO", "UF", "NR", "NC"))  # never reached a host
            if "UH" in flags:
                c["upstream_cx_none_healthy"] += n
            if "UO" in flags:
                c["upstream_rq_pending_overflow"] += n
            if "UF" in flags:
                c["upstream_cx_connect_fail"] += n
            if "UC" in flags:
                c["upstream_cx_destroy_remote_with_active_rq"] += n
            if "UT" in flags:
                c["upstream_rq_timeout"] += n
            if local:
                continue
            c["upstream_rq_total"] += n
            c[f"upstream_rq_{code[0]}xx"] += n
            c[f"upstream_rq_{code}"] += n
            c["upstream_rq_completed"] += n
        c["upstream_cx_total"] += max(1, int(rps * (self.uptime_s if duration_s is None else duration_s) / 100))


def render_proxies(scenario: Scenario) -> list[RawSource]:
    """One ``envoy:<ns>/<pod>`` RawSource per pod, in pod order."""
    proxies = LazyProxies(scenario, cache=0)
    return [proxies.render(i) for i in proxies.indexes()]


class LazyProxies:
    """The proxies of ``scenario``, each rendered when first asked for and kept in a small LRU.

    What the served demo holds instead of every proxy's answers: rendering all 7,400 sidecars
    of generated-5000 takes minutes, while a question reads a neighbourhood's few dozen.
    A proxy renders the same whenever it is asked for (nothing depends on render order), so
    the answers are those of :func:`render_proxies`.
    """

    def __init__(self, scenario: Scenario, cache: int = 256) -> None:
        self.scenario = scenario
        self.pods = pods(scenario)
        self._root, self._root_key = root_ca("cluster.local", scenario.time - timedelta(days=200))
        if scenario.rich:
            from .envoy_rich import RichMeshView

            self._mesh: cfg.MeshView = RichMeshView(scenario, self.pods)
        else:
            self._mesh = cfg.MeshView(scenario, self.pods)
        # Pods without a sidecar (ambient, not injected) have no Envoy admin API to read.
        self._by_pod = {(p.namespace, p.name): i for i, p in enumerate(self.pods) if p.workload.sidecar}
        self._cache: OrderedDict[int, RawSource] = OrderedDict()
        self._size = cache
        self._lock = threading.Lock()

    def indexes(self) -> list[int]:
        """The pod index of every proxy, in pod order."""
        return list(self._by_pod.values())

    def targets(self) -> list[dict[str, str]]:
        """namespace, pod, workload and admin URL of every proxy (a RawSource's ``meta``), in pod order."""
        return [{"namespace": p.namespace, "pod": p.name, "workload": p.workload.name,
                 "url": f"http://{p.ip}:15000"} for p in (self.pods[i] for i in self.indexes())]

    def render(self, index: int) -> RawSource:
        """The proxy of pod ``index`` (of ``pods(scenario)``), rendered now."""
        return _proxy(self.scenario, self._mesh, self.pods[index], index, self._root, self._root_key)

    def get(self, namespace: str, pod: str) -> RawSource | None:
        """The proxy of ``namespace/pod`` (None: no such pod, or it has no sidecar)."""
        index = self._by_pod.get((namespace, pod))
        if index is None:
            return None
        # One render at a time: they are CPU bound (the GIL), and a proxy asked for by several
        # requests at once is rendered once.
        with self._lock:
            raw = self._cache.get(index)
            if raw is not None:
                self._cache.move_to_end(index)
                return raw
            raw = self.render(index)
            if self._size > 0:
                self._cache[index] = raw
                if len(self._cache) > self._size:
                    self._cache.popitem(last=False)
            return raw


def _proxy(scenario: Scenario, mesh: cfg.MeshView, pod: PodSpec, index: int, root: IssuedCert,
           root_key: Any) -> RawSource:
    w = pod.workload
    uptime = (scenario.time - pod.started).total_seconds()
    url = f"http://{pod.ip}:15000"
    raw = RawSource(name=f"envoy:{pod.namespace}/{pod.name}", kind="envoy",
                    meta={"namespace": pod.namespace, "pod": pod.name, "workload": w.name, "url": url})
    clusters = mesh.clusters_for(pod)
    counters = _Counters(uptime)
    ejected = scenario.ejected.get(w.name, set())
    if scenario.rich:
        from .envoy_counters import count_traffic

        count_traffic(scenario, clusters, pod, counters)
    else:
        for cl in clusters:
            for edge, share in cl.edges:
                counters.add(cl.name, edge.rps * share / w.replicas, edge.responses)
        for edge in mesh.edges_to(w.namespace, w.name):  # the inbound side: what this pod served
            if not w.gateway:
                served = tuple(r for r in edge.responses if not any(f in r[1] for f in ("UH", "UF", "UO", "UC")))
                counters.add(f"inbound|{w.port}||", edge.rps / w.replicas, served)

    spec = scenario.certs.get(w.name)
    issued_h_ago = spec.issued_h_ago if spec else 0.5 + (index * 3.7) % 11
    lifetime_h = spec.lifetime_h if spec else 24.0
    spiffe = f"spiffe://cluster.local/ns/{pod.namespace}/sa/{w.service_account}"
    leaf = workload_cert(spiffe, scenario.time - timedelta(hours=issued_h_ago),
                         timedelta(hours=lifetime_h), root, root_key, f"{pod.namespace}/{pod.name}")
    cert_updated = scenario.time - timedelta(hours=issued_h_ago)

    server_info = {
        "version": ENVOY_VERSION, "state": "LIVE", "hot_restart_version": "disabled",
        "command_line_options": {
            "base_id": "0", "use_dynamic_base_id": False, "concurrency": 2,
            "config_path": "etc/istio/proxy/envoy-rev.json", "config_yaml": "", "allow_unknown_static_fields": False,
            "admin_address_path": "", "local_address_ip_version": "v4", "log_level": "warning",
            "component_log_level": "misc:error", "log_format": "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t",
            "restart_epoch": 0, "service_cluster": "", "service_node": "", "service_zone": "",
            "drain_time": "45s", "drain_strategy": "Immediate", "parent_shutdown_time": "60s",
            "mode": "Serve", "disable_hot_restart": True, "enable_mutex_tracing": False,
            "file_flush_interval": "10s"},
        "node": mesh.node(pod),
        "uptime_current_epoch": f"{int(uptime)}s", "uptime_all_epochs": f"{int(uptime)}s",
    }
    stats = _stats(clusters, counters, ejected, uptime)
    if scenario.rich:
        from .envoy_counters import extend_stats

        stats = extend_stats(scenario, mesh, pod, stats, counters)
    dump = {"configs": [
        {"@type": ADMIN + "BootstrapConfigDump", "bootstrap": mesh.bootstrap(pod),
         "last_updated": _ts(pod.started)},
        mesh.clusters_dump(pod, clusters),
        mesh.listeners_dump(pod),
        {"@type": ADMIN + "ScopedRoutesConfigDump"},
        mesh.routes_dump(pod),
        {"@type": ADMIN + "SecretsConfigDump", "dynamic_active_secrets": [
            {"name": "default", "version_info": _ts(cert_updated), "last_updated": _ts(cert_updated),
             "secret": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                        "name": "default", "tls_certificate": {
                            "certificate_chain": {"inline_bytes": base64.b64encode(
                                (leaf.pem + root.pem).encode()).decode()},
                            "private_key": {"inline_bytes": "W3JlZGFjdGVkXQ=="}}}},
            {"name": "ROOTCA", "version_info": _ts(pod.started), "last_updated": _ts(pod.started),
             "secret": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                        "name": "ROOTCA", "validation_context": {"trusted_ca": {
                            "inline_bytes": base64.b64encode(root.pem.encode()).decode()}}}}]},
    ]}
    certs = {"certificates": [{"ca_cert": [_cert_info(root, scenario.time)],
                               "cert_chain": [_cert_info(leaf, scenario.time)]}]}
    when = _ts(scenario.time)
    for key, path, body in (
            ("ready", "/ready", "LIVE\n"), ("server_info", "/server_info", _dump(server_info)),
            ("clusters", "/clusters?format=json", _dump(mesh.clusters_status(pod, clusters, counters, ejected))),
            ("stats", "/stats?format=json", _dump(stats)), ("config_dump", "/config_dump", _dump(dump)),
            ("certs", "/certs", _dump(certs))):
        raw.add(Payload(key=key, body=body, status=200, url=url + path, fetched_at=when,
                        meta={"content_type": "text/plain" if key == "ready" else "application/json"}))
    if scenario.rich:
        from .envoy_counters import apply_readiness

        apply_readiness(scenario, pod, raw)
    return raw


def _cert_info(cert: IssuedCert, at: datetime) -> dict[str, Any]:
    c = cert.cert
    sans: list[dict[str, str]] = []
    try:
        from cryptography import x509
        ext = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [{"uri": u} for u in ext.get_values_for_type(x509.UniformResourceIdentifier)]
    except Exception:
        sans = []
    days = max(0, int((c.not_valid_after_utc - at).total_seconds() // 86400))
    return {"path": "<inline>", "serial_number": cert.serial_hex, "subject_alt_names": sans,
            "days_until_expiration": str(days),
            "valid_from": c.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expiration_time": c.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _stats(clusters: list[cfg.ClusterView], counters: _Counters, ejected: set[str],
           uptime: float) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for cl in clusters:
        prefix = f"cluster.{cl.name}."
        n_hosts = len(cl.hosts)
        is_ejected = cl.service in ejected and n_hosts > 0
        values = dict(counters.values.get(cl.name, {}))
        values.update({
            "membership_total": n_hosts, "membership_healthy": 0 if is_ejected else n_hosts,
            "membership_degraded": 0, "membership_excluded": 0,
            "outlier_detection.ejections_active": n_hosts if is_ejected else 0,
            "outlier_detection.ejections_enforced_total": 37 if is_ejected else 0,
            "outlier_detection.ejections_enforced_consecutive_5xx": 37 if is_ejected else 0,
            "outlier_detection.ejections_detected_consecutive_5xx": 41 if is_ejected else 0,
            "outlier_detection.ejections_overflow": 0,
            "circuit_breakers.default.cx_open": 0, "circuit_breakers.default.rq_open": 0,
            "circuit_breakers.default.rq_pending_open": 0, "circuit_breakers.default.rq_retry_open": 0,
            "upstream_cx_active": min(n_hosts * 2, values.get("upstream_cx_total", 0)),
        })
        for name in ("upstream_rq_pending_overflow", "upstream_cx_none_healthy", "upstream_cx_connect_fail",
                     "upstream_rq_timeout", "upstream_rq_retry", "upstream_rq_retry_limit_exceeded",
                     "upstream_rq_total", "upstream_rq_5xx", "upstream_cx_overflow"):
            values.setdefault(name, 0)
        out.extend({"name": prefix + k, "value": v} for k, v in sorted(values.items()))
    out.extend({"name": k, "value": v} for k, v in (
        ("cluster_manager.active_clusters", len(clusters) + 5), ("cluster_manager.warming_clusters", 0),
        ("cluster_manager.cds.update_attempt", 412), ("cluster_manager.cds.update_success", 411),
        ("cluster_manager.cds.update_rejected", 0), ("cluster_manager.cds.update_failure", 1),
        ("listener_manager.lds.update_attempt", 410), ("listener_manager.lds.update_success", 409),
        ("listener_manager.lds.update_rejected", 0), ("listener_manager.total_listeners_warming", 0),
        ("listener_manager.total_listeners_active", 3),
        ("control_plane.connected_state", 1), ("control_plane.pending_requests", 0),
        ("server.live", 1), ("server.state", 0), ("server.uptime", int(uptime)),
        ("server.version", 1337435)))
    return {"stats": out}
