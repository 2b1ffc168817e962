"""AuthorizationPolicy identities: who a policy names, and whether the proxies can know it.

A rule naming a caller by principal (``cluster.local/ns/NS/sa/SA``) or namespace is only as
good as the name:

* a namespace that does not exist (MSH0254, istioctl analyze's IST0101 for policies) names
  nobody: an ALLOW rule for it admits no one, a DENY rule denies no one;
* a principal whose namespace exists but whose service account no workload runs as (MSH0255)
  is usually a typo or a renamed account: the workload the author meant is refused (403);
* principals and namespaces come from the caller's mTLS certificate, so where the workload's
  PeerAuthentication does not enforce mTLS (MSH0257) a plaintext request has none: under DISABLE
  no request has one (ALLOW rules refuse everyone, DENY rules stop no one); under PERMISSIVE a
  plaintext caller slips past a DENY rule or an ALLOW-except rule (``notPrincipals``).

Names are judged only where the input vouches for them (see ``dataplane.lists_every_namespace``
and ``dataplane.members``): a namespace is missing for sure when
the live API's cluster-wide list lacks it, and, in manifests, when it is a near miss of one the
input holds (``claim`` where ``claims`` exists). A service account is missing for sure only where
the namespace's configuration was listed too (its Gateways may vouch for the account), and the
mesh-wide mTLS default only where the root namespace's was (``inventory.config_listed``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshobs.catalogue import Category
from meshobs.collectors.k8s_objects import KUBERNETES_GATEWAY
from meshobs.istio_config import PEER_AUTHENTICATION, peer_auth_mode, pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, ServiceRef

from .base import CouldNotCheck, Finding, Settings, analyzer, finding, memo
from .dataplane import (
    AMBIENT,
    NAMESPACE,
    NONE,
    SIDECAR,
    Member,
    known_namespaces,
    listing,
    lists_every_namespace,
    members,
    near_miss,
    selected,
    services_of,
)
from .inventory import config_listed
from .meshconfig import root_namespace
from .policy_scope import AUTHORIZATION_POLICY as AUTHZ
from .policy_scope import action_of, selector_of

PRINCIPAL = re.compile(r"^(?P<domain>[^/]+)/ns/(?P<namespace>[^/]+)/sa/(?P<account>[^/]+)$")
# Source fields (and ``when`` keys) that read the peer's mTLS identity.
IDENTITY_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces")
IDENTITY_KEYS = {"source.principal": "principals", "source.namespace": "namespaces"}
KINDS = (AUTHZ, NAMESPACE, KUBERNETES_GATEWAY, "Service", "Workload", "Pod", "MeshConfig")


@dataclass(frozen=True)
class Identity:
    """One identity a policy names: a principal or a namespace, where, and whether the rule
    matches it (positive) or everyone but it (negative: ``notPrincipals``, ``notValues``)."""

    field: str  # "principals" | "namespaces"
    value: str
    path: str
    negative: bool


def identities(spec: Mapping[str, Any]) -> Iterator[Identity]:
    """Every principal and namespace a policy's rules name, in sources and ``when`` conditions."""
    for i, rule in enumerate(spec.get("rules") or ()):
        if not isinstance(rule, Mapping):
            continue
        for j, frm in enumerate(rule.get("from") or ()):
            source = frm.get("source") if isinstance(frm, Mapping) else None
            if not isinstance(source, Mapping):
                continue
            for name in IDENTITY_FIELDS:
                for k, value in enumerate(source.get(name) or ()):
                    field = "principals" if "rincipal" in name else "namespaces"
                    yield Identity(field, str(value), f"spec.rules[{i}].from[{j}].source.{name}[{k}]",
                                   name.startswith("not"))
        for j, cond in enumerate(rule.get("when") or ()):
            if not isinstance(cond, Mapping) or str(cond.get("key")) not in IDENTITY_KEYS:
                continue
            field = IDENTITY_KEYS[str(cond["key"])]
            for name in ("values", "notValues"):
                for k, value in enumerate(cond.get(name) or ()):
                    yield Identity(field, str(value), f"spec.rules[{i}].when[{j}].{name}[{k}]", name == "notValues")


