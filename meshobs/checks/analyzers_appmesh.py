"""App Mesh configuration analyzers, over the common layout (``meshobs.appmesh_spec``), so the
``appmesh.k8s.aws/v1beta2`` custom resources and the App Mesh API's JSON are judged alike:

* MSH0267: a route's weighted targets do not add up to 100 (App Mesh splits by proportion, so
  60/30 sends two thirds and one third) or all weigh 0 (the route sends nothing);
* MSH0268: a route, or a virtual service's provider, names a virtual node that does not exist;
* MSH0269: a backend, a gateway route or a virtual service's provider names a virtual service
  or router that does not exist;
* MSH0270: a route's port and the listeners disagree (a router with several listeners and a
  route without ``match.port``, a port the router does not listen on, a target port the virtual
  node does not listen on);
* MSH0271: a client policy or listener validates certificates without a trust source (no
  ``validation``, or one naming no ACM authority, file or SDS secret).

A reference is judged only where the input holds resources of the referenced kind in the
referenced namespace (or mesh): a directory with one team's virtual nodes says nothing about
another's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshobs import appmesh_spec as spec
from meshobs.catalogue import Category
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, ServiceRef

from .base import CouldNotCheck, Finding, Settings, analyzer, finding, memo

VIRTUAL_GATEWAY, GATEWAY_ROUTE = "VirtualGateway", "GatewayRoute"
KINDS = (spec.VIRTUAL_NODE, spec.VIRTUAL_SERVICE, spec.VIRTUAL_ROUTER, spec.ROUTE, VIRTUAL_GATEWAY, GATEWAY_ROUTE)
ROUTE_FIELDS = {"http": "httpRoute", "http2": "http2Route", "grpc": "grpcRoute", "tcp": "tcpRoute"}


def _name(r: ConfigResource) -> str:
    return f"{r.namespace}/{r.name}" if r.namespace else r.name


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


class _Lookup:
    """Resources of one kind, looked up by name within a namespace or mesh (indexed once)."""

    def __init__(self, snapshot: MeshSnapshot, kind: str) -> None:
        self.found = spec.resources(snapshot, kind)
        self.by_name: dict[str, list[tuple[ConfigResource, set[str]]]] = {}
        self.scopes: set[str] = set()
        for r in self.found:
            scopes = spec.scopes_of(r)
            self.scopes |= scopes
            for name in spec.names_of(r):
                self.by_name.setdefault(name, []).append((r, scopes))

    def get(self, name: str, scopes: set[str]) -> ConfigResource | None:
        return next((r for r, where in self.by_name.get(name, ()) if scopes & where), None)

    def vouches(self, scopes: set[str]) -> bool:
        return bool(scopes & self.scopes)


def _scopes(referrer: ConfigResource, namespace: Any) -> set[str]:
    return {str(namespace)} if namespace else spec.scopes_of(referrer)


def _services_by_scope(snapshot: MeshSnapshot) -> dict[str, list[ServiceRef]]:
    return memo(snapshot, "appmesh.services_by_scope", lambda s: _group(sv.ref for sv in s.services))


def _group(refs: Iterable[ServiceRef]) -> dict[str, list[ServiceRef]]:
    out: dict[str, list[ServiceRef]] = {}
    for ref in refs:
        out.setdefault(ref.namespace, []).append(ref)
    return out


def _services_of(snapshot: MeshSnapshot, r: ConfigResource) -> list[ServiceRef]:
    """The services a resource shapes traffic for: a virtual service's own, a router's (the
    virtual services it provides), a node's (the services of the workload it is)."""
    if r.kind == spec.VIRTUAL_SERVICE:
        scoped = _services_by_scope(snapshot)
        return [ref for scope in sorted(spec.scopes_of(r)) for ref in scoped.get(scope, ())
                if spec.service_matches(r, ref)]
    if r.kind in (spec.VIRTUAL_ROUTER, spec.ROUTE):
        names = spec.names_of(r) if r.kind == spec.VIRTUAL_ROUTER else {str(spec.layout(r).get("virtual_router"))}
        providers = memo(snapshot, "appmesh.router_providers", _router_providers)
        provided = [vs for name in sorted(names) for vs in providers.get(name, ())
                    if spec.scopes_of(vs) & spec.scopes_of(r)]
        return sorted({ref for vs in provided for ref in _services_of(snapshot, vs)})
    if r.kind == spec.VIRTUAL_NODE:
        return sorted({s for w in snapshot.workloads if spec.node_matches(r, w.ref) for s in w.services})
    return []


