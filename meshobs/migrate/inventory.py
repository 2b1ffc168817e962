"""The App Mesh resources of one migration, by name, with the Istio-side identities they get.

Names: a CRD refers to others by Kubernetes name (``virtualNodeRef: {name, namespace}``), an
API export by App Mesh name (``virtualNode: cart-v1``); :meth:`Inventory.node` accepts both.
Namespaces: a CRD's Istio resources go to its own namespace; an API export has none, so its
resources go to ``namespace`` (the ``--namespace`` option), else to the namespace its hostname
names (``*.NS.svc.cluster.local``), else to the mesh name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshobs.collectors.appmesh_config import CRD_API_VERSION
from meshobs.istio_config import DOMAIN, fqdn
from meshobs.model import ConfigResource, Mesh, thaw

_LABEL = re.compile(r"[^a-z0-9-]+")


def layout(r: ConfigResource) -> dict[str, Any]:
    value = thaw(r.spec.get("meshobs")) if r.spec else None
    return value if isinstance(value, dict) else {}


def raw(r: ConfigResource) -> dict[str, Any]:
    """The resource's own spec, as the user wrote it (without meshobs's layout)."""
    spec = thaw(r.spec) if r.spec else {}
    return {k: v for k, v in spec.items() if k != "meshobs"} if isinstance(spec, dict) else {}


def dns_label(text: str) -> str:
    """A Kubernetes name from any text (``cart_v1.shop`` -> ``cart-v1-shop``)."""
    return _LABEL.sub("-", text.lower()).strip("-")[:63] or "unnamed"


def in_cluster(host: str) -> bool:
    return host.endswith(f".svc.{DOMAIN}")


@dataclass
class Node:
    """A virtual node with what Istio needs to address and select it."""

    resource: ConfigResource
    namespace: str  # where its Istio resources go
    labels: dict[str, str] | None  # podSelector.matchLabels (None: no pods to select, e.g. ECS)
    host: str | None  # the FQDN its service discovery resolves (DNS hostname or Cloud Map name)
    cloud_map: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def aws_name(self) -> str:
        return str(layout(self.resource).get("aws_name") or self.resource.name)

    @property
    def listeners(self) -> list[dict[str, Any]]:
        return [x for x in raw(self.resource).get("listeners") or [] if isinstance(x, dict)]


@dataclass
class Inventory:
    resources: list[ConfigResource]
    namespace: str | None = None  # --namespace, for API exports
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.resources = [r for r in self.resources if r.mesh is Mesh.APPMESH and layout(r)]
        self.nodes = [self._node(r) for r in self.of_kind("VirtualNode")]

    def of_kind(self, kind: str) -> list[ConfigResource]:
        return sorted((r for r in self.resources if r.kind == kind), key=lambda r: (r.namespace, r.name))

    def is_crd(self, r: ConfigResource) -> bool:
        return r.api_version.startswith(CRD_API_VERSION.split("/")[0])

    def mesh_of(self, r: ConfigResource) -> str:
        return str(layout(r).get("mesh") or "")

    def namespace_of(self, r: ConfigResource, host: str | None = None) -> str:
        if self.is_crd(r):
            return r.namespace or "default"
        if self.namespace:
            return self.namespace
        if host and in_cluster(host):
            return host.split(".")[1]
        return dns_label(self.mesh_of(r) or r.namespace or "default")

    def _node(self, r: ConfigResource) -> Node:
        spec, lay = raw(r), layout(r)
        selector = (spec.get("podSelector") or {}).get("matchLabels")
        labels = {str(k): str(v) for k, v in selector.items()} if isinstance(selector, Mapping) and selector else None
        sd = lay.get("service_discovery") or {}
        host, cloud_map = None, None
        if sd.get("dns"):
            host = str(sd["dns"]).lower()
        elif sd.get("cloud_map"):
            cloud_map = dict(sd["cloud_map"])
            host = f"{cloud_map.get('service')}.{cloud_map.get('namespace')}".lower()
        namespace = self.namespace_of(r, host)
        if host and self.is_crd(r):
            host = fqdn(host, namespace)
        return Node(r, namespace, labels, host, cloud_map)

    def node(self, name: str, namespace: str | None, scope: ConfigResource) -> Node | None:
        """The virtual node a reference names, seen from ``scope`` (the referring resource)."""
        mesh = self.mesh_of(scope)
        for n in self.nodes:
            if n.resource.name == name and (namespace or scope.namespace) == n.resource.namespace:
                return n
        for n in self.nodes:
            if n.aws_name == name and (not mesh or self.mesh_of(n.resource) in (mesh, "")):
                return n
        return next((n for n in self.nodes if name in (n.resource.name, n.aws_name)), None)

    def service_host(self, vs: ConfigResource) -> str:
        """The host callers use for an App Mesh virtual service: its App Mesh name, qualified
        with the namespace when it is a short Kubernetes name."""
        return fqdn(str(layout(vs).get("aws_name") or vs.name), self.namespace_of(vs))

    def router(self, vs: ConfigResource) -> ConfigResource | None:
        provider = layout(vs).get("provider") or {}
        name = provider.get("virtual_router") if isinstance(provider, Mapping) else None
        if not name:
            return None
        mesh = self.mesh_of(vs)
        for r in self.of_kind("VirtualRouter"):
            if name in (r.name, layout(r).get("aws_name")) and (
                    r.namespace == vs.namespace or self.mesh_of(r) in (mesh, "")):
                return r
        return None

    def routes(self, router: ConfigResource) -> list[tuple[ConfigResource, dict[str, Any]]]:
        """(resource holding the route, the route in the common layout): a CRD router's own
        routes, and the separate Route resources of an API export."""
        out: list[tuple[ConfigResource, dict[str, Any]]] = [
            (router, r) for r in layout(router).get("routes") or [] if isinstance(r, dict)]
        aws = str(layout(router).get("aws_name") or router.name)
        for res in self.of_kind("Route"):
            if layout(res).get("virtual_router") in (aws, router.name) and \
                    self.mesh_of(res) in (self.mesh_of(router), ""):
                out.extend((res, r) for r in layout(res).get("routes") or [] if isinstance(r, dict))
        return out

    def provider_node(self, vs: ConfigResource) -> Node | None:
        provider = layout(vs).get("provider") or {}
        name = provider.get("virtual_node") if isinstance(provider, Mapping) else None
        return self.node(str(name), None, vs) if name else None

    def virtual_service(self, name: str, namespace: str | None, scope: ConfigResource) -> ConfigResource | None:
        for vs in self.of_kind("VirtualService"):
            aws = str(layout(vs).get("aws_name") or vs.name)
            if vs.name == name and (namespace or scope.namespace) == vs.namespace:
                return vs
            if aws == name and self.mesh_of(vs) in (self.mesh_of(scope), ""):
                return vs
        return None

    def callers_of(self, vs: ConfigResource) -> list[tuple[Node, dict[str, Any] | None]]:
        """Nodes that list ``vs`` as a backend, with the client TLS policy they apply to it."""
        out = []
        for n in self.nodes:
            lay = layout(n.resource)
            for b in lay.get("backends") or []:
                found = self.virtual_service(str(b.get("virtual_service") or ""), b.get("namespace"), n.resource)
                if found is not None and found.key == vs.key:
                    tls = b.get("client_tls") or lay.get("backend_defaults_client_tls")
                    out.append((n, tls if isinstance(tls, dict) else None))
        return out

