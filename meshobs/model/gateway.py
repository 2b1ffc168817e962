"""Is a workload a gateway, and which kind: the one judgement every check and the engine's
scope share (before, the port and policy analyzers, the Gateway analyzers and the checklist's
scope each had their own rule and disagreed on gateways they did not all know).

The evidence, strongest first:

- a waypoint: Istio's mesh controller deploys it (``gateway.istio.io/managed:
  istio.io-mesh-controller``; before 1.22 ``istio.io/gateway-name: waypoint``);
- the ``istio`` label of Istio's gateway charts (``ingressgateway``, ``egressgateway``,
  any value naming a gateway);
- the Gateway API's deployment controller (``gateway.networking.k8s.io/gateway-name``,
  ``gateway.istio.io/managed``): an ingress gateway;
- the proxy's own identity: an Istio ``router~`` node, an App Mesh ``virtualGateway``;
- an Istio Gateway's selector picks the pods (``selected``): the Helm chart's ``istio: ingress``
  names no gateway, the Gateway bound to it does.

An egress gateway is a gateway whose callers are inside the mesh; only an ingress gateway's
callers are outside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

INGRESS, EGRESS, WAYPOINT = "ingress gateway", "egress gateway", "waypoint"
MESH_CONTROLLER = "istio.io-mesh-controller"  # the controller that deploys waypoints


def gateway_kind(labels: Mapping[str, Any], node_ids: Iterable[str] = (), *, selected: bool = False) -> str | None:
    """:data:`INGRESS`, :data:`EGRESS` or :data:`WAYPOINT` for a workload with these pod
    ``labels``, whose proxies have these Envoy ``node_ids`` and (``selected``) whose pods an
    Istio Gateway's selector picks; None when nothing says it is a gateway."""
    if labels.get("gateway.istio.io/managed") == MESH_CONTROLLER or labels.get("istio.io/gateway-name") == "waypoint":
        return WAYPOINT
    istio = str(labels.get("istio", ""))
    nodes = [str(n) for n in node_ids]
    if not ("gateway" in istio or "gateway.istio.io/managed" in labels
            or "gateway.networking.k8s.io/gateway-name" in labels or selected
            or any(n.startswith("router~") or "/virtualGateway/" in n for n in nodes)):
        return None
    # The Helm chart names an egress gateway ``istio: egressgateway`` or, installed as
    # istio-egress, ``istio: egress``.
    return EGRESS if "egress" in istio else INGRESS


def is_gateway(labels: Mapping[str, Any], node_ids: Iterable[str] = (), *, selected: bool = False) -> bool:
    """Is the workload any kind of gateway (:func:`gateway_kind` is not None)?"""
    return gateway_kind(labels, node_ids, selected=selected) is not None
