"""Requests an AuthorizationPolicy denies, tied to the policy, the rule and the principal.

Envoy's RBAC filter on the server's sidecar answers a denied request itself: 403, no response
flag (``rbac_access_denied_matched_policy[...]`` in the access log), counted as
``http.<listener>.rbac.denied``; both proxies report the 403. meshobs evaluates the server's
policies the way Istio applies them -- CUSTOM, then DENY, then ALLOW (a workload with ALLOW
policies admits only what one of their rules matches) -- against what the metrics say about the
caller: its principal (``source_principal``) and namespace. Operations (methods, paths) and
conditions are not in the metrics, so a rule that names them is read as "may match": the
finding says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Edge, Mesh, MeshSnapshot, ResponseStat, ServiceRef, WorkloadRef

from .base import CouldNotCheck, Finding, Settings, check, finding
from .config import workload_labels
from .inventory import selects
from .meshconfig import root_namespace
from .traffic import _r, require_requests

AUTHORIZATION_POLICY = "AuthorizationPolicy"
DENIED = "403"


def _principal(edge: Edge, snapshot: MeshSnapshot) -> str | None:
    """The caller's identity as AuthorizationPolicy writes it (``cluster.local/ns/x/sa/y``)."""
    if edge.source_principal:
        return edge.source_principal.removeprefix("spiffe://")
    w = snapshot.workload(edge.source)
    if w is not None and w.service_account:
        return f"cluster.local/ns/{w.namespace}/sa/{w.service_account}"
    return None


