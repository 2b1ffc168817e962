"""Pure readers for Istio VirtualService, DestinationRule and PeerAuthentication specs.

They take :class:`meshobs.model.ConfigResource` objects (any layer) and answer the questions
the configuration and identity checks ask: which hosts, which subsets, which weighted
destinations, which retry/timeout policy, which TLS mode a client uses, and which mTLS mode a
workload accepts after Istio's PeerAuthentication scope resolution
(workload selector -> namespace -> mesh root namespace, with port-level overrides).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshobs.durations import parse_duration
from meshobs.model import ConfigResource, Layer, MeshSnapshot, Service

ROOT_NAMESPACE = "istio-system"  # Istio's default meshConfig.rootNamespace
DOMAIN = "cluster.local"
VIRTUAL_SERVICE = "VirtualService"
DESTINATION_RULE = "DestinationRule"
PEER_AUTHENTICATION = "PeerAuthentication"
GATEWAY = "Gateway"
SERVICE_ENTRY = "ServiceEntry"
MESH_GATEWAY = "mesh"  # the reserved gateway name for "every sidecar"


# -- hosts -----------------------------------------------------------------------------------
def fqdn(host: str, namespace: str, domain: str = DOMAIN) -> str:
    """Istio's short-name expansion: ``reviews`` in ``bookinfo`` -> ``reviews.bookinfo.svc.cluster.local``."""
    host = host.strip().lower()
    if host.startswith("*") or host.endswith("." + domain) or host == domain:
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.svc.{domain}"
    if len(parts) == 2:
        return f"{host}.svc.{domain}"
    if parts[-1] == "svc":
        return f"{host}.{domain}"
    return host  # an external name (www.googleapis.com)


