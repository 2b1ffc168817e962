"""Which proxies to ask: static targets from the config, or sidecars found in Kubernetes pods.

Pure functions: the Kubernetes collector already fetched the PodLists (``prior`` RawSources of
kind ``kubernetes``, payload key ``pods`` or ``pods@<namespace>``); nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from meshobs.raw import RawSource

from .server_info import workload_name_from_pod

ISTIO_CONTAINER = "istio-proxy"
APPMESH_CONTAINER = "envoy"
ISTIO_ADMIN_PORT = 15000
APPMESH_ADMIN_PORT = 9901  # App Mesh's Envoy image default (ENVOY_ADMIN_ACCESS_PORT)


@dataclass(frozen=True)
class Target:
    """One Envoy admin endpoint. ``port`` is set for targets reached by port-forward."""

    namespace: str
    pod: str
    url: str
    workload: str | None = None
    port: int | None = None

    @property
    def source_name(self) -> str:
        return f"envoy:{self.namespace}/{self.pod}" if self.namespace else f"envoy:{self.pod}"

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"namespace": self.namespace, "pod": self.pod, "url": self.url}
        if self.workload:
            meta["workload"] = self.workload
        return meta


def static_targets(entries: Iterable[dict[str, Any]]) -> list[Target]:
    """``sources.envoy.targets``; a target without pod/namespace is named after its URL."""
    out = []
    for e in entries:
        url = str(e["url"]).rstrip("/")
        pod = e.get("pod") or urlsplit(url).netloc or url
        out.append(Target(namespace=e.get("namespace") or "", pod=pod, url=url,
                          workload=e.get("workload") or None))
    return out


def pods_from_prior(prior: Iterable[RawSource]) -> list[dict[str, Any]]:
    """Every pod of every usable PodList the Kubernetes collector fetched (deduplicated)."""
    pods: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in prior:
        if raw.kind != "kubernetes" or raw.error:
            continue
        for p in raw.payloads:
            if not (p.key == "pods" or p.key.startswith("pods@")) or not p.ok or p.body is None:
                continue
            try:
                doc = json.loads(p.body)
            except json.JSONDecodeError:
                continue  # the Kubernetes collector reports its own bad payloads
            items = doc.get("items") if isinstance(doc, dict) else None
            for pod in items if isinstance(items, list) else []:
                if not isinstance(pod, dict):
                    continue
                md = pod.get("metadata") or {}
                pods[(md.get("namespace", ""), md.get("name", ""))] = pod
    return list(pods.values())


def _sidecar(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The pod's Envoy sidecar container, as the model reads it (``k8s_objects.sidecar_of``, the
    one reader: Istio's ``istio-proxy``, native or not, but not ambient's node proxy; App Mesh's
    ``envoy`` where App Mesh's annotations or image say so), or None."""
    from meshobs.collectors.k8s_objects import sidecar_of

    spec = pod.get("spec") or {}
    name = sidecar_of(spec, (pod.get("metadata") or {}).get("annotations") or {})[0]
    if name is None:
        return None
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if isinstance(c, dict) and c.get("name") == name:
            return dict(c)
    return None


def _admin_port(container: dict[str, Any]) -> int:
    if container.get("name") == ISTIO_CONTAINER:
        return ISTIO_ADMIN_PORT
    for env in container.get("env") or []:
        if env.get("name") == "ENVOY_ADMIN_ACCESS_PORT" and str(env.get("value", "")).isdigit():
            return int(env["value"])
    return APPMESH_ADMIN_PORT


def workload_of_pod(pod: dict[str, Any]) -> str:
    """The pod's workload: its controller owner (ReplicaSet -> Deployment name), else its name."""
    md = pod.get("metadata") or {}
    name = str(md.get("name", ""))
    labels = md.get("labels") or {}
    owners = md.get("ownerReferences") or []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    if owner:
        oname = str(owner.get("name", ""))
        if owner.get("kind") == "ReplicaSet":
            rs_hash = labels.get("pod-template-hash")
            if rs_hash and oname.endswith("-" + rs_hash):
                return oname[: -len(rs_hash) - 1]
            return oname.rsplit("-", 1)[0] if "-" in oname else oname
        return oname
    return workload_name_from_pod(name) if md.get("generateName") else name


def discover_targets(pods: Iterable[dict[str, Any]], *, port: int | None = None,
                     namespaces: Iterable[str] = ()) -> list[Target]:
    """Running, not-terminating pods with an ``istio-proxy`` (or App Mesh ``envoy``) container.

    ``port`` overrides the admin port (default 15000 for Istio, 9901 for App Mesh).
    """
    wanted = set(namespaces)
    out = []
    for pod in pods:
        md = pod.get("metadata") or {}
        ns, name = md.get("namespace", ""), md.get("name", "")
        if not name or (wanted and ns not in wanted):
            continue
        if (pod.get("status") or {}).get("phase") != "Running" or md.get("deletionTimestamp"):
            continue
        container = _sidecar(pod)
        if container is None:
            continue
        admin_port = port or _admin_port(container)
        out.append(Target(namespace=ns, pod=name, workload=workload_of_pod(pod), port=admin_port,
                          url=f"portforward://{ns}/{name}:{admin_port}"))
    return sorted(out, key=lambda t: (t.namespace, t.pod))
