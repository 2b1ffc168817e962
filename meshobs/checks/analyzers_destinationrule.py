"""DestinationRule analyzers: a host no Service or ServiceEntry has (MSH0234), TLS origination
without server certificate verification at destination, subset or port level (MSH0235), and
DestinationRules for one host that Istio merges by dropping one's settings (MSH0236).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import DESTINATION_RULE, dr_host, pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .base import CouldNotCheck, Finding, Settings, analyzer, finding
from .inventory import (
    declared_service,
    has_service_entries,
    service_entries_for,
    service_of_host,
    services_of_hosts,
    visible_entries,
    vouches_for_services,
)


def _name(r: ConfigResource) -> str:
    return f"{r.namespace}/{r.name}"


@analyzer("config.destinationrule_host", Category.CONFIG, ("DestinationRule", "ServiceEntry", "Service"),
          ("MSH0234",), mesh=Mesh.ISTIO)
def destinationrule_host_not_found(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A DestinationRule is for a host that no Service or ServiceEntry visible from its
    namespace defines, so its policy and subsets apply to nothing (often a typo)."""
    judged, unjudged = 0, set()
    for dr in pick_resources(snapshot, DESTINATION_RULE):
        host = dr_host(dr)
        if not host or "*" in host:
            continue
        entries = service_entries_for(snapshot, host)
        if declared_service(snapshot, host) is not None or visible_entries(entries, dr.namespace):
            judged += 1
            continue
        named = service_of_host(host)
        namespace = named.namespace if named is not None else None
        if not entries and not (vouches_for_services(snapshot, namespace) if namespace is not None
                                else has_service_entries(snapshot)):
            unjudged.add(namespace or "external hosts")
            continue
        judged += 1
        yield finding("MSH0234", "config.destinationrule_host", resource=dr, at="spec.host",
                      services=services_of_hosts(snapshot, [host]), destination_rule=_name(dr), host=host,
                      namespace=dr.namespace, evidence={"host": host},
                      hint=f"fix the host (short names expand in namespace {dr.namespace}) or create the Service "
                           "or ServiceEntry it is meant for")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no Services of {', '.join(sorted(unjudged))}, so no DestinationRule "
                            "host could be looked up")


# -- TLS origination -----------------------------------------------------------------------------
def tls_settings(dr: ConfigResource) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(field path of ``tls``, where it applies as words, the settings) for every TLS block of a
    DestinationRule: top level, port level, subsets and their ports."""
    def walk(path: str, where: str, policy: Any) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        if not isinstance(policy, Mapping):
            return
        if isinstance(policy.get("tls"), Mapping):
            yield f"{path}.tls", where, policy["tls"]
        for j, pls in enumerate(policy.get("portLevelSettings") or ()):
            port = (pls.get("port") or {}).get("number") if isinstance(pls, Mapping) else None
            if isinstance(pls, Mapping) and isinstance(pls.get("tls"), Mapping):
                yield f"{path}.portLevelSettings[{j}].tls", f"{where} port {port}".strip(), pls["tls"]
    yield from walk("spec.trafficPolicy", "", dr.spec.get("trafficPolicy"))
    for i, subset in enumerate(dr.spec.get("subsets") or ()):
        if isinstance(subset, Mapping):
            yield from walk(f"spec.subsets[{i}].trafficPolicy", f"subset {subset.get('name')}",
                            subset.get("trafficPolicy"))


NETWORKING_KINDS = ("DestinationRule", "VirtualService", "Gateway", "ServiceEntry", "Sidecar")


def proves_verifying_istio(snapshot: MeshSnapshot) -> bool:
    """Does the input show Istio 1.22 or later? It does when it holds a ``networking.istio.io/v1``
    resource (first served by 1.22); from 1.20 on, a client without ``caCertificates`` verifies
    the server against the OS trust store (VERIFY_CERTIFICATE_AT_CLIENT, on by default)."""
    return any(r.api_version == "networking.istio.io/v1" for kind in NETWORKING_KINDS
               for r in snapshot.config_of(kind))


@analyzer("config.tls_verification", Category.CONFIG, (*NETWORKING_KINDS, "Service"), ("MSH0235",), mesh=Mesh.ISTIO)
def tls_without_verification(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A DestinationRule originates SIMPLE or MUTUAL TLS without verifying the server's
    certificate: ``insecureSkipVerify: true``, or no ``caCertificates``/``credentialName`` on an
    Istio that does not fall back to the OS trust store (IST0128 / IST0129)."""
    modern = proves_verifying_istio(snapshot)
    for dr in pick_resources(snapshot, DESTINATION_RULE):
        for path, where, tls in tls_settings(dr):
            mode = str(tls.get("mode") or "").upper()
            if mode not in ("SIMPLE", "MUTUAL"):
                continue
            if tls.get("insecureSkipVerify") is True:
                reason, at = "with insecureSkipVerify: true: the server's certificate is not verified at all", \
                    f"{path}.insecureSkipVerify"
            elif tls.get("caCertificates") or tls.get("credentialName") or modern:
                continue
            else:
                reason, at = ("without caCertificates or credentialName: Istio before 1.20 (or with "
                              "VERIFY_CERTIFICATE_AT_CLIENT=false) does not verify the server's certificate"), \
                    f"{path}.mode"
            host = dr_host(dr)
            yield finding("MSH0235", "config.tls_verification", resource=dr, at=at,
                          services=services_of_hosts(snapshot, [host]), destination_rule=_name(dr), mode=mode,
                          host=host, where=f" ({where})" if where else "", reason=reason,
                          evidence={"mode": mode, "level": "port" if "portLevelSettings" in path else "destination",
                                    "insecure_skip_verify": tls.get("insecureSkipVerify") is True},
                          hint="set caCertificates (a CA bundle path) or credentialName so the server is verified, "
                               "and subjectAltNames; istioctl analyze reports IST0128/IST0129")