def host_matches(pattern: str, host: str) -> bool:
    """Does a (possibly wildcard) host pattern cover ``host``? Both as FQDNs."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


def service_hosts(service: Service) -> set[str]:
    """All FQDNs a service answers to."""
    hosts = {service.fqdn}
    hosts.update(fqdn(h, service.namespace) for h in service.hosts)
    return hosts


def pick_resources(snapshot: MeshSnapshot, kind: str) -> list[ConfigResource]:
    """Resources of ``kind`` as the cluster holds them: the live layer, falling back to the
    intended layer (manifests or Git) for objects the API did not return."""
    chosen: dict[tuple[str, str], ConfigResource] = {}
    for layer in (Layer.LIVE, Layer.INTENDED):
        for r in snapshot.config_of(kind, layer):
            chosen.setdefault((r.namespace, r.name), r)
    return sorted(chosen.values(), key=lambda r: (r.namespace, r.name))


# -- VirtualService --------------------------------------------------------------------------
@dataclass(frozen=True)
class Destination:
    host: str  # FQDN
    subset: str | None
    port: int | None
    weight: int


@dataclass(frozen=True)
class Retries:
    attempts: int
    per_try_timeout_s: float | None
    retry_on: str | None


@dataclass(frozen=True)
class VsRoute:
    """One ``http`` route of a VirtualService."""

    index: int
    name: str | None
    has_match: bool
    destinations: tuple[Destination, ...]
    timeout_s: float | None  # None when the route does not set one
    retries: Retries | None  # None when the route does not set them

    def weights(self) -> dict[str, int]:
        """Weight per subset (``""`` for no subset), merging repeated subsets."""
        out: dict[str, int] = {}
        for d in self.destinations:
            out[d.subset or ""] = out.get(d.subset or "", 0) + d.weight
        return out


def vs_hosts(vs: ConfigResource) -> list[str]:
    return [fqdn(str(h), vs.namespace) for h in vs.spec.get("hosts") or ()]


def applies_to_sidecars(vs: ConfigResource) -> bool:
    """A VirtualService binds to sidecars when it names no gateways or names ``mesh``."""
    gateways = vs.spec.get("gateways") or ()
    return not gateways or "mesh" in gateways


def _seconds(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_duration(value)
    except ValueError:
        return None


def http_routes(vs: ConfigResource) -> list[VsRoute]:
    """The VirtualService's http routes with resolved hosts and weights.

    A single destination without a weight receives all traffic (100); among several, a missing
    weight is 0, as in Istio.
    """
    out: list[VsRoute] = []
    for i, http in enumerate(vs.spec.get("http") or ()):
        if not isinstance(http, Mapping):
            continue
        route = http.get("route") or ()
        dests = []
        for r in route:
            d = r.get("destination") or {}
            port = (d.get("port") or {}).get("number")
            weight = r.get("weight")
            weight = int(weight) if weight is not None else (100 if len(route) == 1 else 0)
            dests.append(Destination(fqdn(str(d.get("host", "")), vs.namespace), d.get("subset") or None,
                                     int(port) if port is not None else None, weight))
        retries = None
        if isinstance(http.get("retries"), Mapping):
            r = http["retries"]
            retries = Retries(int(r.get("attempts") or 0), _seconds(r.get("perTryTimeout")), r.get("retryOn"))
        out.append(VsRoute(i, http.get("name"), bool(http.get("match")), tuple(dests),
                           _seconds(http.get("timeout")), retries))
    return out


@dataclass(frozen=True)
class DestinationRef:
    """A place a VirtualService sends requests to, with the field path of its ``destination``
    (``spec.http[0].route[1].destination``) so a finding can name its line."""

    host: str  # FQDN
    subset: str | None
    port: int | None
    path: str
    mirror: bool = False  # a mirror's copy, never the caller's answer


def _destination(d: Any, namespace: str, path: str, mirror: bool = False) -> DestinationRef | None:
    if not isinstance(d, Mapping) or not d.get("host"):
        return None
    port = (d.get("port") or {}).get("number") if isinstance(d.get("port"), Mapping) else None
    return DestinationRef(fqdn(str(d["host"]), namespace), str(d["subset"]) if d.get("subset") else None,
                          int(str(port)) if str(port or "").isdigit() else None, path, mirror)


def vs_destinations(vs: ConfigResource) -> list[DestinationRef]:
    """Every destination of a VirtualService: http, tcp and tls routes, and http mirrors."""
    out: list[DestinationRef | None] = []
    for section in ("http", "tcp", "tls"):
        for i, rule in enumerate(vs.spec.get(section) or ()):
            if not isinstance(rule, Mapping):
                continue
            for j, r in enumerate(rule.get("route") or ()):
                if isinstance(r, Mapping):
                    out.append(_destination(r.get("destination"), vs.namespace,
                                            f"spec.{section}[{i}].route[{j}].destination"))
            if section == "http":
                out.append(_destination(rule.get("mirror"), vs.namespace, f"spec.http[{i}].mirror", True))
                for k, m in enumerate(rule.get("mirrors") or ()):
                    if isinstance(m, Mapping):
                        out.append(_destination(m.get("destination"), vs.namespace,
                                                f"spec.http[{i}].mirrors[{k}].destination", True))
    return [d for d in out if d is not None]


def vs_gateway_refs(vs: ConfigResource) -> list[tuple[str, str]]:
    """(gateway as written, field path) for the VirtualService's gateways and those its route
    matches name; ``mesh`` (the sidecars) included."""
    out = [(str(g), f"spec.gateways[{i}]") for i, g in enumerate(vs.spec.get("gateways") or ())]
    for section in ("http", "tcp", "tls"):
        for i, rule in enumerate(vs.spec.get(section) or ()):
            for j, match in enumerate((rule.get("match") or ()) if isinstance(rule, Mapping) else ()):
                for k, g in enumerate((match.get("gateways") or ()) if isinstance(match, Mapping) else ()):
                    out.append((str(g), f"spec.{section}[{i}].match[{j}].gateways[{k}]"))
    return out


def gateway_key(ref: str, namespace: str) -> tuple[str, str]:
    """(namespace, name) of a gateway reference: ``ns/name``, ``name`` (in ``namespace``), or
    the legacy ``name.ns.svc.cluster.local``."""
    if "/" in ref:
        ns, name = ref.split("/", 1)
        return ns, name
    parts = ref.split(".")
    return (parts[1], parts[0]) if len(parts) > 1 else (namespace, ref)


def exported_to(resource: ConfigResource, namespace: str) -> bool:
    """Is the resource visible from ``namespace``? ``exportTo``: ``*`` (all, the default),
    ``.`` (its own namespace), ``~`` (none) or namespace names."""
    export = [str(e) for e in resource.spec.get("exportTo") or ()]
    if not export:
        return True
    return "*" in export or namespace in export or ("." in export and namespace == resource.namespace)


def virtual_services_for(snapshot: MeshSnapshot, service: Service) -> list[ConfigResource]:
    """Sidecar VirtualServices whose hosts cover the service."""
    hosts = service_hosts(service)
    return [vs for vs in pick_resources(snapshot, VIRTUAL_SERVICE)
            if applies_to_sidecars(vs) and any(host_matches(h, x) for h in vs_hosts(vs) for x in hosts)]


# -- DestinationRule -------------------------------------------------------------------------
def dr_host(dr: ConfigResource) -> str:
    return fqdn(str(dr.spec.get("host", "")), dr.namespace)


def dr_subsets(dr: ConfigResource) -> dict[str, dict[str, str]]:
    """Subset name -> the pod labels it selects."""
    return {str(s.get("name")): {str(k): str(v) for k, v in (s.get("labels") or {}).items()}
            for s in dr.spec.get("subsets") or () if s.get("name")}


def dr_tls_mode(dr: ConfigResource, port: int | None = None, subset: str | None = None) -> str | None:
    """The client TLS mode a DestinationRule sets (``DISABLE``, ``SIMPLE``, ``MUTUAL``,
    ``ISTIO_MUTUAL``), honouring subset and port-level overrides; None when unset."""
    policies: list[Mapping[str, Any]] = [dr.spec.get("trafficPolicy") or {}]
    if subset:
        for s in dr.spec.get("subsets") or ():
            if s.get("name") == subset and s.get("trafficPolicy"):
                policies.append(s["trafficPolicy"])
    mode: str | None = None
    for policy in policies:
        if (policy.get("tls") or {}).get("mode"):
            mode = str(policy["tls"]["mode"]).upper()
        for pls in policy.get("portLevelSettings") or ():
            on_port = port is not None and (pls.get("port") or {}).get("number") == port
            if on_port and (pls.get("tls") or {}).get("mode"):
                mode = str(pls["tls"]["mode"]).upper()
    return mode


def _specificity(pattern: str) -> tuple[int, int]:
    return (0 if pattern.startswith("*") else 1, len(pattern))


def _workload_selector(r: ConfigResource) -> dict[str, str] | None:
    labels = (r.spec.get("workloadSelector") or {}).get("matchLabels")
    return {str(k): str(v) for k, v in labels.items()} if labels else None


def destination_rule_for(drs: Iterable[ConfigResource], host: str, client_namespace: str,
                         service_namespace: str, client_labels: Mapping[str, Any] | None = None,
                         root_namespace: str = ROOT_NAMESPACE) -> ConfigResource | None:
    """The DestinationRule a client in ``client_namespace`` uses for ``host``.

    Istio looks in the client's namespace, then the service's, then the root namespace, and
    within one namespace takes the most specific host match. A DestinationRule with a
    ``workloadSelector`` applies only to matching clients of its own namespace, and wins there.
    """
    matching = [dr for dr in drs if host_matches(dr_host(dr), host)]
    labels = client_labels or {}
    for ns in (client_namespace, service_namespace, root_namespace):
        here = [dr for dr in matching if dr.namespace == ns]
        selected = [dr for dr in here if ns == client_namespace and (sel := _workload_selector(dr)) is not None
                    and _selects(sel, labels)]
        plain = [dr for dr in here if _workload_selector(dr) is None]
        for candidates in (selected, plain):
            if candidates:
                return max(candidates, key=lambda dr: (_specificity(dr_host(dr)), dr.name))
    return None


# -- EnvoyFilter ---------------------------------------------------------------------------
# applyTo -> the xDS type the patched object travels in (an invalid patch makes the proxy NACK it).
ENVOY_FILTER_XDS = {
    "CLUSTER": "cds", "LISTENER": "lds", "FILTER_CHAIN": "lds", "NETWORK_FILTER": "lds",
    "HTTP_FILTER": "lds", "LISTENER_FILTER": "lds", "ROUTE_CONFIGURATION": "rds", "VIRTUAL_HOST": "rds",
    "HTTP_ROUTE": "rds", "EXTENSION_CONFIG": "ecds",
}


def envoy_filter_patches(ef: ConfigResource, xds: str, gateway: bool) -> list[str]:
    """The ``applyTo`` of ``ef``'s patches that reach a proxy of this kind (a gateway or a
    sidecar, by the patch's ``match.context``) in xDS type ``xds``."""
    out = []
    for patch in ef.spec.get("configPatches") or ():
        apply_to = str(patch.get("applyTo") or "")
        context = str((patch.get("match") or {}).get("context") or "ANY")
        if ENVOY_FILTER_XDS.get(apply_to) != xds:
            continue
        if context == "ANY" or (context == "GATEWAY") == gateway:
            out.append(apply_to)
    return out


