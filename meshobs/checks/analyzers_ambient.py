"""Resources written for sidecars that do nothing, or the wrong thing, for ambient pods
(istioctl analyze's IST0167 IneffectivePolicy, and more).

An ambient pod (``istio.io/dataplane-mode=ambient`` on it or its namespace, no sidecar) is
served by ztunnel, a layer-4 proxy on its node, and optionally by a waypoint (an Envoy that
policies reach through ``targetRefs``). So:

* a Sidecar, an EnvoyFilter or WasmPlugin selecting the pods, or a RequestAuthentication applied
  by selector or namespace, configures a proxy the pods do not have: nothing happens (MSH0252);
* an AuthorizationPolicy applied by selector or namespace is enforced by ztunnel, which cannot
  read HTTP: a rule on methods, paths, headers, hosts or request principals *fails closed* and
  ztunnel enforces it as DENY (MSH0253), refusing connections the author meant to allow.

Only pods the input shows to be ambient are judged; a namespace mixing sidecar and ambient pods
is judged per pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .base import CouldNotCheck, Finding, Settings, analyzer, finding, memo
from .dataplane import AMBIENT, NAMESPACE, Member, members, selected, services_of
from .meshconfig import root_namespace
from .policy_scope import AUTHORIZATION_POLICY as AUTHZ
from .policy_scope import REQUEST_AUTHENTICATION as REQUEST_AUTHN
from .policy_scope import action_of

SIDECAR, ENVOY_FILTER, WASM_PLUGIN = "Sidecar", "EnvoyFilter", "WasmPlugin"

# kind -> (where its selector lives, what happens to ambient pods)
SIDECAR_ONLY: dict[str, tuple[tuple[str, str], str]] = {
    SIDECAR: (("workloadSelector", "labels"),
              "Sidecar resources configure sidecar proxies and these pods have none; limit their egress with a "
              "waypoint or a REGISTRY_ONLY mesh config"),
    ENVOY_FILTER: (("workloadSelector", "labels"),
                   "an EnvoyFilter patches an Envoy the pods do not have; patch their waypoint instead"),
    WASM_PLUGIN: (("selector", "matchLabels"),
                  "a WasmPlugin runs in an Envoy the pods do not have; attach it to their waypoint with targetRefs"),
    REQUEST_AUTHN: (("selector", "matchLabels"),
                    "ztunnel does not read HTTP, so no JWT is validated; attach the RequestAuthentication to the "
                    "pods' waypoint with targetRefs"),
}
# AuthorizationPolicy fields only an HTTP proxy can see (ztunnel sees ports, IPs, identities).
L7_OPERATION = ("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths")
L7_SOURCE = ("requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks")
L7_CONDITIONS = ("request.", "remote.ip", "experimental.")


def _selector(r: ConfigResource, where: tuple[str, str]) -> dict[str, str] | None:
    block = r.spec.get(where[0])
    labels = block.get(where[1]) if isinstance(block, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) and labels else None


def _attached(r: ConfigResource) -> bool:
    """Attached to a waypoint, a gateway or a Service by ``targetRef(s)``: not ztunnel's."""
    return bool(r.spec.get("targetRef") or r.spec.get("targetRefs"))


def _applied_to(snapshot: MeshSnapshot, r: ConfigResource, selector: dict[str, str] | None) -> list[Member] | None:
    """The pods a resource applies to (a root-namespace one without selector: every pod)."""
    if r.namespace == root_namespace(snapshot) and selector is None:
        everyone = memo(snapshot, "ambient.everyone", _everyone)
        return everyone or None
    return selected(snapshot, r.namespace, selector)


def _everyone(snapshot: MeshSnapshot) -> list[Member]:
    namespaces = {w.namespace for w in snapshot.workloads} | {p.namespace for p in snapshot.pods}
    return [m for ns in sorted(namespaces) for m in members(snapshot, ns) or []]


