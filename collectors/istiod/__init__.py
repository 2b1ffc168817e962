"""istiod, the control plane: each replica's readiness and what it sent every proxy vs what the
proxy acknowledged (``/debug/syncz``, istioctl proxy-status's source).

The collector module contract (:mod:`meshobs.collect`): ``KIND``, ``from_config`` and
``normalize``. istiod's ``pilot_*`` metrics come from the Prometheus source
(:mod:`meshobs.collectors.prometheus.pilot`); the replicas are merged by pod in assembly.
"""

from __future__ import annotations

from meshobs.config import Config
from meshobs.durations import parse_duration
from meshobs.raw import RawSource

from ..envoy.discovery import Target
from .discovery import KubernetesDiscovery, static_replicas
from .fetch import KIND, IstiodCollector, Replica
from .normalize import normalize

__all__ = ["KIND", "IstiodCollector", "Replica", "from_config", "normalize"]


def from_config(config: Config, prior: list[RawSource]) -> IstiodCollector | None:
    """An IstiodCollector for ``sources.istiod`` (None when istiod is not configured)."""
    section = config.sources.get("istiod")
    if section is None:
        return None
    timeout = parse_duration(section.get("timeout", "5s"))
    namespace = str(section.get("namespace") or "istio-system")
    discovery = section.get("discovery") or ("static" if section.get("targets") else "kubernetes")
    if discovery == "static":
        from meshobs.collectors.envoy.fetch import HttpTransport
        from meshobs.collectors.http import tls_verify

        headers = dict(section.get("headers") or {})
        verify = tls_verify(section.get("verify_tls", True), section.get("ca_file"))

        def http(target: Target) -> HttpTransport:
            # Per request, as the Envoy collector passes it: requests lets a request's
            # verify=True win over the session's, so ca_file and verify_tls: false were ignored.
            transport = HttpTransport(target.url, verify=verify)
            transport.session.headers.update(headers)
            return transport

        return IstiodCollector(static_replicas(section.get("targets") or []), timeout_s=timeout,
                               transport=http, namespace=namespace)
    from meshobs.collectors.envoy.portforward import PortForwardTransport, load_client_configuration

    k8s = config.sources.get("kubernetes") or {}
    try:
        configuration = load_client_configuration(k8s.get("kubeconfig"), k8s.get("context"))
    except Exception as exc:  # kubeconfig missing or invalid: nothing can be found or reached
        return IstiodCollector(error=f"sources.istiod.discovery is 'kubernetes' but the Kubernetes client "
                                     f"config cannot be loaded: {exc}", namespace=namespace)

    def forward(target: Target) -> PortForwardTransport:
        return PortForwardTransport(target, configuration, timeout_s=timeout)

    discover = KubernetesDiscovery(configuration, namespace, str(section.get("selector") or "app=istiod"),
                                   int(section.get("ready_port", 8080)), int(section.get("debug_port", 15014)))
    return IstiodCollector(timeout_s=timeout, transport=forward, discover=discover, namespace=namespace)
