"""Injection: is each namespace in the mesh the way its labels and its pods say?

* MSH0260 (istioctl analyze's IST0102, made precise): a namespace neither injected nor ambient,
  none of whose workloads has a proxy, holds policies that only proxies enforce
  (AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Sidecar, Telemetry,
  EnvoyFilter, WasmPlugin). istioctl reports every namespace without an injection label; a
  namespace deliberately outside the mesh is healthy, so meshobs speaks only when the
  namespace's own configuration says it was meant to be in;
* MSH0261 (IST0123): both ``istio-injection`` and ``istio.io/rev`` (the first wins), or injection
  together with ``istio.io/dataplane-mode=ambient`` (sidecars win, the namespace is not ambient);
* MSH0262 (IST0158 / IST0105): the proxies of one namespace run different images, i.e. some pods
  were not restarted after an upgrade (a pod pinning its image with the
  ``sidecar.istio.io/proxyImage`` annotation is left alone);
* MSH0263 (IST0146 / IST0147): a pod template asks the injector for its proxy image
  (``image: auto``) where no injection happens, so the pods pull an image named ``auto``.

A pod without a sidecar in an injected namespace (IST0103) is MSH0101, the proxy-health check
(it needs the pods; the ambient data plane is no reason for it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.istio_config import PEER_AUTHENTICATION, pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, Pod, ServiceRef, SourceLocation

from ..words import plural
from .base import CouldNotCheck, Finding, Settings, analyzer, finding
from .dataplane import (
    AMBIENT,
    DATAPLANE_MODE,
    INJECT,
    INJECTION,
    NAMESPACE,
    NONE,
    REVISION,
    SYSTEM_NAMESPACES,
    injects,
    is_ambient,
    istio_sidecar,
    listing,
    members,
    namespace_labels,
    namespaces,
    services_of,
)
from .meshconfig import root_namespace

# Kinds only a proxy of the namespace's own workloads enforces.
PROXY_POLICIES = ("AuthorizationPolicy", PEER_AUTHENTICATION, "RequestAuthentication", "Sidecar", "Telemetry",
                  "EnvoyFilter", "WasmPlugin")
PROXY_IMAGE_ANNOTATION = "sidecar.istio.io/proxyImage"
AUTO = "auto"


def _namespace_subject(ns: ConfigResource) -> str:
    return f"Namespace {ns.name}"


@analyzer("config.namespace_injection", Category.CONFIG, (NAMESPACE, *PROXY_POLICIES, "Workload", "Pod", "MeshConfig"),
          ("MSH0260", "MSH0261"), mesh=Mesh.ISTIO)
def namespace_injection(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A namespace outside the mesh holds policies only proxies enforce (IST0102), or its labels
    ask for injection twice over or for both sidecars and ambient (IST0123)."""
    policies: dict[str, list[ConfigResource]] = defaultdict(list)
    for kind in PROXY_POLICIES:
        for r in pick_resources(snapshot, kind):
            policies[r.namespace].append(r)
    root = root_namespace(snapshot)
    for name, ns in sorted(namespaces(snapshot).items()):
        labels = dict(ns.labels)
        yield from _conflicting_labels(snapshot, ns, labels)
        if name in SYSTEM_NAMESPACES or name == root or injects(labels) or is_ambient(labels):
            continue
        found = members(snapshot, name)
        here = policies.get(name, [])
        if not found or not here or any(m.mode not in (NONE, None) for m in found):
            continue  # nothing runs there, nothing to enforce, or some workload has a proxy
        if any(m.mode is None for m in found):
            continue
        kinds = sorted({f"{r.kind} {r.name}" for r in here})
        yield finding("MSH0260", "config.namespace_injection", _namespace_subject(ns), resource=ns,
                      at="metadata.labels" if labels else "metadata", services=services_of(found), namespace=name,
                      workload_count=len(found), resources=listing(kinds, 4),
                      evidence={"labels": labels, "policies": kinds, "workloads": sorted(m.subject for m in found)},
                      hint=f"kubectl label namespace {name} istio-injection=enabled (or istio.io/rev=<revision>, "
                           "or istio.io/dataplane-mode=ambient) and restart its workloads; or delete the policies if "
                           "the namespace is meant to stay outside the mesh. istioctl analyze reports IST0102")


