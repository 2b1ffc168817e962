"""App Mesh configuration in any of its three shapes -> ConfigResources with one common layout.

Shapes accepted (all pure data; no I/O here):

* ``appmesh.k8s.aws/v1beta2`` custom resources (``kind`` + ``metadata`` + ``spec``; refs such
  as ``virtualNodeRef: {name}``, routes embedded in the VirtualRouter);
* App Mesh API ``describe-*`` responses (``{"virtualNode": {meshName, virtualNodeName, spec,
  metadata, status}}``), also as saved by ``aws appmesh describe-... > file.json``;
* ``create-* --cli-input-json`` inputs (``{meshName, virtualNodeName, spec}``).

Every resource keeps its original spec and gains ``spec["meshobs"]``, the common layout the
configuration checks read (the same for all three shapes)::

    mesh            mesh name ("" when a CRD does not say)
    aws_name        name in the App Mesh API (CRD awsName, else the controller's default)
    virtual_router  (Route, from the API) the router the route belongs to
    virtual_gateway (GatewayRoute) the gateway
    listeners       [{port, protocol, tls_mode, tls_trust, health_check, outlier_detection, timeout_ms,
                      connection_pool}]  tls_trust = usable trust sources of a validation block | None
    listener_tls    strictest listener TLS mode: STRICT | PERMISSIVE | DISABLED | None (no TLS)
    health_checks   [{port, protocol, path, healthy_threshold, unhealthy_threshold, timeout_ms,
                      interval_ms}]
    outlier_detection [{port, max_server_errors, interval_ms, base_ejection_ms, max_ejection_percent}]
    backends        [{virtual_service, namespace, client_tls}]  client_tls = {enforce, mode, ports, trust}|None
                    (trust: "acm" / "file" / "sds" sources its validation can use, None without one)
    backend_defaults_client_tls   client_tls of backendDefaults (VirtualNode, VirtualGateway) | None
    client_tls_enforced  True when any backend (or the defaults) enforces TLS
    service_discovery    {"dns": hostname} | {"cloud_map": {namespace, service}} | None
    routes          [{name, protocol, priority, match, targets:[{virtual_node, namespace, weight,
                      weight_fraction, port}], retry:{max_retries, per_retry_timeout_ms, http_events,
                      tcp_events, grpc_events}|None, timeout:{request_ms, idle_ms}|None}]
    provider        (VirtualService) {"virtual_router": name} | {"virtual_node": name} | None
    gateway_target  (GatewayRoute) {virtual_service, namespace, port}

Names: a CRD keeps its Kubernetes namespace/name; an API resource has namespace = mesh name
and name = resource name (a Route is ``<router>/<route>``, a GatewayRoute ``<gateway>/<route>``,
so two routers' routes with the same name stay distinct; a Mesh has namespace "").
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.collectors.config_shapes import check_spec
from meshobs.model import ConfigResource, Layer, Mesh, freeze
from meshobs.shape import each

CRD_API_VERSION = "appmesh.k8s.aws/v1beta2"
API_VERSION = "appmesh.amazonaws.com/2019-01-25"
# describe-* top-level key -> (kind, name field)
_API_KINDS = {
    "mesh": ("Mesh", "meshName"),
    "virtualNode": ("VirtualNode", "virtualNodeName"),
    "virtualService": ("VirtualService", "virtualServiceName"),
    "virtualRouter": ("VirtualRouter", "virtualRouterName"),
    "route": ("Route", "routeName"),
    "virtualGateway": ("VirtualGateway", "virtualGatewayName"),
    "gatewayRoute": ("GatewayRoute", "gatewayRouteName"),
}
_NAME_FIELDS = {name_field: kind for kind, name_field in _API_KINDS.values()}
_TLS_ORDER = {"STRICT": 3, "PERMISSIVE": 2, "DISABLED": 1}
_ROUTE_TYPES = (("httpRoute", "http"), ("http2Route", "http2"), ("grpcRoute", "grpc"), ("tcpRoute", "tcp"))
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """A template still has ``${VAR}`` placeholders that the environment does not set."""

    def __init__(self, origin: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(f"{origin}: template placeholders not set in the environment: "
                         f"{', '.join('${' + m + '}' for m in missing)}; export them (or render the "
                         f"template, e.g. with envsubst) before reading it")


def fill_template(text: str, env: Mapping[str, str] | None = None, origin: str = "template") -> str:
    """Replace ``${VAR}`` from ``env`` (default: the process environment).

    Raises :class:`TemplateError` naming every placeholder the environment does not set.
    """
    values = os.environ if env is None else env
    missing = sorted({m for m in _VAR.findall(text) if m not in values})
    if missing:
        raise TemplateError(origin, missing)
    return _VAR.sub(lambda m: values[m.group(1)], text)


def placeholders(text: str) -> list[str]:
    """The ``${VAR}`` names used in ``text``."""
    return sorted(set(_VAR.findall(text)))


# -- small converters ------------------------------------------------------------------------

def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def duration_ms(value: Any) -> float | None:
    """App Mesh duration ``{value, unit: ms|s}`` -> milliseconds."""
    d = _map(value)
    if "value" not in d:
        return None
    try:
        number = float(d["value"])
    except (TypeError, ValueError):
        return None
    return number * 1000.0 if str(d.get("unit", "ms")) == "s" else number


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: YAML's .inf
        return None


def _ref_name(item: Mapping[str, Any], kind: str) -> tuple[str, str | None]:
    """``virtualNode: name`` (API) or ``virtualNodeRef: {name, namespace}`` (CRD) -> (name, ns)."""
    if isinstance(item.get(kind), str):
        return str(item[kind]), None
    ref = _map(item.get(kind + "Ref"))
    if ref.get("name"):
        return str(ref["name"]), (str(ref["namespace"]) if ref.get("namespace") else None)
    nested = _map(item.get(kind))  # API backends: {"virtualService": {"virtualServiceName": x}}
    for key in (kind + "Name", kind + "Ref"):
        if isinstance(nested.get(key), str):
            return str(nested[key]), None
        if isinstance(nested.get(key), Mapping) and nested[key].get("name"):
            ref = nested[key]
            return str(ref["name"]), (str(ref["namespace"]) if ref.get("namespace") else None)
    arn = item.get(kind + "ARN") or nested.get(kind + "ARN")
    return (str(arn).rsplit("/", 1)[-1], None) if arn else ("", None)


def _trust(tls: Mapping[str, Any]) -> list[str] | None:
    """The trust sources a TLS block's ``validation`` can use ("acm", "file", "sds"; empty when
    it names none usable), or None without a validation block."""
    if "validation" not in tls:
        return None
    trust = _map(_map(tls.get("validation")).get("trust"))
    acm = _map(trust.get("acm"))
    usable = {"acm": bool(_list(acm.get("certificateAuthorityARNs") or acm.get("certificateAuthorityArns"))),
              "file": bool(_map(trust.get("file")).get("certificateChain")),
              "sds": bool(_map(trust.get("sds")).get("secretName"))}
    return [name for name, ok in usable.items() if ok]


def _client_tls(policy: Any) -> dict[str, Any] | None:
    tls = _map(_map(policy).get("tls"))
    if not tls:
        return None
    return {"enforce": bool(tls.get("enforce", True)), "mode": tls.get("mode"),
            "ports": [p for p in (_int(x) for x in _list(tls.get("ports"))) if p is not None],
            "trust": _trust(tls)}


def _listener(raw: Mapping[str, Any]) -> dict[str, Any]:
    pm = _map(raw.get("portMapping"))
    hc = _map(raw.get("healthCheck"))
    od = _map(raw.get("outlierDetection"))
    port, protocol = _int(pm.get("port")), pm.get("protocol")
    timeout = _map(raw.get("timeout"))
    per_protocol = _map(timeout.get(str(protocol))) if protocol else {}
    return {
        "port": port, "protocol": protocol,
        "tls_mode": _map(raw.get("tls")).get("mode"),
        "tls_trust": _trust(_map(raw.get("tls"))),
        "health_check": {
            "port": _int(hc.get("port")) or port, "protocol": hc.get("protocol"), "path": hc.get("path"),
            "healthy_threshold": _int(hc.get("healthyThreshold")),
            "unhealthy_threshold": _int(hc.get("unhealthyThreshold")),
            "timeout_ms": duration_ms({"value": hc.get("timeoutMillis"), "unit": "ms"})
            if hc.get("timeoutMillis") is not None else None,
            "interval_ms": duration_ms({"value": hc.get("intervalMillis"), "unit": "ms"})
            if hc.get("intervalMillis") is not None else None,
        } if hc else None,
        "outlier_detection": {
            "port": port, "max_server_errors": _int(od.get("maxServerErrors")),
            "interval_ms": duration_ms(od.get("interval")),
            "base_ejection_ms": duration_ms(od.get("baseEjectionDuration")),
            "max_ejection_percent": _int(od.get("maxEjectionPercent")),
        } if od else None,
        "timeout_ms": duration_ms(_map(per_protocol.get("perRequest"))),
        "connection_pool": dict(_map(raw.get("connectionPool"))) or None,
    }


def _strictest_tls(listeners: list[dict[str, Any]]) -> str | None:
    modes = [m for m in (lst["tls_mode"] for lst in listeners) if m]
    return max(modes, key=lambda m: _TLS_ORDER.get(str(m), 0)) if modes else None


def _route(raw: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for field, protocol in _ROUTE_TYPES:
        body = _map(raw.get(field))
        if not body:
            continue
        targets: list[dict[str, Any]] = []
        for t in _list(_map(body.get("action")).get("weightedTargets")):
            node, ns = _ref_name(_map(t), "virtualNode")
            targets.append({"virtual_node": node, "namespace": ns, "weight": _int(_map(t).get("weight")) or 0,
                            "port": _int(_map(t).get("port"))})
        total = sum(t["weight"] for t in targets)
        for t in targets:
            t["weight_fraction"] = t["weight"] / total if total > 0 else 0.0
        retry = _map(body.get("retryPolicy"))
        timeout = _map(body.get("timeout"))
        return {
            "name": name, "protocol": protocol, "priority": _int(raw.get("priority")),
            "match": dict(_map(body.get("match"))), "targets": targets,
            "retry": {
                "max_retries": _int(retry.get("maxRetries")),
                "per_retry_timeout_ms": duration_ms(retry.get("perRetryTimeout")),
                "http_events": list(_list(retry.get("httpRetryEvents"))),
                "tcp_events": list(_list(retry.get("tcpRetryEvents"))),
                "grpc_events": list(_list(retry.get("grpcRetryEvents"))),
            } if retry else None,
            "timeout": {"request_ms": duration_ms(timeout.get("perRequest")),
                        "idle_ms": duration_ms(timeout.get("idle"))} if timeout else None,
        }
    return None


def _gateway_target(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    for field in ("httpRoute", "http2Route", "grpcRoute"):
        target = _map(_map(_map(spec.get(field)).get("action")).get("target"))
        if target:
            vs, ns = _ref_name(target, "virtualService")
            return {"virtual_service": vs, "namespace": ns, "port": _int(target.get("port"))}
    return None


def common_layout(kind: str, spec: Mapping[str, Any], *, mesh: str, aws_name: str,
                  route_name: str = "") -> dict[str, Any]:
    """The ``spec["meshobs"]`` layout (see the module docstring) for one App Mesh resource."""
    out: dict[str, Any] = {"mesh": mesh, "aws_name": aws_name}
    listeners = [_listener(_map(x)) for x in _list(spec.get("listeners"))]
    if kind in ("VirtualNode", "VirtualGateway", "VirtualRouter"):
        out["listeners"] = listeners
        out["listener_tls"] = _strictest_tls(listeners)
        out["health_checks"] = [lst["health_check"] for lst in listeners if lst["health_check"]]
        out["outlier_detection"] = [lst["outlier_detection"] for lst in listeners if lst["outlier_detection"]]
    if kind == "VirtualGateway":
        out["backend_defaults_client_tls"] = _client_tls(_map(spec.get("backendDefaults")).get("clientPolicy"))
    if kind == "VirtualNode":
        defaults = _client_tls(_map(spec.get("backendDefaults")).get("clientPolicy"))
        backends: list[dict[str, Any]] = []
        for b in _list(spec.get("backends")):
            vs, ns = _ref_name(_map(b), "virtualService")
            policy = _map(_map(b).get("virtualService")).get("clientPolicy")
            backends.append({"virtual_service": vs, "namespace": ns, "client_tls": _client_tls(policy)})
        out["backends"] = backends
        out["backend_defaults_client_tls"] = defaults
        out["client_tls_enforced"] = any(bool(t and t["enforce"]) for t in
                                         [defaults, *(b["client_tls"] for b in backends)])
        sd = _map(spec.get("serviceDiscovery"))
        if _map(sd.get("dns")).get("hostname"):
            out["service_discovery"] = {"dns": str(_map(sd.get("dns")).get("hostname"))}
        elif sd.get("awsCloudMap"):
            cm = _map(sd["awsCloudMap"])
            out["service_discovery"] = {"cloud_map": {"namespace": cm.get("namespaceName"),
                                                      "service": cm.get("serviceName")}}
        else:
            out["service_discovery"] = None
    if kind == "VirtualRouter":
        out["routes"] = [r for r in (_route(_map(x), str(_map(x).get("name", "")))
                                     for x in _list(spec.get("routes"))) if r]
    if kind == "Route":
        route = _route(spec, route_name)
        out["routes"] = [route] if route else []
    if kind == "VirtualService":
        provider = _map(spec.get("provider"))
        if provider.get("virtualRouter"):
            out["provider"] = {"virtual_router": _ref_name(provider, "virtualRouter")[0]}
        elif provider.get("virtualNode"):
            out["provider"] = {"virtual_node": _ref_name(provider, "virtualNode")[0]}
        else:
            out["provider"] = None
    if kind == "GatewayRoute":
        out["gateway_target"] = _gateway_target(spec)
    return out


# -- the three shapes ------------------------------------------------------------------------

def _crd_aws_name(kind: str, name: str, namespace: str, spec: Mapping[str, Any]) -> str:
    if spec.get("awsName"):
        return str(spec["awsName"])
    if kind == "Mesh":
        return name
    # The appmesh-controller's defaults when awsName is not set.
    return f"{name}.{namespace}" if kind == "VirtualService" else f"{name}_{namespace}"


def enrich(resource: ConfigResource) -> ConfigResource:
    """Add ``spec["meshobs"]`` to an App Mesh CRD ConfigResource (e.g. from the Kubernetes or
    manifests collector); other resources, and ones already enriched, are returned unchanged."""
    from dataclasses import replace

    if resource.mesh is not Mesh.APPMESH or "meshobs" in resource.spec:
        return resource
    spec = resource.spec
    mesh = str(_map(spec.get("meshRef")).get("name") or (resource.name if resource.kind == "Mesh" else ""))
    layout = common_layout(resource.kind, spec, mesh=mesh,
                           aws_name=_crd_aws_name(resource.kind, resource.name, resource.namespace, spec))
    return replace(resource, spec=freeze({**spec, "meshobs": layout}))


def from_crd(obj: Mapping[str, Any], layer: Layer = Layer.INTENDED, origin: str = "") -> ConfigResource | None:
    """An ``appmesh.k8s.aws`` custom resource -> ConfigResource (None for anything else)."""
    if not str(obj.get("apiVersion", "")).startswith("appmesh.k8s.aws/"):
        return None
    meta = _map(obj.get("metadata"))
    kind = str(obj.get("kind", ""))
    namespace = "" if kind == "Mesh" else str(meta.get("namespace") or "default")
    check_spec(kind, obj.get("spec"), f"{kind} {namespace}/{meta.get('name', '?')} ({origin or 'App Mesh'})",
               appmesh=True)
    resource = ConfigResource(
        kind=kind, namespace=namespace, name=str(meta.get("name", "")), spec=freeze(dict(_map(obj.get("spec")))),
        layer=layer, api_version=str(obj["apiVersion"]), mesh=Mesh.APPMESH,
        labels=freeze({str(k): str(v) for k, v in _map(meta.get("labels")).items()}), origin=origin)
    return enrich(resource)


def from_api_object(kind: str, obj: Mapping[str, Any], layer: Layer = Layer.LIVE,
                    origin: str = "") -> ConfigResource:
    """One App Mesh API object (describe-* body or create-* input) of ``kind`` -> ConfigResource."""
    name_field = next(f for k, f in _API_KINDS.values() if k == kind)
    mesh = str(obj.get("meshName", ""))
    name = str(obj.get(name_field, ""))
    if not name:
        raise ValueError(f"{origin or 'App Mesh JSON'}: {kind} without {name_field}")
    check_spec(kind, obj.get("spec"), f"{kind} {mesh}/{name} ({origin or 'App Mesh'})", appmesh=True)
    spec = dict(_map(obj.get("spec")))
    full_name = name
    if kind == "Route":
        full_name = f"{obj.get('virtualRouterName', '')}/{name}"
    elif kind == "GatewayRoute":
        full_name = f"{obj.get('virtualGatewayName', '')}/{name}"
    layout = common_layout(kind, spec, mesh=mesh, aws_name=name, route_name=name)
    if kind == "Route":
        layout["virtual_router"] = str(obj.get("virtualRouterName", ""))
    if kind == "GatewayRoute":
        layout["virtual_gateway"] = str(obj.get("virtualGatewayName", ""))
    status = _map(obj.get("status")).get("status")
    annotations = {"appmesh.status": str(status)} if status else {}
    arn = _map(obj.get("metadata")).get("arn")
    if arn:
        annotations["appmesh.arn"] = str(arn)
    return ConfigResource(kind=kind, namespace="" if kind == "Mesh" else mesh, name=full_name,
                          spec=freeze({**spec, "meshobs": layout}), layer=layer, api_version=API_VERSION,
                          mesh=Mesh.APPMESH, annotations=freeze(annotations), origin=origin)


def api_kind_of(obj: Mapping[str, Any]) -> str | None:
    """The kind of a create-* input / describe body from its name fields (most specific wins)."""
    for field in ("routeName", "gatewayRouteName", "virtualNodeName", "virtualServiceName",
                  "virtualRouterName", "virtualGatewayName", "meshName"):
        if field in obj and ("spec" in obj or field == "meshName"):
            return _NAME_FIELDS[field]
    return None


def from_document(doc: Any, layer: Layer = Layer.LIVE, origin: str = "",
                  problems: list[str] | None = None) -> list[ConfigResource]:
    """Any App Mesh document -> ConfigResources.

    Accepts a CRD, a describe-* response (``{"virtualNode": {...}}``), a create-* input, a list
    of any of these, or a Kubernetes ``List``. Other JSON (list-* summaries, unrelated objects)
    yields nothing; a document that looks like App Mesh but is malformed raises ValueError.
    """
    if isinstance(doc, list):
        # One malformed resource in a list costs that resource (named in ``problems``).
        found = each(doc, origin or "App Mesh document", lambda item: from_document(item, layer, origin, problems),
                     problems)
        return [r for rs in found for r in rs]
    if not isinstance(doc, Mapping):
        return []
    if doc.get("kind") == "List" or (isinstance(doc.get("items"), list) and "apiVersion" in doc):
        return from_document(doc.get("items"), layer, origin, problems)
    if "apiVersion" in doc:
        crd = from_crd(doc, Layer.INTENDED if layer is Layer.LIVE and origin.endswith((".yaml", ".yml"))
                       else layer, origin)
        return [crd] if crd else []
    out: list[ConfigResource] = []
    for key, (kind, _field) in _API_KINDS.items():
        if isinstance(doc.get(key), Mapping) and "spec" in doc[key]:
            out.append(from_api_object(kind, doc[key], layer, origin))
    if out:
        return out
    api_kind = api_kind_of(doc)
    if api_kind is not None and "spec" in doc:
        return [from_api_object(api_kind, doc, layer, origin)]
    return []


def routes_of_router(resources: Iterable[ConfigResource], mesh: str, router: str) -> list[dict[str, Any]]:
    """Every route of a virtual router in the common layout: embedded (CRD VirtualRouter) plus the
    separate Route resources (API) that name the router."""
    out: list[dict[str, Any]] = []
    for r in resources:
        layout = _map(r.spec.get("meshobs"))
        if r.mesh is not Mesh.APPMESH or not layout:
            continue
        embedded = (r.kind == "VirtualRouter" and router in (r.name, layout.get("aws_name"))
                    and (not mesh or layout.get("mesh") in (mesh, "")))
        separate = r.kind == "Route" and layout.get("virtual_router") == router and layout.get("mesh") == mesh
        if embedded or separate:
            out.extend(_list(layout.get("routes")))
    return out
