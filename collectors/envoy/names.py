"""Envoy cluster names -> direction, service host, port and subset, per mesh.

Each mesh names its clusters its own way (Istio ``outbound|9080|v1|reviews.default.svc.cluster.local``,
App Mesh ``cds_egress_<mesh>_<node>_http_8080``). Parsers are tried in order; the first that
recognises a name wins, so another mesh plugs in with :func:`register_cluster_name_parser`
without touching the normaliser.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClusterName:
    """What a cluster name says about its upstream."""

    direction: str  # outbound | inbound | other
    service_host: str | None = None
    port: int | None = None
    subset: str | None = None


ClusterNameParser = Callable[[str], ClusterName | None]


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_istio(name: str) -> ClusterName | None:
    """``outbound|PORT|SUBSET|HOST``, ``inbound|PORT||`` (and Istio 1.5- ``inbound|PORT|NAME|HOST``)."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] not in ("outbound", "inbound"):
        return None
    direction, port, subset, host = parts
    if direction == "inbound":
        # Old Istio put the port name in the subset slot of inbound clusters; it is not a subset.
        return ClusterName("inbound", host or None, _port(port), None)
    return ClusterName("outbound", host or None, _port(port), subset or None)


def istio_outbound(name: str) -> ClusterName | None:
    """An Istio ``outbound|PORT|SUBSET|HOST`` cluster's parts; None for any other name. The one
    reader of Istio cluster names: the normaliser, ``diagnose``'s configuration checks, ``drift``
    and ``migrate verify`` all call it."""
    parsed = parse_istio(name)
    return parsed if parsed is not None and parsed.direction == "outbound" and parsed.service_host else None


def parse_istio_legacy_inbound(name: str) -> ClusterName | None:
    """``inbound_9092``: the inbound passthrough clusters older Istio sidecars carried."""
    if name.startswith("inbound_") and name[len("inbound_"):].isdigit():
        return ClusterName("inbound", None, int(name[len("inbound_"):]), None)
    return None


def parse_appmesh(name: str) -> ClusterName | None:
    """App Mesh ``cds_egress_<mesh>_<node>_<protocol>_<port>`` / ``cds_ingress_...``.

    An egress cluster leads to a virtual node, not to a service host: the host is left unset
    here and filled by the proxy normaliser from the routes that send to the cluster (App Mesh
    names the route's virtual host after the virtual service). The target virtual node is
    :func:`meshobs.collectors.appmesh_names.target_of_cluster` of the name.
    """
    from meshobs.collectors.appmesh_names import parse_cluster_name as parse_appmesh_cluster

    parsed = parse_appmesh_cluster(name)
    if parsed is None:
        return None
    return ClusterName("outbound" if parsed.direction == "egress" else "inbound", None, parsed.port, None)


_PARSERS: list[ClusterNameParser] = [parse_istio, parse_istio_legacy_inbound, parse_appmesh]


def register_cluster_name_parser(parser: ClusterNameParser, *, first: bool = False) -> None:
    """Add a parser for another mesh's cluster names (``first`` puts it before Istio's)."""
    if parser in _PARSERS:
        return
    if first:
        _PARSERS.insert(0, parser)
    else:
        _PARSERS.append(parser)
    parse_cluster_name.cache_clear()  # after the change: a reading made in between by the old parsers goes too


# Remembered: the same names recur on every proxy that calls the same upstreams (75,863 clusters
# at 5,000 services, 8,239 distinct names); bounded, since names come from the proxies. Emptied
# when the parsers change.
@functools.lru_cache(maxsize=65_536)
def parse_cluster_name(name: str) -> ClusterName:
    """The first registered parser's reading of ``name``; ``other`` when none recognises it."""
    for parser in _PARSERS:
        parsed = parser(name)
        if parsed is not None:
            return parsed
    return ClusterName("other")
