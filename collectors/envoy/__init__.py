"""Envoy admin API collector (Istio sidecars; App Mesh's Envoy speaks the same API).

Payload keys per proxy RawSource (``envoy:<namespace>/<pod>``, kind ``envoy``, meta
``namespace``/``pod``/``workload``/``url``): ``ready``, ``server_info``, ``clusters``,
``stats`` (JSON, or Prometheus text when JSON failed), ``config_dump``, ``certs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshobs.collectors.base import NormalizeContext
from meshobs.config import Config
from meshobs.durations import parse_duration
from meshobs.model import SnapshotPart
from meshobs.raw import RawSource

from .discovery import Target, discover_targets, pods_from_prior, static_targets
from .names import ClusterName, parse_cluster_name, register_cluster_name_parser
from .normalize import normalize_proxy

if TYPE_CHECKING:
    from .fetch import EnvoyCollector, HttpTransport, TransportFactory


def __getattr__(name: str) -> Any:
    # The fetching half (requests) loads only when asked for: the pure readers of this package
    # (cluster names) serve the checks and drift, which do no I/O.
    if name in ("EnvoyCollector", "HttpTransport", "Transport", "TransportFactory", "DEFAULT_CONCURRENCY"):
        from . import fetch

        return getattr(fetch, name)
    raise AttributeError(name)

KIND = "envoy"
# The one phase of a two-phase run it fetches in (meshobs.collect builds and runs it in that phase
# only): nothing of Envoy's is needed to find the neighbourhood.
PHASE = "scoped"

__all__ = [
    "KIND", "ClusterName", "EnvoyCollector", "HttpTransport", "Target", "discover_targets",
    "from_config", "normalize", "parse_cluster_name", "pods_from_prior",
    "register_cluster_name_parser", "static_targets",
]


def from_config(config: Config, prior: list[RawSource]) -> EnvoyCollector | None:
    """An EnvoyCollector for ``sources.envoy`` (None when Envoy is not configured)."""
    from . import scraped
    from .fetch import DEFAULT_CONCURRENCY, EnvoyCollector

    section = config.sources.get("envoy")
    if section is None:
        return None
    timeout = parse_duration(section.get("timeout", "5s"))
    concurrency = int(section.get("concurrency", DEFAULT_CONCURRENCY))
    scrape = scraped.from_config(config.sources)
    discovery = section.get("discovery") or ("static" if section.get("targets") else "kubernetes")
    if discovery == "static":
        return EnvoyCollector(static_targets(section.get("targets") or []), timeout_s=timeout,
                              concurrency=concurrency, scrape=scrape,
                              transport=static_transport(section, concurrency))
    from .portforward import PortForwardTransport, load_client_configuration

    targets = discover_targets(pods_from_prior(prior), port=section.get("port"),
                               namespaces=section.get("namespaces") or ())
    if not any(r.kind == "kubernetes" for r in prior):
        return EnvoyCollector([], error="sources.envoy.discovery is 'kubernetes' but no pods were "
                                        "fetched: configure sources.kubernetes, or list "
                                        "sources.envoy.targets with discovery: static")
    k8s = config.sources.get("kubernetes") or {}
    configuration, config_error = None, None
    try:
        configuration = load_client_configuration(k8s.get("kubeconfig"), k8s.get("context"))
    except Exception as exc:  # kubeconfig missing or invalid: every port-forward fails the same way
        config_error = f"cannot load the Kubernetes client config for port-forwarding: {exc}"

    def transport(target: Target) -> PortForwardTransport:
        error = (f"could not port-forward to {target.namespace}/{target.pod}:{target.port}: "
                 f"{config_error}") if config_error else None
        return PortForwardTransport(target, configuration, error, timeout_s=timeout)

    return EnvoyCollector(targets, timeout_s=timeout, concurrency=concurrency, transport=transport,
                          scrape=scrape)


def static_transport(section: dict[str, Any], concurrency: int) -> TransportFactory:
    """Plain HTTP(S) to listed admin URLs through one bounded session (connections to one host,
    e.g. a gateway in front of many admin ports, are reused), verifying https:// targets with
    ``ca_file`` or not at all with ``verify_tls: false``."""
    from meshobs.collectors.http import bounded_session, tls_verify

    from .fetch import HttpTransport, Transport

    verify = tls_verify(section.get("verify_tls", True), section.get("ca_file"))
    session = bounded_session(verify=verify, pool_size=concurrency)

    def transport(target: Target) -> Transport:
        return HttpTransport(target.url, verify=verify, session=session)

    return transport


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Pure: one proxy's payloads -> Proxy, Certs and its SourceStatus."""
    return normalize_proxy(raw, ctx)
