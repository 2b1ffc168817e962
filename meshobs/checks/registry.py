"""Every check and analyzer meshobs runs, in ONE explicit list (as Istio's ``analyzers/all.go``).

``meshobs checks`` lists it, ``diagnose --check/--skip`` select from it, and the engine runs it
in checklist order (category, then id). A check that is declared but not listed here never
runs; a test makes sure every declared check is listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from . import (
    analyzers_ambient,
    analyzers_appmesh,
    analyzers_authn,
    analyzers_authz,
    analyzers_deprecated,
    analyzers_destinationrule,
    analyzers_extensions,
    analyzers_gateway,
    analyzers_injection,
    analyzers_ports,
    analyzers_schema,
    analyzers_serviceentry,
    analyzers_sidecar,
    analyzers_virtualservice,
    appmesh,
    authz,
    certs,
    changes,
    config,
    config_idle_routes,
    config_mtls,
    config_refs,
    config_routes,
    config_vs,
    controlplane,
    delivery,
    egress,
    intended,
    proxy,
    retries,
    routing,
    traces,
    traffic,
)
from .base import AnyCheck

ALL: tuple[AnyCheck, ...] = (
    # proxy health
    proxy.sidecar_missing, proxy.not_ready, proxy.restarting, delivery.config_stale, proxy.warming,
    proxy.node_proxy,
    # the control plane (mesh-level: istiod, its sidecar injector)
    controlplane.istiod_ready, controlplane.istiod_pushes, controlplane.version_skew,
    controlplane.injector,
    # configuration: analyzers (judge resources)
    config.unknown_subset, config.empty_subset, config_vs.duplicate_virtualservice,
    config_vs.unreachable_rule, config_vs.conflicting_gateways,
    config_refs.host_not_found, config_refs.gateway_not_found, config_refs.selector_matches_nothing,
    # configuration: networking analyzers (schema, VirtualService, DestinationRule, Gateway, ...)
    analyzers_schema.schema, analyzers_deprecated.deprecated,
    analyzers_virtualservice.delegate_not_found, analyzers_virtualservice.destination_port,
    analyzers_virtualservice.host_not_in_gateway, analyzers_virtualservice.competing_gateway_virtualservices,
    analyzers_virtualservice.jwt_claim_without_authentication,
    analyzers_destinationrule.destinationrule_host_not_found, analyzers_destinationrule.tls_without_verification,
    analyzers_destinationrule.conflicting_destinationrules,
    analyzers_gateway.gateway_selector_matches_nothing, analyzers_gateway.gateway_port_not_exposed,
    analyzers_gateway.gateway_credential, analyzers_gateway.gateway_duplicate_certificate,
    analyzers_gateway.route_parent_not_found,
    analyzers_serviceentry.tcp_without_addresses, analyzers_serviceentry.conflicting_protocols,
    analyzers_extensions.telemetry_conflict, analyzers_extensions.envoyfilter_fragile,
    # configuration: security and workload analyzers (Sidecar, ambient, policies, injection, ports)
    analyzers_sidecar.sidecar_conflict, analyzers_ambient.ambient_ineffective,
    analyzers_authz.authz_identity, analyzers_authz.authz_requires_mtls, analyzers_authn.request_authentication,
    analyzers_injection.namespace_injection, analyzers_injection.proxy_image, analyzers_ports.port_protocol,
    # configuration: App Mesh analyzers
    analyzers_appmesh.routes, analyzers_appmesh.references, analyzers_appmesh.tls_trust,
    # configuration: service checks (config against proxies, Git and traffic)
    config_routes.weight_drift, config_routes.policy_drift, config_routes.intended_drift,
    config_routes.split_mismatch, config_idle_routes.idle_route,
    appmesh.split_mismatch, appmesh.undeclared_backend, appmesh.client_tls, appmesh.resilience,
    changes.change_before_onset,
    # certificates and identity
    certs.expiry, certs.spiffe_identity, certs.trust_domain,
    config_mtls.mtls_conflict, config_mtls.plaintext_edge,
    # traffic
    traffic.error_rate, traffic.latency, traffic.circuit_breaker, traffic.endpoints,
    retries.retries, retries.timeouts, intended.intended, authz.authorization, egress.egress,
    routing.no_route,
    # slow hops
    traces.slow_hop,
)


def _index(checks: Iterable[AnyCheck]) -> dict[str, AnyCheck]:
    out: dict[str, AnyCheck] = {}
    for c in checks:
        if c.id in out:
            raise ValueError(f"duplicate check id {c.id}")
        out[c.id] = c
    return out


REGISTRY: dict[str, AnyCheck] = _index(ALL)


def load() -> dict[str, AnyCheck]:
    """Every check and analyzer by id."""
    return REGISTRY


def checklist(checks: Iterable[AnyCheck] = ALL) -> list[AnyCheck]:
    """Checks in checklist order: category (proxy health first, slow hops last), then id."""
    return sorted(checks, key=lambda c: (c.category.order, c.id))


def configuration_only(checks: Iterable[AnyCheck]) -> list[AnyCheck]:
    """What ``--config-only`` runs: the analyzers and checks that need nothing but configuration
    (a run in CI on manifests, before anything is applied; not the control plane's)."""
    return [c for c in checks if tuple(c.needs) == ("config",)]


class UnknownCheck(ValueError):
    """A --check/--skip pattern that names no check (the message suggests close ids)."""


def _matches(pattern: str, c: AnyCheck) -> bool:
    # By id (globs welcome: "config.*"), or by a code it emits ("MSH0201"), or by kind.
    return fnmatchcase(c.id, pattern) or any(fnmatchcase(code, pattern) for code in c.codes) \
        or pattern in (c.kind, f"{c.kind}s")


def select(include: Sequence[str] = (), exclude: Sequence[str] = (),
           checks: Iterable[AnyCheck] = ALL) -> list[AnyCheck]:
    """The checks ``--check`` (any of ``include``; all when empty) keeps and ``--skip`` does not
    drop, in checklist order. A pattern matching nothing raises :class:`UnknownCheck`."""
    pool = checklist(checks)
    for pattern in (*include, *exclude):
        if not any(_matches(pattern, c) for c in pool):
            import difflib

            close = difflib.get_close_matches(pattern, [c.id for c in pool], n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; meshobs checks lists them"
            raise UnknownCheck(f"no check or analyzer matches {pattern!r}{hint}")
    kept = [c for c in pool if not include or any(_matches(p, c) for p in include)]
    return [c for c in kept if not any(_matches(p, c) for p in exclude)]
