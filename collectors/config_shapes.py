"""The shape of the mesh configuration fields meshobs reads, checked once when a resource is read.

Istio and App Mesh resources from Git, a manifest dump or an export are not validated by an API
server; ``hosts: 8080`` (an int) would otherwise reach the checks, the drift comparison and the
dashboard, each assuming a list of strings. :func:`check_spec` raises ``ValueError`` naming the
resource and the field, and the collector leaves that one resource out (MSH0003 says which).

Only fields that some reader uses are described (``meshobs/istio_config.py``, the drift
canonical forms in ``meshobs/drift/normalise.py``, ``collectors/appmesh_config.py``); unknown
fields pass, so a newer API version is still read. The language is :mod:`meshobs.shape`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from meshobs.shape import ShapeError, Spec, check

_LABELS = ("map_of", "scalar")
_SELECTOR = {"matchLabels": _LABELS}
_PORT = {"number": "int"}
_ROUTE_DESTINATION = {"destination": {"host": "str", "subset": "str", "port": _PORT}, "weight": "int"}
_L4_ROUTE = {"match": ["map"], "route": [_ROUTE_DESTINATION]}
_HTTP_ROUTE = {
    **_L4_ROUTE,
    "name": "str",
    "timeout": "scalar",
    "retries": {"attempts": "int", "perTryTimeout": "scalar", "retryOn": "str"},
    "mirror": {"host": "str"},
    "delegate": {"name": "str", "namespace": "str"},
}
_TLS = {"mode": "str"}
_TRAFFIC_POLICY = {"tls": _TLS, "portLevelSettings": [{"port": _PORT, "tls": _TLS}]}

ISTIO: dict[str, Spec] = {
    "VirtualService": {"hosts": ["str"], "gateways": ["str"], "exportTo": ["str"],
                       "http": [_HTTP_ROUTE], "tcp": [_L4_ROUTE], "tls": [_L4_ROUTE]},
    "DestinationRule": {"host": "str", "exportTo": ["str"], "trafficPolicy": _TRAFFIC_POLICY,
                        "subsets": [{"name": "str", "labels": _LABELS, "trafficPolicy": _TRAFFIC_POLICY}],
                        "workloadSelector": _SELECTOR},
    "PeerAuthentication": {"selector": _SELECTOR, "mtls": _TLS, "portLevelMtls": ("map_of", _TLS)},
    "ServiceEntry": {"hosts": ["str"], "addresses": ["str"], "exportTo": ["str"],
                     "subjectAltNames": ["str"], "ports": [_PORT], "endpoints": ["map"]},
    "Gateway": {"servers": ["map"], "selector": _LABELS},
    "AuthorizationPolicy": {"rules": ["map"], "selector": _SELECTOR},
    "RequestAuthentication": {"selector": _SELECTOR},
    "Sidecar": {"egress": [{"hosts": ["str"]}], "workloadSelector": _SELECTOR},
}

_NODE_REF = {"name": "str", "namespace": "str"}
_APPMESH_ROUTE_BODY = {
    "match": "map",
    "action": {"weightedTargets": [{"virtualNodeRef": _NODE_REF, "weight": "int", "port": "int"}],
               "target": {"virtualService": "map", "port": "int"}},
    "retryPolicy": {"maxRetries": "int", "perRetryTimeout": "map", "httpRetryEvents": ["str"],
                    "tcpRetryEvents": ["str"], "grpcRetryEvents": ["str"]},
    "timeout": ("map_of", "map"),
}
_APPMESH_ROUTE = {"name": "str", "priority": "int", "httpRoute": _APPMESH_ROUTE_BODY,
                  "http2Route": _APPMESH_ROUTE_BODY, "grpcRoute": _APPMESH_ROUTE_BODY,
                  "tcpRoute": _APPMESH_ROUTE_BODY}
_LISTENER = {"portMapping": {"port": "int", "protocol": "str"}, "tls": _TLS, "healthCheck": "map",
             "outlierDetection": "map", "timeout": "map", "connectionPool": "map"}
# One layout for every App Mesh kind (CRD or API): each kind uses the fields it has.
APPMESH: Spec = {
    "awsName": "str", "meshRef": {"name": "str"}, "routes": [_APPMESH_ROUTE], "listeners": [_LISTENER],
    "backends": ["map"], "backendDefaults": "map", "serviceDiscovery": "map", "provider": "map",
    "gatewayRoutes": ["map"],
    **{k: _APPMESH_ROUTE_BODY for k in ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")},
}


def spec_of(kind: str, appmesh: bool) -> Spec | None:
    """The schema for a resource's spec, or None when meshobs reads nothing of it."""
    return APPMESH if appmesh else ISTIO.get(kind)


def check_spec(kind: str, spec: Any, where: str, *, appmesh: bool = False,
               line_of: Callable[[str], str] | None = None) -> None:
    """Raise ShapeError (``where: spec.field: expected ..., got ...``) for a malformed spec;
    ``line_of(path)`` (``file:line`` of a field) puts the field's line in the message."""
    if spec is None:
        return
    if not isinstance(spec, Mapping):
        raise ShapeError(f"{where}: spec: expected a mapping, got {type(spec).__name__}", "spec")
    schema = spec_of(kind, appmesh)
    if schema is not None:
        try:
            check(spec, schema, "spec")
        except ShapeError as exc:
            at = f" ({line_of(exc.path)})" if line_of is not None else ""
            raise ShapeError(f"{where}: {exc}{at}", exc.path) from None