def _router_providers(snapshot: MeshSnapshot) -> dict[str, list[ConfigResource]]:
    """Router name -> the virtual services it provides."""
    out: dict[str, list[ConfigResource]] = {}
    for vs in spec.resources(snapshot, spec.VIRTUAL_SERVICE):
        provider = spec.layout(vs).get("provider")
        if isinstance(provider, Mapping) and provider.get("virtual_router"):
            out.setdefault(str(provider["virtual_router"]), []).append(vs)
    return out


def _routes(snapshot: MeshSnapshot) -> Iterator[tuple[ConfigResource, str, Mapping[str, Any], str]]:
    """(resource, router name, route, field path of the route) for every route: those a
    VirtualRouter embeds (CRD) and the separate Route resources (API)."""
    for router in spec.resources(snapshot, spec.VIRTUAL_ROUTER):
        raw = _list(router.spec.get("routes"))
        for route in _list(spec.layout(router).get("routes")):
            index = next((i for i, r in enumerate(raw)
                          if isinstance(r, Mapping) and r.get("name") == route.get("name")), None)
            yield router, router.name, route, f"spec.routes[{index}]" if index is not None else "spec.routes"
    for r in spec.resources(snapshot, spec.ROUTE):
        lay = spec.layout(r)
        for route in _list(lay.get("routes")):
            yield r, str(lay.get("virtual_router") or ""), route, "spec"


def _targets_path(path: str, route: Mapping[str, Any]) -> str:
    return f"{path}.{ROUTE_FIELDS.get(str(route.get('protocol')), 'httpRoute')}.action.weightedTargets"


@analyzer("appmesh.routes", Category.CONFIG, (spec.VIRTUAL_ROUTER, spec.ROUTE, spec.VIRTUAL_NODE, spec.VIRTUAL_SERVICE,
                                             "Service"), ("MSH0267",
          "MSH0268", "MSH0270"), mesh=Mesh.APPMESH)
