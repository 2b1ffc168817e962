"""Deprecated and removed Istio fields, annotations and kinds (istioctl analyze's IST0002 and
IST0135), from lists that say where each entry comes from; nothing is flagged on a guess.

* **fields**: those the Istio API marks deprecated and that have a replacement in every release
  the vendored schemas cover (Istio 1.18): ``fault.delay.percent``, ``mirrorPercent`` /
  ``mirror_percent``, ``consistentHash.minimumRingSize``. (``warmupDurationSecs`` is deprecated
  only from the release that added ``warmup``, which 1.18 lacks: not flagged.)
* **annotations** on pods, pod templates and Istio resources: the ones Istio's annotation list
  marks deprecated, and those of the Mixer (``policy.istio.io/*``), removed in Istio 1.8.
* **kinds** Istio removed: ``rbac.istio.io`` (1.6), ``authentication.istio.io`` (1.6) and
  ``config.istio.io`` (Mixer, 1.8). They no longer do anything (and apply only where stale
  CRDs remain). ``networking.istio.io/v1alpha3`` is *not* flagged: Istio still serves it and has
  not deprecated it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.images import node_proxy_image
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, Pod, ServiceRef, Workload, istiod_labels

from .analyzers_schema import ISTIO_KINDS
from .base import Finding, Settings, analyzer, finding
from .scope import Focus

# annotation -> (status, what to use instead)
ANNOTATIONS: dict[str, tuple[str, str]] = {
    "sidecar.istio.io/inject": ("deprecated as an annotation", "use the label sidecar.istio.io/inject instead"),
    "sidecar.istio.io/statsInclusionPrefixes": (
        "deprecated", "use proxyStatsMatcher.inclusionPrefixes in the proxy.istio.io/config annotation"),
    "sidecar.istio.io/statsInclusionSuffixes": (
        "deprecated", "use proxyStatsMatcher.inclusionSuffixes in the proxy.istio.io/config annotation"),
    "sidecar.istio.io/statsInclusionRegexps": (
        "deprecated", "use proxyStatsMatcher.inclusionRegexps in the proxy.istio.io/config annotation"),
    "sidecar.istio.io/discoveryAddress": (
        "deprecated", "use discoveryAddress in the proxy.istio.io/config annotation"),
    "alpha.istio.io/canonical-serviceaccounts": ("deprecated", "remove it; Istio no longer reads it"),
    "alpha.istio.io/kubernetes-serviceaccounts": ("deprecated", "remove it; Istio no longer reads it"),
}
MIXER_ANNOTATIONS = "policy.istio.io/"  # check, checkRetries, lang ...: Mixer, removed in Istio 1.8
# group -> (kinds, the release that removed them, what replaces them)
REMOVED_GROUPS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "rbac.istio.io": (("ServiceRole", "ServiceRoleBinding", "RbacConfig", "ClusterRbacConfig"), "1.6",
                      "use a security.istio.io AuthorizationPolicy"),
    "authentication.istio.io": (("Policy", "MeshPolicy"), "1.6",
                                "use a security.istio.io PeerAuthentication or RequestAuthentication"),
    "config.istio.io": (("rule", "handler", "instance", "attributemanifest", "adapter", "template",
                         "QuotaSpec", "QuotaSpecBinding", "HTTPAPISpec", "HTTPAPISpecBinding"), "1.8",
                        "use Telemetry resources and WasmPlugins (Mixer is gone)"),
}
REMOVED_KINDS = tuple(k for kinds, _r, _w in REMOVED_GROUPS.values() for k in kinds)


def _route_fields(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(path, field as written, replacement) of the deprecated fields in a VirtualService."""
    for i, rule in enumerate(spec.get("http") or ()):
        if not isinstance(rule, Mapping):
            continue
        delay = (rule.get("fault") or {}).get("delay") if isinstance(rule.get("fault"), Mapping) else None
        if isinstance(delay, Mapping) and "percent" in delay:
            yield f"spec.http[{i}].fault.delay.percent", "fault.delay.percent", "use fault.delay.percentage.value"
        for name in ("mirrorPercent", "mirror_percent"):
            if name in rule:
                yield f"spec.http[{i}].{name}", name, "use mirrorPercentage.value"


