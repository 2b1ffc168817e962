"""Sidecar resources that compete: several without a workload selector in one namespace
(MSH0250, istioctl analyze IST0111), several whose selectors pick the same pods (MSH0251,
IST0110). Istio applies one Sidecar per proxy and ignores the others, so the egress limits or
ingress ports someone wrote silently do not apply. (A selector matching no pod is MSH0225.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .base import CouldNotCheck, Finding, Settings, analyzer, finding
from .dataplane import NAMESPACE, Member, listing, members, services_of
from .inventory import selects

SIDECAR = "Sidecar"


def _name(r: ConfigResource) -> str:
    return f"{r.namespace}/{r.name}"


def workload_selector(r: ConfigResource) -> dict[str, str] | None:
    """A Sidecar's ``workloadSelector.labels`` (None when it has none: it is the namespace's)."""
    block = r.spec.get("workloadSelector")
    labels = block.get("labels") if isinstance(block, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) and labels else None


@analyzer("config.sidecar_conflict", Category.CONFIG, (SIDECAR, NAMESPACE, "Workload", "Pod"), ("MSH0250", "MSH0251"),
          mesh=Mesh.ISTIO)
def sidecar_conflict(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """Sidecar resources compete for the same proxies: several without a workload selector in
    one namespace, or several whose selectors pick the same pods (IST0111 / IST0110)."""
    defaults: dict[str, list[ConfigResource]] = defaultdict(list)
    selecting: dict[str, list[ConfigResource]] = defaultdict(list)
    for sc in pick_resources(snapshot, SIDECAR):
        (selecting if workload_selector(sc) else defaults)[sc.namespace].append(sc)
    for namespace, found in sorted(defaults.items()):
        if len(found) < 2:
            continue
        names = [_name(sc) for sc in found]
        touched = services_of(members(snapshot, namespace) or [])
        for sc in found:
            yield finding("MSH0250", "config.sidecar_conflict", resource=sc, at="spec", services=touched,
                          sidecars=", ".join(names), namespace=namespace, evidence={"sidecars": names},
                          hint="keep one Sidecar without workloadSelector per namespace (merge their egress and "
                               "ingress); istioctl analyze reports IST0111")
    judged, unjudged = bool(defaults), set()
    for namespace, found in sorted(selecting.items()):
        pods = members(snapshot, namespace) if len(found) > 1 else []
        if pods is None:
            unjudged.add(namespace)
            continue
        judged = True
        yield from _overlaps(found, pods)
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no workloads in {', '.join(sorted(unjudged))}, so no overlap of "
                            "Sidecar selectors could be seen")


def _overlaps(sidecars: list[ConfigResource], pods: list[Member]) -> Iterable[Finding]:
    clashes: dict[tuple[tuple[str, str, str], ...], list[Member]] = defaultdict(list)
    for m in pods:
        matching = [sc for sc in sidecars if selects(workload_selector(sc) or {}, m.labels)]
        if len(matching) > 1:
            clashes[tuple(sc.key for sc in matching)].append(m)
    index = {sc.key: sc for sc in sidecars}
    for keys, who in sorted(clashes.items()):
        found = [index[k] for k in keys]
        names = [_name(sc) for sc in found]
        subjects = sorted(m.subject.split(" ", 1)[1] for m in who)
        evidence: dict[str, Any] = {"sidecars": names, "workloads": subjects}
        for sc in found:
            yield finding("MSH0251", "config.sidecar_conflict", resource=sc, at="spec.workloadSelector",
                          services=services_of(who), sidecars=", ".join(names),
                          workload=listing(subjects),
                          evidence=evidence,
                          hint="give the Sidecars disjoint workloadSelectors (or merge them); istioctl analyze "
                               "reports IST0110")