def routes(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A route's weights do not add up to 100, it sends to a virtual node that does not exist, or
    its ports and the listeners of its router and targets disagree."""
    nodes = _Lookup(snapshot, spec.VIRTUAL_NODE)
    judged, unjudged = False, set()
    for resource, router, route, path in _routes(snapshot):
        targets = [t for t in _list(route.get("targets")) if isinstance(t, Mapping)]
        name = str(route.get("name") or "(unnamed)")
        where = _targets_path(path, route)
        judged = True
        touched = _services_of(snapshot, resource)
        yield from _weights(resource, router, name, targets, where, touched)
        yield from _router_ports(resource, router, name, route, path, touched)
        for j, t in enumerate(targets):
            scopes = _scopes(resource, t.get("namespace"))
            node = nodes.get(str(t.get("virtual_node")), scopes)
            if node is None and nodes.vouches(scopes):
                yield finding("MSH0268", "appmesh.routes", resource=resource, at=f"{where}[{j}]", services=touched,
                              kind=resource.kind, name=_name(resource), field=f"route {name} sends to",
                              target=str(t.get("virtual_node")), scope=", ".join(sorted(scopes)),
                              consequence="the route is rejected or its share of the requests fails (503)",
                              evidence={"route": name, "virtual_node": t.get("virtual_node"),
                                        "virtual_nodes_there": sorted(_name(n) for n in nodes.found
                                                                      if scopes & spec.scopes_of(n))},
                              hint="fix the virtual node's name (kubectl get virtualnodes -A, or aws appmesh "
                                   "list-virtual-nodes) or create it")
            elif node is None:
                unjudged.update(scopes)
            else:
                yield from _target_port(resource, name, t, node, f"{where}[{j}]", touched)
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no virtual nodes in {', '.join(sorted(unjudged))}")


def _weights(resource: ConfigResource, router: str, name: str, targets: list[Mapping[str, Any]],
             where: str, touched: list[ServiceRef]) -> Iterable[Finding]:
    weights = [int(t.get("weight") or 0) for t in targets]
    total = sum(weights)
    if not targets or (len(targets) == 1 and total > 0) or total == 100:
        return
    if total == 0:
        consequence = "every target weighs 0, so the route sends nothing and its requests fail"
    else:
        shares = ", ".join(f"{t.get('virtual_node')} {100 * w / total:.1f}%"
                           for t, w in zip(targets, weights, strict=True))
        consequence = f"App Mesh splits by proportion ({shares}), not by the numbers as written"
    yield finding("MSH0267", "appmesh.routes", resource=resource, at=where, services=touched, route=name,
                  virtual_router=router,
                  weights="/".join(str(w) for w in weights), total=total, consequence=consequence,
                  evidence={"weights": {str(t.get("virtual_node")): w for t, w in zip(targets, weights, strict=True)},
                            "total": total},
                  hint="make the weights add up to 100 so they read as the percentages they send")


def _listener_ports(r: ConfigResource) -> list[int]:
    return [int(p) for p in (lst.get("port") for lst in spec.listeners(r)) if isinstance(p, int)]


def _router_ports(resource: ConfigResource, router: str, name: str, route: Mapping[str, Any],
                  path: str, touched: list[ServiceRef]) -> Iterable[Finding]:
    if resource.kind != spec.VIRTUAL_ROUTER:
        return  # a separate Route (API) does not carry its router's listeners
    ports = _listener_ports(resource)
    match = route.get("match") if isinstance(route.get("match"), Mapping) else {}
    port = match.get("port") if isinstance(match, Mapping) else None
    field = f"{path}.{ROUTE_FIELDS.get(str(route.get('protocol')), 'httpRoute')}.match"
    problem = None
    if port is None and len(ports) > 1:
        problem = (f"route {name} has no match.port, but VirtualRouter {router} listens on ports "
                   f"{', '.join(map(str, ports))}; App Mesh requires the port when a router has several listeners")
    elif port is not None and ports and int(port) not in ports:
        problem = (f"route {name} matches port {port}, but VirtualRouter {router} listens on "
                   f"{', '.join(map(str, ports))}; no request reaches the route")
    if problem:
        yield finding("MSH0270", "appmesh.routes", resource=resource, at=field, services=touched, kind=resource.kind,
                      name=_name(resource), problem=problem,
                      evidence={"route": name, "match_port": port, "listener_ports": ports},
                      hint="set each route's match.port to one of the router's listener ports")


def _target_port(resource: ConfigResource, name: str, target: Mapping[str, Any], node: ConfigResource,
                 where: str, touched: list[ServiceRef]) -> Iterable[Finding]:
    ports = _listener_ports(node)
    port = target.get("port")
    problem = None
    if port is not None and ports and int(port) not in ports:
        problem = (f"route {name} sends to port {port} of virtual node {_name(node)}, which listens on "
                   f"{', '.join(map(str, ports))}")
    elif port is None and len(ports) > 1:
        problem = (f"route {name} sends to virtual node {_name(node)} without a port, but it listens on "
                   f"{', '.join(map(str, ports))}; App Mesh requires the target port then")
    if problem:
        yield finding("MSH0270", "appmesh.routes", resource=resource, at=where, services=touched, kind=resource.kind,
                      name=_name(resource), problem=problem,
                      evidence={"route": name, "target_port": port, "listener_ports": ports,
                                "virtual_node": _name(node)},
                      hint="set the weighted target's port to one of the virtual node's listener ports")


@analyzer("appmesh.references", Category.CONFIG, (spec.VIRTUAL_NODE, spec.VIRTUAL_SERVICE, spec.VIRTUAL_ROUTER,
          GATEWAY_ROUTE, "Service", "Workload"), ("MSH0268", "MSH0269"), mesh=Mesh.APPMESH)
def references(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A backend or gateway route names a virtual service that does not exist, or a virtual
    service's provider names a router or node that does not exist."""
    services = _Lookup(snapshot, spec.VIRTUAL_SERVICE)
    routers = _Lookup(snapshot, spec.VIRTUAL_ROUTER)
    nodes = _Lookup(snapshot, spec.VIRTUAL_NODE)
    judged, unjudged = False, set()
    refs: list[tuple[ConfigResource, str, str, str, Any, _Lookup, str]] = []
    for node in nodes.found:
        for i, b in enumerate(spec.backends(node)):
            refs.append((node, f"spec.backends[{i}]", "calls backend", "virtual service", b.get("virtual_service"),
                         services, str(b.get("namespace") or "")))
    for vs in services.found:
        provider = spec.layout(vs).get("provider")
        if isinstance(provider, Mapping) and provider.get("virtual_router"):
            refs.append((vs, "spec.provider.virtualRouter", "is provided by", "virtual router",
                         provider["virtual_router"], routers, ""))
        elif isinstance(provider, Mapping) and provider.get("virtual_node"):
            refs.append((vs, "spec.provider.virtualNode", "is provided by", "virtual node", provider["virtual_node"],
                         nodes, ""))
    for gr in spec.resources(snapshot, GATEWAY_ROUTE):
        target = spec.layout(gr).get("gateway_target")
        if isinstance(target, Mapping) and target.get("virtual_service"):
            refs.append((gr, "spec", "routes to", "virtual service", target["virtual_service"], services,
                         str(target.get("namespace") or "")))
    for resource, at, verb, kind, target_name, lookup, namespace in refs:
        scopes = _scopes(resource, namespace)
        if lookup.get(str(target_name), scopes) is not None:
            judged = True
            continue
        if not lookup.vouches(scopes):
            unjudged.update(scopes)
            continue
        judged = True
        code = "MSH0268" if kind == "virtual node" else "MSH0269"
        yield finding(code, "appmesh.references", resource=resource, at=at, services=_services_of(snapshot, resource),
                      kind=resource.kind, name=_name(resource),
                      field=verb, target=str(target_name), scope=", ".join(sorted(scopes)),
                      consequence=("calls to it get no route (404 / NR) or leave the mesh" if verb == "calls backend"
                                   else "requests for it fail"),
                      evidence={"target": target_name, "kind": kind}, target_kind=kind,
                      hint=f"fix the {kind}'s name or create it (kubectl get {kind.replace(' ', '')}s -A)")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no virtual services, routers or nodes in {', '.join(sorted(unjudged))}")


@analyzer("appmesh.tls_trust", Category.CONFIG, (spec.VIRTUAL_NODE, VIRTUAL_GATEWAY), ("MSH0271",), mesh=Mesh.APPMESH)
def tls_trust(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A client policy or a listener validates peer certificates without a trust source."""
    for kind in (spec.VIRTUAL_NODE, VIRTUAL_GATEWAY):
        for r in spec.resources(snapshot, kind):
            lay = spec.layout(r)
            policies: list[tuple[str, str, Any]] = [("spec.backendDefaults.clientPolicy.tls", "backend defaults",
                                                     lay.get("backend_defaults_client_tls"))]
            policies += [(f"spec.backends[{i}].virtualService.clientPolicy.tls", f"backend {b.get('virtual_service')}",
                          b.get("client_tls")) for i, b in enumerate(spec.backends(r))]
            for at, where, tls in policies:
                if not isinstance(tls, Mapping) or tls.get("trust"):
                    continue
                problem = ("the client policy has no validation block" if tls.get("trust") is None
                           else "its validation names no ACM authority, certificate file or SDS secret")
                yield _trust_finding(r, at, f"client policy, {where}", problem,
                                     "the App Mesh API rejects the client policy, so calls stay as they were")
            for i, lst in enumerate(spec.listeners(r)):
                if lst.get("tls_trust") is not None and not lst.get("tls_trust"):
                    yield _trust_finding(r, f"spec.listeners[{i}].tls.validation", f"listener port {lst.get('port')}",
                                         "its validation names no certificate file or SDS secret",
                                         "the App Mesh API rejects the listener's mutual TLS, so clients are not "
                                         "verified")


def _trust_finding(r: ConfigResource, at: str, where: str, problem: str, consequence: str) -> Finding:
    return finding("MSH0271", "appmesh.tls_trust", resource=r, at=at, kind=r.kind, name=_name(r), where=where,
                   problem=problem, consequence=consequence, evidence={"where": where},
                   hint="add validation.trust (acm.certificateAuthorityARNs, file.certificateChain or sds.secretName) "
                        "naming the authority that signed the peer's certificate")