def _policies(snapshot: MeshSnapshot) -> list[ConfigResource]:
    """The policies proxies enforce on their own (a ``targetRef`` one belongs to a waypoint or
    gateway, which the same rules govern, so it is judged too)."""
    return [ap for ap in pick_resources(snapshot, AUTHZ) if action_of(ap) in ("ALLOW", "DENY", "AUDIT")]


def _touched(snapshot: MeshSnapshot, ap: ConfigResource) -> list[ServiceRef]:
    """The services whose workloads the policy protects (none for a mesh-wide one)."""
    if ap.namespace == root_namespace(snapshot) and selector_of(ap) is None:
        return []
    return services_of(selected(snapshot, ap.namespace, selector_of(ap)) or [])


def _consequence(action: str, negative: bool, what: str) -> str:
    """What a rule naming ``what`` (an identity nothing carries) does."""
    if action == "DENY":
        return (f"the DENY rule excluding {what} denies every caller" if negative
                else f"the DENY rule stops no one, {what} included")
    if action == "AUDIT":
        return f"the AUDIT rule never logs {what}"
    return (f"the exception for {what} excludes no one: every caller is admitted" if negative
            else f"no caller matches it, so the caller meant by {what} is refused (403) unless another rule admits it")


@analyzer("config.authz_identity", Category.CONFIG, KINDS, ("MSH0254", "MSH0255"), mesh=Mesh.ISTIO)
def authz_identity(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """An AuthorizationPolicy names a namespace that does not exist, or a principal whose service
    account no workload of its namespace runs as (IST0101 for policies)."""
    known = known_namespaces(snapshot, (AUTHZ,))
    every = lists_every_namespace(snapshot)
    judged, unjudged, unlisted = False, set(), set()
    for ap in _policies(snapshot):
        action = action_of(ap)
        for ident in identities(ap.spec):
            namespace, account = _parts(ident)
            if namespace is None or "*" in namespace:
                continue
            common: dict[str, Any] = {"policy": f"{ap.namespace}/{ap.name}", "action": action}
            if namespace not in known:
                # Missing for sure from a cluster-wide listing; from manifests, only a near miss
                # of a namespace the input holds (a typo) is judged.
                typo = near_miss(namespace, known)
                if not every and typo is None:
                    unjudged.add(namespace)
                    continue
                judged = True
                yield finding("MSH0254", "config.authz_identity", resource=ap, at=ident.path,
                              services=_touched(snapshot, ap), namespace=namespace, field=ident.field,
                              consequence=_consequence(action, ident.negative, f"namespace {namespace}"),
                              evidence={"value": ident.value, "negative": ident.negative,
                                        "namespaces_known": len(known), "did_you_mean": typo,
                                        "listed_cluster_wide": every},
                              hint="fix the namespace's name (kubectl get namespaces); istioctl analyze reports "
                                   "IST0101", **common)
                continue
            if account is None or "*" in account:
                judged = True
                continue
            found = members(snapshot, namespace)
            # Only workloads of the mesh hold a principal: judged where the input holds some there.
            if found is None or not any(m.mode in (SIDECAR, AMBIENT) for m in found):
                unjudged.add(namespace)
                continue
            found = [m for m in found if m.mode != NONE]
            accounts = sorted({m.service_account for m in found if m.service_account}
                              | deployed_accounts(snapshot, namespace))
            if account in accounts:
                judged = True
                continue
            if not config_listed(snapshot, namespace):
                # Its Gateways (which may vouch for the account) were not listed.
                unlisted.add(namespace)
                continue
            judged = True
            yield finding("MSH0255", "config.authz_identity", resource=ap, at=ident.path,
                          services=_touched(snapshot, ap), principal=ident.value, namespace=namespace,
                          service_account=account, accounts=", ".join(accounts) or "nothing",
                          consequence=_consequence(action, ident.negative, f"principal {ident.value}"),
                          evidence={"principal": ident.value, "service_accounts_in_namespace": accounts,
                                    "negative": ident.negative,
                                    "workloads": sorted(m.subject for m in found)},
                          hint=f"name the service account the caller runs as (kubectl get pods -n {namespace} "
                               "-o custom-columns=NAME:.metadata.name,SA:.spec.serviceAccountName)", **common)
    if unlisted:
        raise CouldNotCheck(f"the mesh configuration of {listing(unlisted)} was not collected (only the namespaces a "
                            "question involves were listed), so whether a Gateway there runs as the service "
                            "accounts policies name could not be looked up")
    if not judged and unjudged:
        raise CouldNotCheck(f"the input holds neither the namespace list nor the workloads of "
                            f"{', '.join(sorted(unjudged))}, so no name a policy uses could be looked up")


# gatewayClassName -> the service account Istio's deployment controller gives the Gateway's
# pods (a waypoint runs as the Gateway's name, an ingress deployed for class istio as NAME-istio).
GATEWAY_ACCOUNTS = {"istio-waypoint": "{name}", "istio": "{name}-istio", "istio-remote": "{name}-istio"}


def deployed_accounts(snapshot: MeshSnapshot, namespace: str) -> set[str]:
    """Service accounts of the gateways and waypoints Istio deploys for the Gateway API Gateways
    of ``namespace`` (their Deployments are not in the input, the Gateways are)."""
    def build(s: MeshSnapshot) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for gw in pick_resources(s, KUBERNETES_GATEWAY):
            template = GATEWAY_ACCOUNTS.get(str(gw.spec.get("gatewayClassName") or ""))
            if template:
                out.setdefault(gw.namespace, set()).add(template.format(name=gw.name))
        return out
    return memo(snapshot, "authz.deployed_accounts", build).get(namespace, set())


def _parts(ident: Identity) -> tuple[str | None, str | None]:
    """(namespace, service account) an identity names; (None, None) for one that is not a
    Kubernetes identity (a SPIFFE ID of another kind, a wildcard prefix)."""
    if ident.field == "namespaces":
        return ident.value, None
    match = PRINCIPAL.match(ident.value.removeprefix("spiffe://"))
    return (match["namespace"], match["account"]) if match else (None, None)


# -- identities need mTLS -------------------------------------------------------------------------
def _fails_open(action: str, negative: bool) -> bool:
    """Does a request without a peer identity get through a rule that names one? It does for
    a DENY rule naming callers and an ALLOW rule naming everyone but some."""
    return (action == "DENY" and not negative) or (action == "ALLOW" and negative)


@analyzer("config.authz_requires_mtls", Category.CONFIG, (AUTHZ, PEER_AUTHENTICATION, NAMESPACE, "Workload", "Pod",
                                                                        "MeshConfig"), ("MSH0257",), mesh=Mesh.ISTIO)
def authz_requires_mtls(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """An AuthorizationPolicy matches on principals or namespaces for workloads whose
    PeerAuthentication does not enforce mTLS, so requests without a peer identity get around it
    (PERMISSIVE) or it refuses or admits everyone (DISABLE)."""
    by_namespace: dict[str, list[ConfigResource]] = {}
    unlisted: set[str] = set()
    for peer in pick_resources(snapshot, PEER_AUTHENTICATION):
        by_namespace.setdefault(peer.namespace, []).append(peer)
    root = root_namespace(snapshot)
    for ap in _policies(snapshot):
        # Only its own namespace's and the root namespace's PeerAuthentications can decide.
        pas = by_namespace.get(ap.namespace, []) + (by_namespace.get(root, []) if ap.namespace != root else [])
        idents = list(identities(ap.spec))
        if not idents:
            continue
        action = action_of(ap)
        for mode, pa, who in _modes(snapshot, ap, pas):
            if mode == "STRICT":
                continue
            if pa is None and not config_listed(snapshot, root):
                unlisted.add(f"{ap.namespace}/{ap.name}")  # the mesh-wide default was not listed
                continue
            hits = [i for i in idents if mode == "DISABLE" or _fails_open(action, i.negative)]
            if not hits:
                continue
            first = hits[0]
            attributes = sorted({("not" + i.field.capitalize()) if i.negative else i.field for i in hits})
            yield finding("MSH0257", "config.authz_requires_mtls", resource=ap, at=first.path,
                          services=services_of(who), policy=f"{ap.namespace}/{ap.name}", action=action,
                          attributes=", ".join(attributes),
                          peer_authentication=f"{pa.namespace}/{pa.name}" if pa else "(none: the mesh default)",
                          selected=_who(ap, who), mode=mode, consequence=_mtls_consequence(action, mode, first),
                          evidence={"mode": mode, "identities": [i.value for i in hits],
                                    "workloads": sorted(m.subject for m in who)},
                          hint="set a PeerAuthentication with mtls.mode STRICT for these workloads (or write the "
                               "rule as ALLOW with principals, which fails closed); Kiali reports it as "
                               "authorizationpolicy.mtls.needstobeenabled")
    if unlisted:
        raise CouldNotCheck(f"the PeerAuthentications of the root namespace {root} were not collected, so "
                            f"the mTLS mode the workloads of {listing(unlisted)} get by default is not known")


def _who(ap: ConfigResource, who: list[Member]) -> str:
    if who:
        return listing(m.subject.split(" ", 1)[1] for m in who)
    selector = selector_of(ap)
    return (f"the pods labelled {', '.join(f'{k}={v}' for k, v in sorted(selector.items()))}" if selector
            else f"namespace {ap.namespace}")


def _modes(snapshot: MeshSnapshot, ap: ConfigResource,
           pas: list[ConfigResource]) -> list[tuple[str, ConfigResource | None, list[Member]]]:
    """The mTLS modes of the workloads a policy protects, grouped: (mode, deciding
    PeerAuthentication, workloads). Without the workloads in the input, the mode a pod with the
    policy's selector labels would get."""
    root = root_namespace(snapshot)
    if ap.namespace == root and selector_of(ap) is None:
        mode, pa = peer_auth_mode(pas, root, {}, root_namespace=root)
        return [(mode, pa, [])]
    found = selected(snapshot, ap.namespace, selector_of(ap))
    if found is None:
        mode, pa = peer_auth_mode(pas, ap.namespace, selector_of(ap) or {}, root_namespace=root)
        return [(mode, pa, [])]
    # Pods without any proxy enforce no policy at all (MSH0260 says so): not judged here.
    found = [m for m in found if m.mode != NONE]
    groups: dict[tuple[str, tuple[str, str] | None], tuple[ConfigResource | None, list[Member]]] = {}
    for m in found:
        mode, pa = peer_auth_mode(pas, m.namespace, m.labels, root_namespace=root)
        groups.setdefault((mode, (pa.namespace, pa.name) if pa else None), (pa, []))[1].append(m)
    return [(mode, pa, who) for (mode, _k), (pa, who) in sorted(groups.items(), key=lambda kv: str(kv[0]))]


def _mtls_consequence(action: str, mode: str, ident: Identity) -> str:
    if mode == "DISABLE":
        outcome = {("ALLOW", False): "the rule matches no one and every caller it was meant to admit is refused (403)",
                   ("ALLOW", True): "the exception never applies and every caller is admitted",
                   ("DENY", False): "the DENY rule stops no one",
                   ("DENY", True): "the DENY rule refuses every caller (403)"}.get(
            (action, ident.negative), "the AUDIT rule logs nothing")
        return "no request carries a peer identity, so " + outcome
    return ("a plaintext request (from a pod without a sidecar, or from outside the mesh) carries no peer identity "
            "and gets past " + ("the DENY rule" if action == "DENY" else "the exception"))
