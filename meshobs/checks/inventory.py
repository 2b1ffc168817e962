"""What the input can vouch for, so an analyzer never calls a reference broken on missing data.

A directory of manifests rarely holds the whole cluster: the Istio configuration may live in
one repository and the Services in another, the ingress Gateway in a Helm release. "Host not
found" is only true when the input holds the namespace's Services; "selector matches no pod"
only when it holds the namespace's workloads. So the rule, for every kind: the input vouches
for a namespace when it holds at least one object of that kind there, or when the live
Kubernetes API was listed there (it lists every mesh kind in the namespaces whose configuration
it reads: all of them, or a question's neighbourhood, see ``config_listed``). References
into namespaces it does not vouch for are not judged; an analyzer that could judge none of its
references says so (``CouldNotCheck``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.istio_config import DOMAIN, SERVICE_ENTRY, exported_to, fqdn, host_matches, pick_resources, vs_hosts
from meshobs.model import ConfigResource, MeshSnapshot, Service, ServiceRef, SourceState

from .base import memo

CLUSTER_SUFFIX = f".svc.{DOMAIN}"


def _declared(snapshot: MeshSnapshot) -> dict[str, Service]:
    """FQDN -> Service for the services a Service object declared (not those implied by
    traffic or by a VirtualService host)."""
    out: dict[str, Service] = {}
    for s in snapshot.services:
        if s.origin:
            out[s.fqdn] = s
            for h in s.hosts:
                out.setdefault(fqdn(h, s.namespace), s)
    return out


def declared_service(snapshot: MeshSnapshot, host: str) -> Service | None:
    """The declared Service answering to ``host`` (an FQDN)."""
    return memo(snapshot, "inventory.declared", _declared).get(host)


LIVE = "kubernetes"  # the origin of what the live Kubernetes API returned


def _live_namespaces(snapshot: MeshSnapshot) -> frozenset[str]:
    """Namespaces the live Kubernetes API was listed in: those where it returned a Service."""
    if not any(s.kind == LIVE and s.ok for s in snapshot.sources):
        return frozenset()
    return frozenset(s.namespace for s in snapshot.services if s.origin == LIVE)


def _service_namespaces(snapshot: MeshSnapshot) -> frozenset[str]:
    return frozenset(s.namespace for s in snapshot.services if s.origin) | _live_namespaces(snapshot)


def vouches_for_services(snapshot: MeshSnapshot, namespace: str) -> bool:
    """Does the input hold the Services of ``namespace``?"""
    return namespace in memo(snapshot, "inventory.service_namespaces", _service_namespaces)


def vouches_for_config(snapshot: MeshSnapshot, kind: str, namespace: str) -> bool:
    """Does the input hold the ``kind`` resources of ``namespace`` (any layer)? The live API
    vouches only for the kinds it lists (not Secrets), in the namespaces whose configuration it
    listed (:func:`config_listed`)."""
    return (any(r.namespace == namespace for r in snapshot.config_of(kind))
            or (kind not in NOT_LISTED_LIVE and lives_in(snapshot, namespace) and config_listed(snapshot, namespace)))


# Kinds the live Kubernetes collector never lists (a Secret's data is not meshobs' to read).
NOT_LISTED_LIVE = frozenset({"Secret"})


def _config_limits(snapshot: MeshSnapshot) -> list[frozenset[str]] | None:
    limits: list[frozenset[str]] = []
    for s in snapshot.sources:
        if s.kind != LIVE or s.state is SourceState.ERROR:
            continue
        if s.config_namespaces is None:
            return None
        limits.append(frozenset(s.config_namespaces))
    return limits or None


def config_listed(snapshot: MeshSnapshot, namespace: str) -> bool:
    """Was the mesh configuration of ``namespace`` listed, as far as the live API goes? False
    only where the live API listed configuration in some namespaces and not this one (a
    question about one service collects its neighbourhood's; ``sources.kubernetes.namespaces``).
    Manifests, and a snapshot without the live API, restrict nothing here."""
    limits = memo(snapshot, "inventory.config_limits", _config_limits)
    return limits is None or any(namespace in ns for ns in limits)


def config_listed_everywhere(snapshot: MeshSnapshot) -> bool:
    """Was the mesh configuration of every namespace listed (a resource that may live anywhere,
    a ServiceEntry exported to all, is missing for sure only then)?"""
    return memo(snapshot, "inventory.config_limits", _config_limits) is None


def _labels_by_namespace(snapshot: MeshSnapshot) -> dict[str, list[Mapping[str, Any]]]:
    """Label sets of the pods (live) and of the workloads' pod templates (manifests), by
    namespace. Workloads implied by traffic carry no labels and do not count."""
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for p in snapshot.pods:
        out[p.namespace].append(p.labels)
    for w in snapshot.workloads:
        if w.labels:
            out[w.namespace].append(w.labels)
    return dict(out)


def pod_labels(snapshot: MeshSnapshot, namespace: str) -> list[Mapping[str, Any]] | None:
    """The label sets of ``namespace``'s pods, or None when the input does not hold them."""
    found = memo(snapshot, "inventory.labels", _labels_by_namespace).get(namespace)
    if found is None and namespace in memo(snapshot, "inventory.live_namespaces", _live_namespaces):
        return []  # listed live, and no pod runs there
    return found


def selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A Kubernetes equality selector: every key present with the same value."""
    return all(str(labels.get(k)) == str(v) for k, v in selector.items())


def _service_entries(snapshot: MeshSnapshot) -> list[tuple[ConfigResource, list[str]]]:
    return [(se, [fqdn(str(h), se.namespace) for h in se.spec.get("hosts") or ()])
            for se in pick_resources(snapshot, SERVICE_ENTRY)]


def service_entries_for(snapshot: MeshSnapshot, host: str) -> list[ConfigResource]:
    """ServiceEntries whose hosts cover ``host``, wherever they are exported."""
    return [se for se, hosts in memo(snapshot, "inventory.service_entries", _service_entries)
            if any(host_matches(h, host) or h == host for h in hosts)]


def has_service_entries(snapshot: MeshSnapshot) -> bool:
    return bool(memo(snapshot, "inventory.service_entries", _service_entries))


def visible_entries(entries: Iterable[ConfigResource], namespace: str) -> list[ConfigResource]:
    """The ServiceEntries a resource in ``namespace`` can see (``exportTo``)."""
    return [se for se in entries if exported_to(se, namespace)]


def _by_fqdn(snapshot: MeshSnapshot) -> dict[str, ServiceRef]:
    return {s.fqdn: s.ref for s in snapshot.services if not s.ref.is_unknown}


def service_of_host(host: str) -> ServiceRef | None:
    """The Service ``name.ns.svc.cluster.local`` names; None for a name outside the cluster."""
    if not host.endswith(CLUSTER_SUFFIX):
        return None
    parts = host[: -len(CLUSTER_SUFFIX)].split(".")
    return ServiceRef(parts[1], parts[0]) if len(parts) == 2 else None


def services_of_hosts(snapshot: MeshSnapshot, hosts: Iterable[str]) -> list[ServiceRef]:
    """The services (declared or implied) that answer to any of ``hosts`` (FQDN patterns).

    Only in-cluster names count: a gateway's ``*`` or ``www.example.com`` names no service of
    the mesh.
    """
    index = memo(snapshot, "inventory.by_fqdn", _by_fqdn)
    found: dict[ServiceRef, None] = {}
    for pattern in hosts:
        if not pattern.endswith(CLUSTER_SUFFIX):
            continue
        if pattern.startswith("*"):
            found.update((ref, None) for name, ref in index.items() if host_matches(pattern, name))
            continue
        # name.namespace.svc.cluster.local names its service, known to the snapshot or not.
        named = service_of_host(pattern)
        if named is not None:
            found[index.get(pattern, named)] = None
    return sorted(found)


def touched_by(snapshot: MeshSnapshot, vs: ConfigResource) -> list[ServiceRef]:
    """The services a VirtualService shapes traffic for: those its hosts name."""
    return services_of_hosts(snapshot, vs_hosts(vs))


def pod_labels_everywhere(snapshot: MeshSnapshot) -> dict[str, list[Mapping[str, Any]]]:
    """Namespace -> the label sets of its pods and pod templates, for every namespace the input
    holds workloads in (selectors that reach across namespaces, such as a Gateway's)."""
    return memo(snapshot, "inventory.labels", _labels_by_namespace)


def lives_in(snapshot: MeshSnapshot, namespace: str) -> bool:
    """Was the live Kubernetes API listed in ``namespace``?"""
    return namespace in memo(snapshot, "inventory.live_namespaces", _live_namespaces)
