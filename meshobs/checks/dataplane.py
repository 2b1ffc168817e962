"""Which data plane each workload runs on: a sidecar, ambient (ztunnel, maybe a waypoint), or none.

Istio decides it from labels, in this order: a pod that has (or is to be injected with) an
``istio-proxy`` sidecar is a sidecar pod, whatever else says; otherwise the pod's own
``istio.io/dataplane-mode`` label, else its namespace's, puts it in ambient (``ambient``) or out
(``none``). Injection comes from the pod's ``sidecar.istio.io/inject`` label, else the
namespace's ``istio-injection`` label, else a revision label (``istio.io/rev``) on the namespace or
the pod.

The analyzers of Sidecars, policies, injection and ports share these answers; the Namespaces
come from the input (kind ``Namespace``, see ``collectors.k8s_objects.namespace_resource``), and a
namespace whose Namespace object the input lacks has unknown labels: nothing is concluded from
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshobs.collectors.k8s_objects import ALL_NAMESPACES
from meshobs.istio_config import GATEWAY, ROOT_NAMESPACE, pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, Pod, ServiceRef, SourceLocation, Workload, WorkloadRef
from meshobs.model.gateway import gateway_kind

from .analyzers_gateway import gateway_selector
from .base import memo
from .inventory import selects
from .meshconfig import root_namespace

NAMESPACE = "Namespace"
INJECTION = "istio-injection"
REVISION = "istio.io/rev"
DATAPLANE_MODE = "istio.io/dataplane-mode"
USE_WAYPOINT = "istio.io/use-waypoint"
INJECT = "sidecar.istio.io/inject"
SIDECAR, AMBIENT, NONE = "sidecar", "ambient", "none"
# Namespaces that are never part of an application mesh (Kubernetes' own).
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


def namespaces(snapshot: MeshSnapshot) -> dict[str, ConfigResource]:
    """The Namespace objects of the input, by name."""
    return memo(snapshot, "dataplane.namespaces", lambda s: {r.name: r for r in pick_resources(s, NAMESPACE)})


def namespace_labels(snapshot: MeshSnapshot, namespace: str) -> Mapping[str, str] | None:
    """The labels of ``namespace``, or None when the input does not hold its Namespace object."""
    found = namespaces(snapshot).get(namespace)
    return dict(found.labels) if found is not None else None


def injects(labels: Mapping[str, Any]) -> bool:
    """Does a namespace with these labels inject sidecars?"""
    if labels.get(INJECTION) is not None:
        return str(labels[INJECTION]) == "enabled"
    return bool(labels.get(REVISION))


def is_ambient(labels: Mapping[str, Any]) -> bool:
    return str(labels.get(DATAPLANE_MODE, "")) == AMBIENT


def mode_of(ns_labels: Mapping[str, Any] | None, labels: Mapping[str, Any], has_sidecar: bool | None) -> str | None:
    """``sidecar``, ``ambient`` or ``none`` for a pod (or pod template) with ``labels`` in a
    namespace with ``ns_labels``; None when the input cannot tell (the namespace's labels are
    unknown and the pod shows neither a sidecar nor a label deciding it)."""
    if has_sidecar:
        return SIDECAR
    own = labels.get(INJECT)
    if own is not None and str(own).lower() == "true":
        return SIDECAR
    if own is None and ns_labels is not None and injects(ns_labels):
        return SIDECAR
    if own is None and labels.get(REVISION) and not (ns_labels or {}).get(INJECTION):
        return SIDECAR
    if labels.get(DATAPLANE_MODE) is not None:
        return AMBIENT if str(labels[DATAPLANE_MODE]) == AMBIENT else NONE
    if ns_labels is None:
        # A live pod without a sidecar may still be ambient (its namespace says): unknown.
        return None
    return AMBIENT if is_ambient(ns_labels) else NONE


@dataclass(frozen=True)
class Member:
    """A workload (or a pod without one) as the policies see it: its labels and data plane."""

    namespace: str
    subject: str  # "Workload ns/name" or "Pod ns/name"
    labels: Mapping[str, Any]
    mode: str | None
    service_account: str | None
    services: tuple[ServiceRef, ...]
    workload: WorkloadRef | None
    location: SourceLocation | None


def istio_sidecar(pod: Pod) -> bool:
    """Does the pod run Istio's sidecar (in its containers, or as a native sidecar among its init
    containers), rather than App Mesh's ``envoy`` or none?"""
    return pod.has_sidecar and ("istio-proxy" in pod.containers or "envoy" not in pod.containers)


