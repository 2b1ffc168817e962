"""How tracers name mesh services, shared by the trace collectors and the trace checks.

Istio's Envoy spans are named ``canonical-service.namespace`` (older sidecars and most SDKs:
the plain name); X-Ray names App Mesh segments ``mesh/virtual-node``.
"""

from __future__ import annotations

from meshobs.model import ServiceRef


def span_names(service: ServiceRef) -> tuple[str, ...]:
    """Every name a tracer may give ``service``'s spans."""
    return service.name, f"{service.name}.{service.namespace}", str(service)


def span_service_matches(span_service: str, service: ServiceRef) -> bool:
    """The tracer's service name ``span_service`` names ``service``."""
    return span_service in span_names(service)


def tracer_names(service: ServiceRef, known: list[str]) -> list[str]:
    """The names in ``known`` (a tracer's service list) that name ``service``, most specific
    first (``name.namespace`` before a bare ``name``, which other namespaces may share)."""
    found = [n for n in known if span_service_matches(n, service)]
    return sorted(found, key=lambda n: (n == service.name, n))
