"""One pod's Envoy as ``istioctl proxy-config`` shows it (pure, no textual): listeners, routes,
clusters, endpoints, secrets and xDS state, as table rows plus the full text of a row.

The xDS state is the engine's verdict where it has one (MSH0105-0108 about this proxy: behind
the mesh, not updated while peers were, rejected, disconnected) so the dashboard and
``diagnose`` never disagree; otherwise what the proxy itself reports (version, last update,
rejected updates). What the control plane *sent* is not known from the proxy alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshobs.checks.base import Finding
from meshobs.collectors.envoy.names import istio_outbound
from meshobs.model import Cert, CertRole, Listener, MeshSnapshot, Proxy, UpstreamCluster, UpstreamHost, Workload, thaw

from .rows import TableRow
from .sources import age

XDS_CODES = {"MSH0105": "STALE", "MSH0106": "STALE", "MSH0107": "REJECTED", "MSH0108": "DISCONNECTED"}
TABS = ("listeners", "routes", "clusters", "endpoints", "secrets", "xds")
# (key, label, width) per tab; width 0 takes what the others leave.
COLUMNS = {
    "listeners": (("addr", "ADDRESS:PORT", 22), ("match", "MATCH", 24), ("dest", "DESTINATION", 0)),
    "routes": (("vhost", "VIRTUAL HOST", 0), ("match", "MATCH", 12), ("to", "DESTINATION (weight)", 28),
               ("timeout", "TIMEOUT", 8), ("retries", "RETRIES", 8)),
    "clusters": (("fqdn", "SERVICE FQDN", 0), ("port", "PORT", 6), ("subset", "SUBSET", 8), ("dir", "DIR", 5),
                 ("type", "TYPE", 13), ("hosts", "HEALTHY", 8), ("state", "STATE", 11)),
    "endpoints": (("endpoint", "ENDPOINT", 22), ("status", "STATUS", 10), ("outlier", "OUTLIER", 8),
                  ("cluster", "CLUSTER", 0)),
    "secrets": (("name", "RESOURCE", 10), ("role", "ROLE", 13), ("valid", "VALID", 9), ("expires", "EXPIRES", 10),
                ("serial", "SERIAL NUMBER", 0)),
    "xds": (("type", "TYPE", 6), ("state", "STATE", 14), ("updated", "UPDATED", 12), ("rejected", "REJECTED", 9),
            ("version", "VERSION", 0)),
}
XDS_ORDER = ("cds", "lds", "rds", "eds", "sds")
UNLIMITED = 4294967295  # Istio's "no limit": the uint32 maximum
SUFFIX = ".svc.cluster.local"  # cut in cells (the row's full text keeps it): names matter first


def proxy_findings(findings: Iterable[Finding], proxy_id: str) -> list[Finding]:
    """The engine's xDS findings about ``proxy_id``."""
    return [f for f in findings if f.code in XDS_CODES and f.fields.get("proxy") == proxy_id]