def envoy_filter_selects(ef: ConfigResource, namespace: str, labels: Mapping[str, Any],
                         root_namespace: str = ROOT_NAMESPACE) -> bool:
    """Does ``ef`` apply to a workload of ``namespace`` with ``labels``? Its own namespace's
    workloads its ``workloadSelector.labels`` pick (all without one); in the root namespace,
    every workload of the mesh."""
    if ef.namespace not in (namespace, root_namespace):
        return False
    selector = (ef.spec.get("workloadSelector") or {}).get("labels")
    return not selector or _selects({str(k): str(v) for k, v in selector.items()}, labels)


# -- PeerAuthentication ----------------------------------------------------------------------
def _selector(pa: ConfigResource) -> dict[str, str] | None:
    labels = (pa.spec.get("selector") or {}).get("matchLabels")
    return {str(k): str(v) for k, v in labels.items()} if labels else None


def _selects(selector: Mapping[str, str], labels: Mapping[str, Any]) -> bool:
    return all(str(labels.get(k)) == v for k, v in selector.items())


def _mode(pa: ConfigResource, port: int | None) -> str | None:
    if port is not None:
        plm = pa.spec.get("portLevelMtls") or {}
        for key, value in plm.items():
            if str(key) == str(port) and (value or {}).get("mode"):
                mode = str(value["mode"]).upper()
                if mode != "UNSET":
                    return mode
    mode = str((pa.spec.get("mtls") or {}).get("mode") or "UNSET").upper()
    return None if mode == "UNSET" else mode