def _conflicting_labels(snapshot: MeshSnapshot, ns: ConfigResource, labels: dict[str, str]) -> Iterable[Finding]:
    problems: list[tuple[str, str]] = []
    if labels.get(INJECTION) is not None and labels.get(REVISION):
        problems.append((f"{INJECTION}={labels[INJECTION]} and {REVISION}={labels[REVISION]}",
                         f"{INJECTION} takes precedence and the revision label is ignored, so the pods are not "
                         f"injected by revision {labels[REVISION]}"))
    if injects(labels) and is_ambient(labels):
        which = f"{INJECTION}={labels[INJECTION]}" if labels.get(INJECTION) else f"{REVISION}={labels[REVISION]}"
        problems.append((f"{which} and {DATAPLANE_MODE}={AMBIENT}",
                         "injected pods get sidecars and ztunnel leaves pods with a sidecar alone, so the namespace "
                         "is not ambient"))
    for text, consequence in problems:
        yield finding("MSH0261", "config.namespace_injection", _namespace_subject(ns), resource=ns,
                      at="metadata.labels", services=services_of(members(snapshot, ns.name) or []),
                      namespace=ns.name, labels=text, consequence=consequence, evidence={"labels": labels},
                      hint="keep one of them (istio.io/rev for revision-based upgrades); istioctl analyze reports "
                           "IST0123")


@analyzer("config.proxy_image", Category.CONFIG, (NAMESPACE, "Workload", "Pod"), ("MSH0262", "MSH0263"),
          mesh=Mesh.ISTIO)
def proxy_image(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """The proxies of one namespace run different images (IST0158), or a pod template leaves its
    proxy image to an injector that is not called (``image: auto``, IST0146 / IST0147)."""
    by_namespace: dict[str, dict[str, list[Pod]]] = defaultdict(lambda: defaultdict(list))
    for p in snapshot.pods:
        # Sidecars only: ambient's ztunnel (its container named istio-proxy too) is no sidecar,
        # and is released apart from the sidecars and gateways (istio/ztunnel, istio/proxyv2).
        if istio_sidecar(p) and p.proxy_image and p.proxy_image != AUTO \
                and PROXY_IMAGE_ANNOTATION not in p.annotations:
            by_namespace[p.namespace][p.proxy_image].append(p)
    declared = namespaces(snapshot)
    for namespace, images in sorted(by_namespace.items()):
        if len(images) < 2:
            continue
        ranked = sorted(images.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        text = "; ".join(f"{image} ({plural(len(pods), 'pod')}: "
                         f"{', '.join(sorted(p.name for p in pods)[:3])}{' ...' if len(pods) > 3 else ''})"
                         for image, pods in ranked)
        behind = [p for _image, pods in ranked[1:] for p in pods]
        touched = sorted({s for p in behind if p.workload for s in snapshot.services_of(p.workload)})
        ns = declared.get(namespace)
        # On the Namespace when the input holds it, else on the first pod behind.
        yield finding("MSH0262", "config.proxy_image", f"Namespace {namespace}", resource=ns,
                      located=behind[0].location, at="metadata.labels" if ns is not None else "spec.containers",
                      services=touched, namespace=namespace,
                      count=len(images), images=text,
                      evidence={"images": {image: sorted(p.name for p in pods) for image, pods in ranked}},
                      hint=f"kubectl rollout restart the workloads of {namespace} still on an old image (istioctl "
                           "proxy-status shows each proxy's version); istioctl analyze reports IST0158")
    yield from _image_auto(snapshot)


def _image_auto(snapshot: MeshSnapshot) -> Iterable[Finding]:
    unjudged: set[str] = set()
    judged = False
    for w in snapshot.workloads:
        if w.proxy_image != AUTO:
            continue
        pods = snapshot.pods_of(w.ref)
        if pods:
            judged = True  # the pods tell: injected ones carry the real image, the others auto
            for p in pods:
                if p.proxy_image == AUTO:
                    yield _auto_finding(f"Pod {p.namespace}/{p.name}", p.location, "spec.containers",
                                        w.services, f"pod {p.namespace}/{p.name}", "the injector did not process it")
            continue
        labels = dict(w.labels)
        ns_labels = namespace_labels(snapshot, w.namespace)
        own = labels.get(INJECT)
        if own is not None:
            why = None if str(own).lower() == "true" else f"its pods are labelled {INJECT}={own}"
        elif ns_labels is None:
            unjudged.add(w.namespace)
            continue
        else:
            why = None if injects(ns_labels) or labels.get(REVISION) else \
                f"namespace {w.namespace} is not injected (no {INJECTION}=enabled or {REVISION} label)"
        judged = True
        if why is not None:
            yield _auto_finding(f"Workload {w.ref}", w.location, "spec.template.spec.containers", w.services,
                                str(w.ref), why)
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no Namespace object for {', '.join(sorted(unjudged))}, so whether "
                            "image: auto gets injected there is not known")


def _auto_finding(subject: str, location: SourceLocation | None, at: str, services: Iterable[ServiceRef], who: str,
                  why: str) -> Finding:
    return finding("MSH0263", "config.proxy_image", subject, located=location, at=at, services=services,
                   workload=who, why=why,
                   evidence={"image": AUTO, "why": why},
                   hint=f"label the pod template {INJECT}: \"true\" (gateway injection) or enable injection in the "
                        "namespace; istioctl analyze reports IST0146 / IST0147")