def _members(snapshot: MeshSnapshot) -> dict[str, list[Member]]:
    out: dict[str, list[Member]] = {}
    # Workloads implied by traffic carry no labels: they are no evidence of what runs.
    templated = {w.ref: w for w in snapshot.workloads if w.labels}
    pods_of: dict[WorkloadRef, list[Any]] = {}
    for p in snapshot.pods:
        if p.workload is not None:
            pods_of.setdefault(p.workload, []).append(p)
    for ref, w in sorted(templated.items()):
        out.setdefault(w.namespace, []).append(_workload_member(snapshot, w, pods_of.get(ref, [])))
    for p in snapshot.pods:
        if p.workload is not None and p.workload in templated:
            continue
        out.setdefault(p.namespace, []).append(_pod_member(snapshot, p))
    return out


def _workload_member(snapshot: MeshSnapshot, w: Workload, pods: list[Any]) -> Member:
    """A workload with a pod template (labels), as the policies see it, from it and its pods."""
    if w.mesh is Mesh.APPMESH:
        has_sidecar: bool | None = False  # App Mesh's Envoy: not Istio's data plane
    elif (w.meshed and w.mesh is Mesh.ISTIO) or any(istio_sidecar(p) for p in pods):
        has_sidecar = True
    else:
        has_sidecar = False if pods else None
    labels = dict(w.labels)
    mode = mode_of(namespace_labels(snapshot, w.namespace), labels, has_sidecar)
    return Member(w.namespace, f"Workload {w.ref}", labels, mode,
                  w.service_account or (pods[0].service_account if pods else None) or "default", w.services, w.ref,
                  w.location)


def _pod_member(snapshot: MeshSnapshot, p: Pod) -> Member:
    """A pod without a templated workload, as the policies see it."""
    labels = dict(p.labels)
    return Member(p.namespace, f"Pod {p.namespace}/{p.name}", labels,
                  mode_of(namespace_labels(snapshot, p.namespace), labels, istio_sidecar(p)),
                  p.service_account or "default",
                  tuple(snapshot.services_of(p.workload)) if p.workload else (), p.workload, p.location)


def members_of(snapshot: MeshSnapshot, workloads: Iterable[WorkloadRef]) -> dict[WorkloadRef, Member]:
    """The member standing for each of ``workloads`` among :func:`members` of its namespace --
    its own (templated), else its last pod's -- built for these alone: a question about a few
    services need not have every workload of a big mesh judged."""
    wanted = set(workloads)
    templated = {ref: w for ref in wanted if (w := snapshot.workload(ref)) is not None and w.labels}
    pods_of: dict[WorkloadRef, list[Any]] = {}
    for p in snapshot.pods:
        if p.workload in wanted:
            pods_of.setdefault(p.workload, []).append(p)
    out = {ref: _workload_member(snapshot, w, pods_of.get(ref, [])) for ref, w in templated.items()}
    for ref, pods in pods_of.items():
        if ref not in templated:
            out[ref] = _pod_member(snapshot, pods[-1])
    return out


def members(snapshot: MeshSnapshot, namespace: str) -> list[Member] | None:
    """The workloads (and stray pods) of ``namespace``, or None when the input holds none there
    (then no selector or service account can be judged in it)."""
    found = memo(snapshot, "dataplane.members", _members).get(namespace)
    if found is None:
        from .inventory import lives_in

        return [] if lives_in(snapshot, namespace) else None
    return found