def _type_states(findings: list[Finding]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in findings:
        if f.code == "MSH0108":
            out["*"] = "DISCONNECTED"
        else:
            out[str(f.fields.get("xds_type", "?"))] = XDS_CODES[f.code]
    return out


def xds_words(proxy: Proxy, findings: list[Finding], at: datetime) -> str:
    """``RDS STALE``, ``CDS REJECTED``, ``DISCONNECTED`` or ``latest · 8m13s ago`` (or ``-``)."""
    states = _type_states(findings)
    if proxy.control_plane_connected is False or "*" in states:
        return "DISCONNECTED"
    bad = [f"{t.upper()} {s}" for t, s in sorted(states.items())]
    rejected = [t.upper() for t, n in sorted(proxy.update_rejected.items()) if n and int(n) > 0
                and states.get(t) != "REJECTED"]
    bad += [f"{t} REJECTED" for t in rejected]
    if bad:
        return ", ".join(bad)
    if not proxy.xds:
        return "-"
    times = [x.last_updated for x in proxy.xds if x.type in ("cds", "lds", "rds") and x.last_updated]
    return f"latest · {age(at, max(times))} ago" if times else "latest"


def _match(match: Any) -> str:
    m = thaw(match) or {}
    if not m:
        return "ALL"
    parts = []
    if "destination_port" in m:
        parts.append(f"port {m['destination_port']}")
    if m.get("server_names"):
        parts.append("sni " + ",".join(m["server_names"]))
    if m.get("transport_protocol"):
        parts.append(str(m["transport_protocol"]))
    if m.get("application_protocols"):
        parts.append(",".join(m["application_protocols"]))
    for pr in m.get("prefix_ranges") or []:
        parts.append(f"{pr.get('address_prefix')}/{pr.get('prefix_len', 32)}")
    return "; ".join(parts) or ", ".join(sorted(m))


def listener_rows(proxy: Proxy) -> list[TableRow]:
    """One row per filter chain (as istioctl), listeners by port."""
    rows = []
    for lst in sorted(proxy.listener_details, key=lambda x: (x.port or 0, x.name)):
        where = f"{lst.address}:{lst.port}" if lst.address is not None else lst.name
        chains = lst.chains or ()
        for i, chain in enumerate(chains or [None]):  # type: ignore[list-item]
            match = _match(chain.match) if chain else "-"
            dest = chain.destination if chain else "(no filter chain)"
            rows.append(TableRow(f"{lst.name}#{i}", (where if i == 0 else "", match, dest), (lst, i)))
    return rows


def listener_text(lst: Listener, index: int) -> list[str]:
    chain = lst.chains[index] if index < len(lst.chains) else None
    lines = [f"listener {lst.name} ({lst.state}, {lst.direction or 'no direction'}) "
             f"on {lst.address}:{lst.port}, {len(lst.chains)} filter chain(s)"]
    if chain is not None:
        lines.append(f"chain {index + 1}: match {_match(chain.match)} -> {chain.destination}")
    return lines


def _short_cluster(name: str) -> str:
    parsed = istio_outbound(name)  # outbound|8080|v2|cart-service.shop.svc.cluster.local
    if parsed is not None and parsed.service_host:
        host = parsed.service_host.removesuffix(SUFFIX)
        return f"{host}{'/' + parsed.subset if parsed.subset else ''}:{parsed.port or ''}"
    return name


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return "none" if value == 0 else f"{value:g}s"


def route_rows(proxy: Proxy) -> list[TableRow]:
    rows = []
    for i, r in enumerate(proxy.routes):
        match = thaw(r.match) or {}
        path = match.get("prefix", match.get("path", match.get("safe_regex", {}).get("regex", "")))
        matched = f"{path}{'*' if 'prefix' in match else ''}" + (" +hdr" if match.get("headers") else "")
        dests = ", ".join(f"{_short_cluster(d.cluster)} {d.weight}%" if len(r.destinations) > 1 else
                          _short_cluster(d.cluster) for d in r.destinations) or "-"
        retries = "-" if r.retry_attempts is None else str(r.retry_attempts)
        cells = (r.virtual_host.replace(SUFFIX, ""), matched or "-", dests, _seconds(r.timeout_s), retries)
        rows.append(TableRow(f"{r.route_config}|{r.virtual_host}|{i}", cells, r))
    return rows


def route_text(route: Any) -> list[str]:
    lines = [f"route config {route.route_config}, virtual host {route.virtual_host}"
             + (f", route {route.name}" if route.name else ""),
             "domains: " + ", ".join(route.domains),
             f"match: {thaw(route.match)}"]
    for d in route.destinations:
        lines.append(f"-> {d.cluster} weight {d.weight}")
    lines.append(f"timeout {_seconds(route.timeout_s)}; retries "
                 + ("-" if route.retry_attempts is None else
                    f"{route.retry_attempts} on {route.retry_on or '-'}, per try {_seconds(route.per_try_timeout_s)}"))
    return lines


def cluster_state(c: UpstreamCluster) -> str:
    """What is wrong with a cluster right now, in a word or two ("-" when nothing)."""
    open_breakers = [k for k, v in c.circuit_breaker_open.items() if v and int(v) > 0]
    if c.outlier_ejections_active:
        return f"EJECTED {c.outlier_ejections_active}"
    if open_breakers:
        return "CB OPEN"
    if c.warming:
        return "WARMING"
    if c.overflows:
        return f"overflow {c.overflows}"
    return "-"


def cluster_rows(proxy: Proxy) -> list[TableRow]:
    rows = []
    for c in sorted(proxy.clusters, key=lambda c: (c.direction != "outbound", c.service_host or c.name, c.port or 0,
                                                   c.subset or "")):
        total = c.membership_total if c.membership_total is not None else len(c.hosts)
        healthy = c.membership_healthy if c.membership_healthy is not None else c.healthy_hosts
        host = (c.service_host or c.name).removesuffix(SUFFIX)
        rows.append(TableRow(c.name, (host, str(c.port or "-"), c.subset or "-",
                                      c.direction[:3], c.discovery or "-", f"{healthy}/{total}" if total else "-",
                                      cluster_state(c)), c))
    return rows


def cluster_text(c: UpstreamCluster) -> list[str]:
    lines = [f"{c.name} ({c.discovery or 'type unknown'}, {c.direction}"
             + (f", from {c.config_source}" if c.config_source else "") + ")"]
    limits = ", ".join(f"{k.removeprefix('max_')} {'unlimited' if int(v) >= UNLIMITED else v}"
                       for k, v in c.thresholds.items())
    opened = [k for k, v in c.circuit_breaker_open.items() if v and int(v) > 0]
    lines.append("circuit breakers: " + (limits or "Envoy defaults")
                 + (f"; OPEN: {', '.join(opened)}" if opened else "")
                 + (f"; {c.overflows} request(s) refused by them" if c.overflows else ""))
    od = thaw(c.outlier_detection) or {}
    settings = ", ".join(f"{k} {v}" for k, v in od.items() if k.startswith(("consecutive", "interval", "base",
                                                                                 "max_ejection")))
    lines.append("outlier detection: " + (settings or ("configured" if od else "off"))
                 + f"; ejected now {c.outlier_ejections_active}, ever {c.outlier_ejections_total}")
    lines.append(f"TLS {c.tls or '-'}; version {c.version or '-'}" + ("; WARMING" if c.warming else ""))
    return lines


def _endpoint_status(h: UpstreamHost) -> str:
    if h.eds_health and h.eds_health != "HEALTHY":
        return h.eds_health
    return "HEALTHY" if h.healthy else "UNHEALTHY"


def endpoint_rows(proxy: Proxy) -> list[TableRow]:
    rows = []
    for c in proxy.clusters:
        for h in c.hosts:
            rows.append(TableRow(f"{c.name}|{h.address}",
                                 (h.address, _endpoint_status(h), "FAILED" if h.failed_outlier_check else "OK",
                                  c.name), (c, h)))
    # Unhealthy first: that is what one opens this tab for.
    return sorted(rows, key=lambda r: (r.values[1] == "HEALTHY" and r.values[2] == "OK", r.values[3], r.values[0]))


def endpoint_text(c: UpstreamCluster, h: UpstreamHost) -> list[str]:
    return [f"{h.address} in {c.name}",
            f"status {_endpoint_status(h)} (EDS {h.eds_health or '-'}); outlier check "
            f"{'FAILED: ejected' if h.failed_outlier_check else 'ok'}; active health check "
            f"{'FAILED' if h.failed_active_health_check else 'ok'}",
            f"requests {h.rq_total}, errors {h.rq_error}, connect failures {h.cx_connect_fail} (since start)"]


def _validity(c: Cert, at: datetime) -> str:
    if at < c.not_before:
        return "NOT YET"
    return "EXPIRED" if c.remaining_s(at) < 0 else "yes"


def secret_rows(certs: list[Cert], at: datetime) -> list[TableRow]:
    order = {"workload": 0, "intermediate": 1, "root": 2}
    rows = []
    for c in sorted(certs, key=lambda c: (order.get(c.role.value, 3), c.not_after)):
        left = c.remaining_s(at)
        expires = "EXPIRED" if left < 0 else (f"in {left / 3600:.0f}h" if left < 172800 else f"in {left / 86400:.0f}d")
        rows.append(TableRow(f"{c.secret_name}|{c.serial}", (c.secret_name or "-", c.role.value, _validity(c, at),
                                                             expires, c.serial), c))
    return rows


def secret_text(c: Cert) -> list[str]:
    return [f"{c.role.value} certificate in secret {c.secret_name or '-'}, serial {c.serial}",
            f"subject {c.subject or '-'}; issuer {c.issuer or '-'}",
            f"valid {c.not_before:%Y-%m-%d %H:%M} to {c.not_after:%Y-%m-%d %H:%M} UTC",
            "SANs: " + (", ".join(c.sans) or "none")]


def xds_rows(proxy: Proxy, findings: list[Finding], at: datetime) -> list[TableRow]:
    """Per xDS type: the engine's verdict or "latest", when it was last updated, rejected updates."""
    states = _type_states(findings)
    held = {x.type: x for x in proxy.xds}
    rows = []
    for t in [*XDS_ORDER, *sorted(set(held) - set(XDS_ORDER))]:
        x = held.get(t)
        rejected = int(proxy.update_rejected.get(t, 0) or 0)
        if x is None and not rejected:
            continue
        state = states.get(t) or ("REJECTED" if rejected else "latest" if t in ("cds", "lds", "rds") else "-")
        updated = f"{age(at, x.last_updated)} ago" if x is not None and x.last_updated else "-"
        rows.append(TableRow(t, (t.upper(), state, updated, str(rejected) if t in proxy.update_rejected else "-",
                                 x.version or "-" if x is not None else "-"), x))
    return rows


def xds_notes(proxy: Proxy, findings: list[Finding]) -> list[str]:
    connected = {True: "connected", False: "DISCONNECTED", None: "not reported"}[proxy.control_plane_connected]
    lines = [f"control plane: {connected}; warming clusters: {proxy.warming_clusters}"]
    for f in findings:
        lines.append(f"{f.code}: {f.message}")
    lines.append("versions and times are what this proxy reports (it acked them); what the control plane "
                 "sent is not known from the proxy alone (istioctl proxy-status compares both)")
    return lines


@dataclass(frozen=True)
class ProxyView:
    """Everything the proxy screen shows about one pod's Envoy."""

    proxy: Proxy
    certs: list[Cert]
    findings: list[Finding]
    tabs: dict[str, list[TableRow]]
    summary: str
    origin: str  # "the snapshot" or "fetched now"


def proxy_view(proxy: Proxy, certs: list[Cert], findings: list[Finding], at: datetime,
               origin: str = "the snapshot") -> ProxyView:
    tabs = {"listeners": listener_rows(proxy), "routes": route_rows(proxy), "clusters": cluster_rows(proxy),
            "endpoints": endpoint_rows(proxy), "secrets": secret_rows(certs, at),
            "xds": xds_rows(proxy, findings, at)}
    ready = "-" if proxy.ready is None else ("ready" if proxy.ready else "NOT READY")
    summary = (f"{proxy.id}  {ready}  {proxy.state or '-'}  Envoy {proxy.envoy_version or '-'}  "
               f"up {'-' if proxy.uptime_s is None else _uptime(proxy.uptime_s)}  "
               f"xDS {xds_words(proxy, findings, at)}")
    return ProxyView(proxy, certs, findings, tabs, summary, origin)


def _uptime(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 86400}d{s % 86400 // 3600}h" if s >= 86400 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def row_text(tab: str, row: TableRow) -> list[str]:
    """The full text of a row (shown under the table, wrapped)."""
    item: Any = row.item
    if tab == "listeners":
        return listener_text(item[0], item[1])
    if tab == "routes":
        return route_text(item)
    if tab == "clusters":
        return cluster_text(item)
    if tab == "endpoints":
        return endpoint_text(item[0], item[1])
    if tab == "secrets":
        return secret_text(item)
    return []


# -- the list of proxies (a service's Proxies tab, and :proxies for the whole mesh) ----------------

# The pod's name starts with its workload's: no workload column, so the name gets the width.
PROXY_LIST_COLUMNS = (("pod", "POD", 0), ("ready", "READY", 6), ("xds", "XDS", 22), ("cert", "CERT", 9))


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod whose Envoy one can open: ``proxy_id`` is None when the snapshot has no data for it."""

    namespace: str
    pod: str
    proxy_id: str | None
    workload: str = ""


def findings_by_proxy(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if f.code in XDS_CODES and f.fields.get("proxy"):
            out.setdefault(str(f.fields["proxy"]), []).append(f)
    return out


def cert_expiry(snapshot: MeshSnapshot, proxy_id: str) -> str:
    certs = [c for c in snapshot.certs_of(proxy_id) if c.role is CertRole.WORKLOAD]
    if not certs:
        return "-"
    left = min(c.remaining_s(snapshot.time) for c in certs)
    return "EXPIRED" if left < 0 else (f"in {left / 3600:.0f}h" if left < 172800 else f"in {left / 86400:.0f}d")


def proxy_list_rows(snapshot: MeshSnapshot, by_proxy: dict[str, list[Finding]],
                    workloads: Iterable[Workload] | None = None) -> list[TableRow]:
    """Every proxy (of ``workloads``, or of the mesh), then sidecar pods the snapshot has no
    Envoy data for (opening one fetches it). Proxies with an xDS problem first."""
    wanted = list(workloads) if workloads is not None else None
    proxies = ([p for w in wanted for p in snapshot.proxies_of(w.ref)] if wanted is not None
               else list(snapshot.proxies))
    rows = []
    seen = set()
    for p in proxies:
        seen.add((p.namespace, p.pod))
        ready = "-" if p.ready is None else ("yes" if p.ready else "NO")
        words = xds_words(p, by_proxy.get(p.id, []), snapshot.time)
        rows.append(TableRow(p.id, (p.pod, ready, words, cert_expiry(snapshot, p.id)),
                             PodRef(p.namespace, p.pod, p.id, p.workload.name if p.workload else "")))
    pods = ([pod for w in wanted for pod in snapshot.pods_of(w.ref)] if wanted is not None else list(snapshot.pods))
    for pod in pods:
        if pod.has_sidecar and (pod.namespace, pod.name) not in seen:
            rows.append(TableRow(f"{pod.name}.{pod.namespace}",
                                 (pod.name, "yes" if pod.ready else "NO", "not collected: enter", "-"),
                                 PodRef(pod.namespace, pod.name, None, pod.workload.name if pod.workload else "")))
    if wanted is not None:
        for w in wanted:
            if not snapshot.proxies_of(w.ref) and not snapshot.pods_of(w.ref):
                rows.append(TableRow(f"workload:{w.ref}", (f"({w.name}: no pod)", "-",
                                                          "no proxy" if w.meshed is False else "-", "-"), None))
    problem = ("STALE", "REJECTED", "DISCONNECTED", "not collected")
    return sorted(rows, key=lambda r: (not any(w in r.values[2] for w in problem), r.values[0]))