def _glob(pattern: str, value: str) -> bool:
    """Istio's string match: exact, ``*``, prefix ``abc*`` or suffix ``*abc``."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return pattern == value


def _any(patterns: Any, value: str | None) -> bool:
    return value is not None and any(_glob(str(p), value) for p in patterns or ())


@dataclass(frozen=True)
class Match:
    """How one rule of a policy meets a caller: ``matches`` (True/False), and what the metrics
    cannot tell (operations, conditions) when it may match."""

    index: int
    matches: bool
    unknown: tuple[str, ...] = ()

    def describe(self, policy: ConfigResource) -> str:
        rule = f"rules[{self.index}]"
        rules = policy.spec.get("rules") or ()
        source = rules[self.index].get("from") if self.index < len(rules) else None
        text = f"{rule} (from: {_sources(source)})" if source else rule
        if self.unknown:
            text += f"; its {' and '.join(self.unknown)} are not in the metrics, so it matches if the request does"
        return text


def _sources(froms: Any) -> str:
    parts: list[str] = []
    for f in froms or ():
        src = f.get("source") if isinstance(f, Mapping) else None
        if not isinstance(src, Mapping):
            continue
        for key, value in src.items():
            parts.append(f"{key} {', '.join(str(v) for v in value) if isinstance(value, (list, tuple)) else value}")
    return "; ".join(parts) or "anyone"


def _source_matches(src: Mapping[str, Any], principal: str | None, namespace: str) -> bool | None:
    """True / False, or None when the source names what the metrics do not carry."""
    checks: list[bool | None] = []
    if "principals" in src:
        checks.append(_any(src["principals"], principal))
    if "notPrincipals" in src:
        checks.append(not _any(src["notPrincipals"], principal))
    if "namespaces" in src:
        checks.append(_any(src["namespaces"], namespace))
    if "notNamespaces" in src:
        checks.append(not _any(src["notNamespaces"], namespace))
    if any(k in src for k in ("requestPrincipals", "notRequestPrincipals", "ipBlocks", "notIpBlocks",
                              "remoteIpBlocks", "notRemoteIpBlocks")):
        checks.append(None)
    if any(c is False for c in checks):
        return False
    return None if any(c is None for c in checks) else True


def _rule(rule: Mapping[str, Any], index: int, principal: str | None, namespace: str) -> Match:
    froms = rule.get("from") or ()
    unknown: list[str] = []
    if froms:
        verdicts = [_source_matches(f.get("source") or {}, principal, namespace) for f in froms
                    if isinstance(f, Mapping)]
        if not any(v is not False for v in verdicts):
            return Match(index, False)
        if not any(v is True for v in verdicts):
            unknown.append("request principals or IP blocks")
    if rule.get("to"):
        unknown.append("operations (methods, paths, ports)")
    if rule.get("when"):
        unknown.append("conditions")
    return Match(index, True, tuple(unknown))


def policies_for(snapshot: MeshSnapshot, workload: WorkloadRef) -> list[ConfigResource]:
    """The AuthorizationPolicies applying to ``workload``: in its namespace or the root namespace,
    without a selector or selecting its labels."""
    w = snapshot.workload(workload)
    labels = workload_labels(w) if w is not None else {}
    root = root_namespace(snapshot)
    out: list[ConfigResource] = []
    for p in pick_resources(snapshot, AUTHORIZATION_POLICY):
        block = p.spec.get("selector")
        selector = block.get("matchLabels") if isinstance(block, Mapping) else None
        matches = not selector or (w is not None and selects(selector, labels))
        # The root namespace's policies apply in every namespace (to the workloads they select).
        if (p.namespace == workload.namespace or p.namespace == root) and matches:
            out.append(p)
    return out


@dataclass(frozen=True)
class Verdict:
    policy: ConfigResource
    action: str
    rule: str
    others: tuple[str, ...] = ()  # the other ALLOW policies, when none admits the caller


def deciding_policy(policies: list[ConfigResource], principal: str | None, namespace: str) -> Verdict | None:
    """The policy that denies a caller, as Istio evaluates them: a matching DENY rule, else
    (when the workload has ALLOW policies) the ALLOW policies none of whose rules match."""
    by_action: dict[str, list[ConfigResource]] = {}
    for p in policies:
        by_action.setdefault(str(p.spec.get("action") or "ALLOW").upper(), []).append(p)
    for p in by_action.get("DENY", []):
        for i, rule in enumerate(p.spec.get("rules") or ()):
            if isinstance(rule, Mapping) and (m := _rule(rule, i, principal, namespace)).matches:
                return Verdict(p, "DENY", f"its {m.describe(p)} matches the caller")
    allows = by_action.get("ALLOW", [])
    if not allows:
        return None
    for p in allows:
        for i, rule in enumerate(p.spec.get("rules") or ()):
            if isinstance(rule, Mapping) and _rule(rule, i, principal, namespace).matches:
                return None  # some rule may admit it: not decidable from the metrics
    first = allows[0]
    rules = "; ".join(f"rules[{i}] from {_sources(r.get('from'))}" for i, r in enumerate(first.spec.get("rules") or ())
                      if isinstance(r, Mapping)) or "no rules (it admits nothing)"
    return Verdict(first, "ALLOW", f"no ALLOW rule admits the caller ({rules})",
                   tuple(f"{p.namespace}/{p.name}" for p in allows[1:]))


def _denied(e: Edge) -> float:
    """403s without a response flag (RBAC's own answer), from either proxy's view."""
    def rate(rs: Iterable[ResponseStat]) -> float:
        return sum(r.rate for r in rs if r.code == DENIED and not r.flag_list)
    return max(rate(e.responses), rate(e.destination_responses))


def _rbac_counters(snapshot: MeshSnapshot, workload: WorkloadRef) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in snapshot.proxies_of(workload):
        for k, v in p.http_counters.items():
            if ".rbac." in f".{k}":
                out[k] = out.get(k, 0) + int(v)
    return out


@check("traffic.authorization", Category.TRAFFIC, ("requests", "config"), ("MSH0414",), uses=("security", "proxies"),
       mesh=Mesh.ISTIO)
def authorization(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Calls into or out of the service answered 403 by the server's RBAC filter, tied to the
    AuthorizationPolicy that denies them (a matching DENY rule, or ALLOW policies none of whose
    rules admits the caller), the rule and the caller's principal."""
    edges = [e for e in snapshot.edges_into(service) if e.destination_workload is not None]
    edges += [e for e in snapshot.edges_from(service) if e.destination_workload is not None]
    require_requests(snapshot, service, edges, "to or from")
    denied = [e for e in edges if _denied(e) > 0]
    if not denied:
        return
    if not pick_resources(snapshot, AUTHORIZATION_POLICY):
        raise CouldNotCheck("calls are answered 403 but the input holds no AuthorizationPolicy to tell which "
                            "policy denies them")
    seen: set[tuple[str, str, str]] = set()
    for e in denied:
        assert e.destination_workload is not None
        principal = _principal(e, snapshot)
        verdict = deciding_policy(policies_for(snapshot, e.destination_workload), principal, e.source.namespace)
        if verdict is None:
            continue
        caller = str(snapshot.caller_of(e) or e.source)
        key = (f"{verdict.policy.namespace}/{verdict.policy.name}", caller, str(e.destination))
        if key in seen:
            continue
        seen.add(key)
        same = [x for x in denied
                if str(snapshot.caller_of(x) or x.source) == caller and x.destination == e.destination]
        rate = sum(_denied(x) for x in same)
        servers = sorted({x.destination_workload for x in same if x.destination_workload is not None})
        rbac = {str(w): c for w in servers if (c := _rbac_counters(snapshot, w))}
        yield finding("MSH0414", "traffic.authorization", resource=verdict.policy, service=service,
                      services=(e.destination,),
                      evidence={"caller": caller, "caller_workload": str(e.source), "principal": principal,
                                "destination": str(e.destination), "denied_rps": _r(rate),
                                "action": verdict.action, "rule": verdict.rule,
                                "other_allow_policies": list(verdict.others), "rbac_counters": rbac},
                      magnitude=rate,
                      hint=("remove or narrow the DENY rule, or exclude the caller from it" if verdict.action == "DENY"
                            else "add a rule admitting the caller's principal (or namespace) to an ALLOW policy of "
                                 "the server, or run the caller under a principal the policy admits")
                      + f"; confirm with istioctl x authz check <{e.destination.name} pod>",
                      policy=f"AuthorizationPolicy {verdict.policy.namespace}/{verdict.policy.name}",
                      action=verdict.action, source=caller, principal=principal or "unknown principal",
                      destination=str(e.destination), denied_rps=_r(rate), rule=verdict.rule)