def peer_auth_mode(pas: Iterable[ConfigResource], namespace: str, labels: Mapping[str, Any],
                   port: int | None = None,
                   root_namespace: str = ROOT_NAMESPACE) -> tuple[str, ConfigResource | None]:
    """The mTLS mode a workload's proxy accepts, and the PeerAuthentication deciding it.

    Scope resolution as in Istio: a PeerAuthentication in the workload's namespace whose
    selector matches its labels (port-level ``portLevelMtls`` first), else the namespace-wide
    one, else the mesh-wide one in the root namespace; ``UNSET`` inherits from the next level;
    nothing at all means ``PERMISSIVE``.
    """
    pas = list(pas)
    workload_level = sorted((pa for pa in pas if pa.namespace == namespace and (sel := _selector(pa)) is not None
                             and _selects(sel, labels)), key=lambda pa: pa.name)
    namespace_level = sorted((pa for pa in pas if pa.namespace == namespace and _selector(pa) is None),
                             key=lambda pa: pa.name)
    mesh_level = sorted((pa for pa in pas if pa.namespace == root_namespace and _selector(pa) is None),
                        key=lambda pa: pa.name)
    for level in (workload_level, namespace_level, mesh_level):
        for pa in level:
            mode = _mode(pa, port if level is workload_level else None)
            if mode is not None:
                return mode, pa
    return "PERMISSIVE", None