def l7_attributes(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field path, attribute) of every rule condition only an HTTP proxy can evaluate."""
    for i, rule in enumerate(spec.get("rules") or ()):
        if not isinstance(rule, Mapping):
            continue
        for j, to in enumerate(rule.get("to") or ()):
            op = to.get("operation") if isinstance(to, Mapping) else None
            for name in L7_OPERATION:
                if isinstance(op, Mapping) and op.get(name):
                    yield f"spec.rules[{i}].to[{j}].operation.{name}", name
        for j, frm in enumerate(rule.get("from") or ()):
            source = frm.get("source") if isinstance(frm, Mapping) else None
            for name in L7_SOURCE:
                if isinstance(source, Mapping) and source.get(name):
                    yield f"spec.rules[{i}].from[{j}].source.{name}", name
        for j, cond in enumerate(rule.get("when") or ()):
            key = str(cond.get("key", "")) if isinstance(cond, Mapping) else ""
            if key.startswith(L7_CONDITIONS):
                yield f"spec.rules[{i}].when[{j}].key", key


@analyzer("config.ambient_ineffective", Category.CONFIG,
          (*SIDECAR_ONLY, AUTHZ, NAMESPACE, "Service", "Workload", "Pod", "MeshConfig"), ("MSH0252", "MSH0253"),
          mesh=Mesh.ISTIO)
def ambient_ineffective(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A Sidecar, EnvoyFilter, WasmPlugin or RequestAuthentication applies only to ambient pods,
    which have no Envoy to apply it (IST0167); an AuthorizationPolicy with HTTP rules reaches
    ambient pods through ztunnel, which enforces it as DENY."""
    judged, unjudged = False, set()
    for kind, (where, reason) in SIDECAR_ONLY.items():
        for r in pick_resources(snapshot, kind):
            if _attached(r) or (r.namespace == root_namespace(snapshot) and _selector(r, where) is None):
                continue  # a waypoint's, or the mesh-wide default of every sidecar
            target = _applied_to(snapshot, r, _selector(r, where))
            if target is None:
                unjudged.add(r.namespace)
                continue
            judged = True
            if not target or any(m.mode != AMBIENT for m in target):
                continue  # some pod has a sidecar (or its data plane is not known): it applies there
            yield finding("MSH0252", "config.ambient_ineffective", resource=r,
                          at=f"spec.{where[0]}" if _selector(r, where) else "spec", services=services_of(target),
                          kind=kind, name=f"{r.namespace}/{r.name}", namespace=r.namespace, reason=reason,
                          evidence={"ambient_workloads": sorted(m.subject for m in target)},
                          hint="istioctl analyze reports IST0167; see Istio's ambient docs on waypoints")
    for ap in pick_resources(snapshot, AUTHZ):
        if _attached(ap):
            continue
        target = _applied_to(snapshot, ap, _selector(ap, ("selector", "matchLabels")))
        if target is None:
            unjudged.add(ap.namespace)
            continue
        judged = True
        ambient = [m for m in target if m.mode == AMBIENT]
        l7 = list(l7_attributes(ap.spec))
        if not ambient or not l7:
            continue
        action = action_of(ap)
        yield finding("MSH0253", "config.ambient_ineffective", resource=ap, at=l7[0][0], services=services_of(ambient),
                      policy=f"{ap.namespace}/{ap.name}", action=action, namespace=ap.namespace,
                      attributes=", ".join(sorted({a for _p, a in l7})),
                      evidence={"attributes": [p for p, _a in l7],
                                "ambient_workloads": sorted(m.subject for m in ambient)},
                      hint="deploy a waypoint for these pods (istioctl waypoint apply, label the namespace "
                           "istio.io/use-waypoint) and attach the policy to it with targetRefs; keep only ports, "
                           "principals, namespaces and IP blocks in policies ztunnel enforces")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds no workloads in {', '.join(sorted(unjudged))}, so which data plane "
                            "the resources there reach is not known")