def _policies(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, traffic policy) of a DestinationRule: top level, port level, subsets."""
    def with_ports(path: str, policy: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if isinstance(policy, Mapping):
            yield path, policy
            for j, pls in enumerate(policy.get("portLevelSettings") or ()):
                if isinstance(pls, Mapping):
                    yield f"{path}.portLevelSettings[{j}]", pls
    yield from with_ports("spec.trafficPolicy", spec.get("trafficPolicy"))
    for i, subset in enumerate(spec.get("subsets") or ()):
        if isinstance(subset, Mapping):
            yield from with_ports(f"spec.subsets[{i}].trafficPolicy", subset.get("trafficPolicy"))


def _rule_fields(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    for path, policy in _policies(spec):
        lb = policy.get("loadBalancer")
        hashing = lb.get("consistentHash") if isinstance(lb, Mapping) else None
        if isinstance(hashing, Mapping) and "minimumRingSize" in hashing:
            yield (f"{path}.loadBalancer.consistentHash.minimumRingSize", "consistentHash.minimumRingSize",
                   "use consistentHash.ringHash.minimumRingSize")


REMOVED = "removed"  # a status that starts so is MSH0249, anything else MSH0244


def _code(status: str) -> str:
    return "MSH0249" if status.startswith(REMOVED) else "MSH0244"


def _annotation(key: str) -> tuple[str, str] | None:
    if key in ANNOTATIONS:
        return ANNOTATIONS[key]
    if key.startswith(MIXER_ANNOTATIONS):
        return f"{REMOVED} with the Mixer in Istio 1.8", "remove it; nothing reads it any more"
    return None


@analyzer("config.deprecated", Category.CONFIG, (*ISTIO_KINDS, *REMOVED_KINDS, "Workload", "Pod"),
          ("MSH0244", "MSH0249"), mesh=Mesh.ISTIO)
def deprecated(snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterable[Finding]:
    """A resource uses an Istio field, annotation or kind that Istio deprecated (MSH0244, info: it
    still works) or removed (MSH0249, warning: nothing reads it any more)."""
    if focus is not None:
        # Only a workload's findings touch services (its own); a resource's or a pod's touch none.
        for w in snapshot.workloads:
            if w.annotations and focus.touches(w.services) and not _istios_own(snapshot, w):
                yield from _workload_findings(w)
        return
    for kind in ISTIO_KINDS:
        for r in pick_resources(snapshot, kind):
            fields = _route_fields(r.spec) if kind == "VirtualService" else (
                _rule_fields(r.spec) if kind == "DestinationRule" else iter(()))
            for path, written, replacement in fields:
                yield _finding(r, path, f"field {written}", "deprecated", replacement)
            yield from _annotations_of(r)
    for group, (kinds, release, replacement) in REMOVED_GROUPS.items():
        for kind in kinds:
            for r in pick_resources(snapshot, kind):
                if r.api_version.split("/", 1)[0] == group:
                    yield _finding(r, "", f"kind {kind} of {group}", f"{REMOVED} in Istio {release}",
                                   replacement)
    for w in snapshot.workloads:
        if w.annotations and not _istios_own(snapshot, w):  # no annotation, nothing to report
            yield from _workload_findings(w)
    templated = {w.ref for w in snapshot.workloads if w.annotations}
    for pod in snapshot.pods:
        if pod.workload in templated or _istios_own_pod(pod):
            continue  # reported once, on its workload; Istio's own: see _istios_own
        for key in sorted(pod.annotations):
            found = _annotation(key)
            if found:
                yield _topology_finding(f"Pod {pod.namespace}/{pod.name}", (), f"annotation {key}", *found)


def _istios_own(snapshot: MeshSnapshot, w: Workload) -> bool:
    """Is ``w`` one of Istio's own, whose pod template Istio's charts write: istiod (its labels)
    or ambient's node proxy, ztunnel (its template's proxy image), or a workload every pod of
    which is one? Both charts write the deprecated ``sidecar.istio.io/inject`` annotation on their
    pods (istiod's, ztunnel's 1.24): nothing a user of the mesh can change, so not reported on a
    healthy mesh (every Istio mesh)."""
    if istiod_labels(w.labels) or node_proxy_image(w.proxy_image):
        return True
    pods = snapshot.pods_of(w.ref)
    return bool(pods) and all(_istios_own_pod(p) for p in pods)


def _istios_own_pod(pod: Pod) -> bool:
    return pod.node_proxy or istiod_labels(pod.labels)


def _workload_findings(w: Workload) -> Iterator[Finding]:
    for key in sorted(w.annotations):
        found = _annotation(key)
        if found:
            yield _topology_finding(f"Workload {w.ref}", w.services, f"annotation {key}", *found)


def _topology_finding(subject: str, services: Iterable[ServiceRef], what: str, status: str,
                      replacement: str) -> Finding:
    return finding(_code(status), "config.deprecated", subject, services=services, name=subject, what=what,
                   status=status, replacement=replacement, evidence={"what": what, "status": status},
                   hint=f"{replacement}; istioctl analyze reports IST0135")


def _annotations_of(r: ConfigResource) -> Iterator[Finding]:
    for key in sorted(r.annotations):
        found = _annotation(key)
        if found:
            yield _finding(r, "metadata.annotations", f"annotation {key}", *found)


def _finding(r: ConfigResource, path: str, what: str, status: str, replacement: str) -> Finding:
    return finding(_code(status), "config.deprecated", resource=r, at=path, what=what, status=status,
                   replacement=replacement, name=f"{r.kind} {r.namespace}/{r.name}",
                   evidence={"what": what, "status": status, "api_version": r.api_version},
                   hint=f"{replacement}; istioctl analyze reports IST0002 / IST0135")
