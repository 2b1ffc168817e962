"""Pure readers over App Mesh configuration in the common layout (``spec["meshobs"]``).

Every App Mesh ConfigResource (CRD, API describe output, exported JSON) carries the layout the
App Mesh config normaliser derives (see ``meshobs.collectors.appmesh_config``), so these readers
do not care which shape a resource arrived in. Identities: the snapshot names a virtual node by
its Kubernetes workload (assembly maps App Mesh names onto Kubernetes ones); a resource matches
by its Kubernetes ``namespace/name``, its mesh and ``awsName``, or the Kubernetes name its
``awsName`` spells by the controller's conventions (an API resource knows no namespace).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshobs.model import ConfigResource, Mesh, MeshSnapshot, ServiceRef, WorkloadRef

VIRTUAL_NODE = "VirtualNode"
VIRTUAL_SERVICE = "VirtualService"
VIRTUAL_ROUTER = "VirtualRouter"
ROUTE = "Route"


def layout(resource: ConfigResource) -> Mapping[str, Any]:
    """The common layout of an App Mesh resource ({} for anything else)."""
    value = resource.spec.get("meshobs") if resource.mesh is Mesh.APPMESH else None
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def resources(snapshot: MeshSnapshot, kind: str) -> list[ConfigResource]:
    """App Mesh resources of one kind (live layer first: it is what runs)."""
    found = [r for r in snapshot.config_of(kind) if layout(r)]
    return sorted(found, key=lambda r: (r.layer.value != "live", r.namespace, r.name))


def _kubernetes_name(resource: ConfigResource) -> tuple[str, str] | None:
    """(namespace, name) of the Kubernetes object an App Mesh name spells by the controller's
    conventions (``catalog-v2_books``, ``catalog.books.svc.cluster.local``): how a resource read
    from the App Mesh API, which knows no namespace, lines up with the Kubernetes names the
    snapshot speaks (:mod:`meshobs.collectors.appmesh_names`)."""
    from meshobs.collectors.appmesh_names import controller_node_name, service_host_name

    aws = str(layout(resource).get("aws_name") or resource.name.rsplit("/", 1)[-1])
    return service_host_name(aws) if resource.kind == VIRTUAL_SERVICE else controller_node_name(aws)


def names_of(resource: ConfigResource) -> set[str]:
    """The names a resource goes by: its own, its App Mesh name (awsName), and the Kubernetes
    name that spells."""
    lay = layout(resource)
    spelled = _kubernetes_name(resource)
    return {resource.name.rsplit("/", 1)[-1], str(lay.get("aws_name") or resource.name),
            *([spelled[1]] if spelled else [])}


def scopes_of(resource: ConfigResource) -> set[str]:
    """Where a resource lives: its (Kubernetes) namespace, its mesh, and the namespace its App
    Mesh name spells."""
    spelled = _kubernetes_name(resource)
    return {s for s in (resource.namespace, str(layout(resource).get("mesh") or ""),
                        spelled[0] if spelled else "") if s}


def node_matches(resource: ConfigResource, workload: WorkloadRef) -> bool:
    """Is this VirtualNode the given workload (by mesh or namespace, and name or awsName)?"""
    return workload.namespace in scopes_of(resource) and workload.name in names_of(resource)


def _service_names(service: ServiceRef) -> set[str]:
    fqdn = f"{service.name}.{service.namespace}.svc.cluster.local"
    return {service.name, fqdn, f"{service.name}.{service.namespace}"}


def service_matches(resource: ConfigResource, service: ServiceRef) -> bool:
    """Is this VirtualService the given service? (awsName may be the Kubernetes FQDN.)"""
    return service.namespace in scopes_of(resource) and bool(names_of(resource) & _service_names(service))


def backend_matches(backend: Mapping[str, Any], node: ConfigResource, service: ServiceRef) -> bool:
    """Does a backend entry of ``node`` name ``service``?"""
    namespace = backend.get("namespace") or None
    if namespace is not None and namespace != service.namespace:
        return False
    if namespace is None and service.namespace not in scopes_of(node):
        return False
    return str(backend.get("virtual_service") or "") in _service_names(service)


def nodes_of(snapshot: MeshSnapshot, service: ServiceRef) -> list[tuple[WorkloadRef, ConfigResource]]:
    """The service's workloads that are App Mesh virtual nodes, with their VirtualNode."""
    nodes = resources(snapshot, VIRTUAL_NODE)
    out: list[tuple[WorkloadRef, ConfigResource]] = []
    for w in snapshot.workloads_of(service):
        node = next((n for n in nodes if node_matches(n, w.ref)), None)
        if node is not None:
            out.append((w.ref, node))
    return out


def node_of(snapshot: MeshSnapshot, workload: WorkloadRef) -> ConfigResource | None:
    """The VirtualNode of a workload, if it is one."""
    return next((n for n in resources(snapshot, VIRTUAL_NODE) if node_matches(n, workload)), None)


def virtual_service(snapshot: MeshSnapshot, service: ServiceRef) -> ConfigResource | None:
    return next((r for r in resources(snapshot, VIRTUAL_SERVICE) if service_matches(r, service)), None)


def routes(snapshot: MeshSnapshot, service: ServiceRef) -> tuple[str, list[Mapping[str, Any]]]:
    """(router name, its routes) of the router that provides the service; ("", []) if none."""
    vs = virtual_service(snapshot, service)
    provider = layout(vs).get("provider") if vs is not None else None
    router = str((provider or {}).get("virtual_router") or "") if isinstance(provider, Mapping) else ""
    if vs is None or not router:
        return "", []
    scopes = scopes_of(vs)
    found: list[Mapping[str, Any]] = []
    for r in resources(snapshot, VIRTUAL_ROUTER):
        if router in names_of(r) and scopes & scopes_of(r):
            found.extend(x for x in _list(layout(r).get("routes")) if isinstance(x, Mapping))
            break
    for r in resources(snapshot, ROUTE):
        lay = layout(r)
        if lay.get("virtual_router") == router and scopes & scopes_of(r):
            found.extend(x for x in _list(lay.get("routes")) if isinstance(x, Mapping))
    return router, found


def backends(node: ConfigResource) -> list[Mapping[str, Any]]:
    return [b for b in _list(layout(node).get("backends")) if isinstance(b, Mapping)]


def client_tls_for(node: ConfigResource, service: ServiceRef) -> Mapping[str, Any] | None:
    """The client TLS policy ``node`` applies when calling ``service``: the backend's own, else
    the backend defaults (None: the node sends plaintext)."""
    for b in backends(node):
        if backend_matches(b, node, service) and isinstance(b.get("client_tls"), Mapping):
            return b["client_tls"]  # type: ignore[no-any-return]
    defaults = layout(node).get("backend_defaults_client_tls")
    return defaults if isinstance(defaults, Mapping) else None


def listener_tls(node: ConfigResource) -> str | None:
    """The node's strictest listener TLS mode (STRICT | PERMISSIVE | DISABLED) or None."""
    mode = layout(node).get("listener_tls")
    return str(mode) if mode else None


def listeners(node: ConfigResource) -> list[Mapping[str, Any]]:
    return [x for x in _list(layout(node).get("listeners")) if isinstance(x, Mapping)]