# -- conflicting rules ---------------------------------------------------------------------------------
def _visible_in(dr: ConfigResource) -> frozenset[str] | None:
    """The namespaces a DestinationRule is exported to; None for every namespace."""
    export = [str(e) for e in dr.spec.get("exportTo") or ()]
    if not export or "*" in export:
        return None
    return frozenset(dr.namespace if e == "." else e for e in export if e != "~")


def _overlap(a: ConfigResource, b: ConfigResource) -> bool:
    va, vb = _visible_in(a), _visible_in(b)
    return va is None or vb is None or bool(va & vb)


def _selector_key(dr: ConfigResource) -> str:
    labels = (dr.spec.get("workloadSelector") or {}).get("matchLabels") if isinstance(
        dr.spec.get("workloadSelector"), Mapping) else None
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


@analyzer("config.destinationrule_conflict", Category.CONFIG, ("DestinationRule", "Service"), ("MSH0236",),
          mesh=Mesh.ISTIO)
def conflicting_destinationrules(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """Two DestinationRules of one namespace are for the same host (same or no workload
    selector, overlapping exportTo) and both set a top-level traffic policy or a subset of the
    same name: Istio merges them keeping the oldest one's, and ignores the other's."""
    groups: dict[tuple[str, str, str], list[ConfigResource]] = defaultdict(list)
    for dr in pick_resources(snapshot, DESTINATION_RULE):
        groups[(dr.namespace, dr_host(dr), _selector_key(dr))].append(dr)
    for (namespace, host, _sel), drs in sorted(groups.items()):
        for i, first in enumerate(drs):
            for second in drs[i + 1:]:
                if not _overlap(first, second):
                    continue
                clashes = []
                if first.spec.get("trafficPolicy") and second.spec.get("trafficPolicy"):
                    clashes.append("a top-level trafficPolicy")
                shared = sorted({str(s.get("name")) for s in first.spec.get("subsets") or () if isinstance(s, Mapping)}
                                & {str(s.get("name")) for s in second.spec.get("subsets") or ()
                                   if isinstance(s, Mapping)})
                clashes += [f"subset {s}" for s in shared]
                if not clashes:
                    continue
                names = [_name(first), _name(second)]
                yield finding("MSH0236", "config.destinationrule_conflict", resource=second, at="spec.host",
                              services=services_of_hosts(snapshot, [host]), destination_rules=" and ".join(names),
                              host=host, namespace=namespace, what=", ".join(clashes),
                              evidence={"destination_rules": names, "conflicts": clashes},
                              hint="keep one DestinationRule per host and namespace (or give them different "
                                   "workloadSelectors); subsets with different names merge fine")
