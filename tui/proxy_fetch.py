"""Fetch one pod's Envoy admin data on demand, through the Envoy collector (called in a worker).

Used when the snapshot has no data for the pod (it was scoped to another service's
neighbourhood, or the pod was not collected): the same collector, targets and transport as a
full collection (port-forward or static URLs), narrowed to the one pod, then the same
normaliser. No second Envoy client.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from meshobs.model import Cert, Proxy

from .data import EnvoyAccess


@dataclass(frozen=True)
class Fetched:
    """The pod's Envoy as fetched now, or why it could not be (``proxy`` None)."""

    proxy: Proxy | None
    certs: list[Cert] = field(default_factory=list)
    problem: str = ""  # "" when complete; partial data keeps the proxy and says what is missing


def fetch_proxy(access: EnvoyAccess, namespace: str, pod: str, at: datetime) -> Fetched:
    """One pod's admin endpoints -> Proxy and Certs (never raises for an unreachable pod)."""
    from meshobs.collect import normalize_source
    from meshobs.collectors.base import FetchContext
    from meshobs.collectors.envoy import from_config

    collector = from_config(access.config, list(access.prior))
    if collector is None:
        return Fetched(None, problem="no Envoy source is configured (sources.envoy)")
    if collector.error:
        return Fetched(None, problem=collector.error)
    targets = [t for t in collector.targets if t.pod == pod and t.namespace in (namespace, "")]
    if not targets:
        return Fetched(None, problem=f"{namespace}/{pod} is not among the Envoy targets "
                                     "(not running, no sidecar, or outside sources.envoy.namespaces/targets)")
    one = replace(collector, targets=targets[:1])
    ctx = FetchContext(time=at, window_s=access.config.window_s, config=access.config)
    raws = one.fetch(ctx)
    part = normalize_source(raws[0], at, access.config.window_s)
    status = part.sources[0] if part.sources else None
    problem = status.message if status is not None and not status.ok else ""
    if not part.proxies:
        return Fetched(None, problem=problem or "the proxy returned nothing usable")
    return Fetched(part.proxies[0], list(part.certs), problem)