def selected(snapshot: MeshSnapshot, namespace: str, selector: Mapping[str, Any] | None) -> list[Member] | None:
    """The members of ``namespace`` a workload selector picks (all of them without one); None
    when the input does not hold the namespace's workloads."""
    found = members(snapshot, namespace)
    if found is None:
        return None
    return [m for m in found if not selector or selects(selector, m.labels)]


def gateway_kind_of(snapshot: MeshSnapshot, labels: Mapping[str, Any], workload: WorkloadRef | None = None,
                    node_ids: Iterable[str] = ()) -> str | None:
    """:func:`meshobs.model.gateway.gateway_kind` of a workload (or pod) with these labels: its
    proxies' node ids (when ``workload`` is given; ``node_ids`` adds others, such as istiod's
    word for the proxy type) and whether a Gateway selects it are looked up in the snapshot.

    Analyzers give no ``workload``: they judge configuration (labels and Gateway selectors), so
    manifests alone get the same verdict; checks and the engine's scope, which read proxies,
    give it."""
    selectors = memo(snapshot, "dataplane.gateway_selectors",
                     lambda s: [sel for gw in pick_resources(s, GATEWAY) if (sel := gateway_selector(gw))])
    nodes = [str(p.node_id or "") for p in snapshot.proxies_of(workload)] if workload is not None else []
    nodes += node_ids
    return gateway_kind(labels, nodes, selected=any(selects(sel, labels) for sel in selectors))


def is_gateway_of(snapshot: MeshSnapshot, labels: Mapping[str, Any], workload: WorkloadRef | None = None) -> bool:
    """Is this a gateway (:func:`gateway_kind_of` is not None; an analyzer gives no
    ``workload``)? A gateway's protocols come from its Gateway servers, not its Service's port
    names."""
    return gateway_kind_of(snapshot, labels, workload) is not None


def listing(names: Iterable[str], limit: int = 3) -> str:
    """``a, b, c and 4 more``: names in a message, bounded."""
    found = sorted(names)
    return ", ".join(found[:limit]) + (f" and {len(found) - limit} more" if len(found) > limit else "")


def services_of(found: Iterable[Member]) -> list[ServiceRef]:
    return sorted({s for m in found for s in m.services})


def _used_namespaces(snapshot: MeshSnapshot, kinds: Iterable[str]) -> set[str]:
    """Namespaces holding a Service, a workload, a pod or a resource of ``kinds``."""
    used = {s.namespace for s in snapshot.services if s.origin} | {w.namespace for w in snapshot.workloads if w.labels}
    used |= {p.namespace for p in snapshot.pods}
    for kind in kinds:
        used |= {r.namespace for r in pick_resources(snapshot, kind) if r.namespace}
    return used


def known_namespaces(snapshot: MeshSnapshot, kinds: Iterable[str]) -> set[str]:
    """Every namespace the input shows to exist: those with a Namespace object or holding an
    object (of the topology or of ``kinds``), and the ones every Istio cluster has."""
    return set(namespaces(snapshot)) | {ROOT_NAMESPACE, root_namespace(snapshot), "default", *SYSTEM_NAMESPACES} | \
        _used_namespaces(snapshot, kinds)


def lists_every_namespace(snapshot: MeshSnapshot) -> bool:
    """Does the input vouch for the complete list of namespaces? Only the live API's
    cluster-wide Namespace list does: manifests (even declaring their Namespaces) describe part
    of a cluster, and a listing restricted to some namespaces says nothing of the others."""
    return any(r.origin == ALL_NAMESPACES for r in namespaces(snapshot).values())


def near_miss(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is most likely a typo of (one or two letters off, the names
    being long enough for that to mean something), or None."""
    import difflib

    candidates = [k for k in known if k != name and min(len(k), len(name)) >= 4 and abs(len(k) - len(name)) <= 2]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    return close[0] if close else None
