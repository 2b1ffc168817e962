"""Requests a policy on the server's sidecar refuses, tied to the policy, the rule and the caller.

One engine for both of Istio's request policies. The RBAC filter (AuthorizationPolicy) answers a
denied request with 403; the JWT filter (RequestAuthentication) answers a request whose token
fails with 401 (:mod:`meshobs.checks.jwt_denials`). Both answer on the server's sidecar, without a
response flag, so both proxies report the code, and both count per listener
(``http.<listener>.rbac.denied`` / ``jwt_authn.denied``). Envoy's access log names the reason
(``rbac_access_denied_matched_policy[ns[NS]-policy[NAME]-rule[I]]``, ``[none]`` when no ALLOW
rule matched; ``jwt_authn_access_denied{Jwt_is_expired}``); the finding gives the string to look
for.

meshobs evaluates the server's AuthorizationPolicies the way Istio applies them -- CUSTOM, then
DENY, then ALLOW (a workload with ALLOW policies admits only what one of their rules matches) --
against what the metrics say about the caller: its principal (``source_principal``) and
namespace. Operations (methods, paths) and conditions are not in the metrics, so a rule that names
them is read as "may match": the finding says so. Nor is the request principal (the JWT's
``iss/sub``): but when the call *was* refused and the only rules that could admit the caller (or
the DENY rule that matches it) turn on ``requestPrincipals`` or ``request.auth.claims``, the
refusal says the caller's requests lacked that JWT, and the finding names the rule and the
RequestAuthentications that would set the principal.

Calls an ingress gateway refuses for clients outside the mesh reach no workload: the gateway
reports them as their caller, and its own filters answered (:func:`refuser`).

A small share of refusals is policy doing its job (a scanner with bad tokens, an expired token
being refreshed): a caller is named only when more than the error threshold of its calls are
refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Edge, Mesh, MeshSnapshot, ResponseStat, ServiceRef, WorkloadRef

from .base import CouldNotCheck, Finding, Settings, check, finding, memo
from .config import workload_labels
from .dataplane import is_gateway_of
from .jwt_denials import JwtVerdict, describe, jwt_rules, rejecting_authentication
from .policy_scope import FILTERS, REQUEST_AUTHENTICATION, action_of, filter_counters, policies_for
from .traffic import _pct, _r, require_requests

DENIED, UNAUTHENTICATED = "403", "401"
# What the metrics cannot tell about a request, by the rule part that asks for it.
JWT_PARTS = ("request principals", "JWT claims")


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
    cannot tell (request principals, IP blocks, operations, conditions) when it may match."""

    index: int
    matches: bool
    unknown: tuple[str, ...] = ()

    @property
    def needs_jwt(self) -> bool:
        """Only the request's JWT (its principal or claims) is left to decide the rule."""
        return bool(self.unknown) and set(self.unknown) <= set(JWT_PARTS)

    def describe(self, policy: ConfigResource, *, hedge: bool = True) -> str:
        rule = f"rules[{self.index}]"
        rules = policy.spec.get("rules") or ()
        source = rules[self.index].get("from") if self.index < len(rules) else None
        text = f"{rule} (from: {_sources(source)})" if source else rule
        if self.unknown and hedge:
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


def _source_matches(src: Mapping[str, Any], principal: str | None, namespace: str) -> tuple[bool | None, set[str]]:
    """True / False, or None when the source names what the metrics do not carry (and what)."""
    checks: list[bool] = []
    unknown: set[str] = set()
    if "principals" in src:
        checks.append(_any(src["principals"], principal))
    if "notPrincipals" in src:
        checks.append(not _any(src["notPrincipals"], principal))
    if "namespaces" in src:
        checks.append(_any(src["namespaces"], namespace))
    if "notNamespaces" in src:
        checks.append(not _any(src["notNamespaces"], namespace))
    if "requestPrincipals" in src or "notRequestPrincipals" in src:
        unknown.add("request principals")
    if any(k in src for k in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks")):
        unknown.add("IP blocks")
    if not all(checks):
        return False, set()
    return (None, unknown) if unknown else (True, set())


def _rule(rule: Mapping[str, Any], index: int, principal: str | None, namespace: str) -> Match:
    froms = rule.get("from") or ()
    unknown: set[str] = set()
    if froms:
        verdicts = [_source_matches(f.get("source") or {}, principal, namespace) for f in froms
                    if isinstance(f, Mapping)]
        if not any(v is not False for v, _ in verdicts):
            return Match(index, False)
        if not any(v is True for v, _ in verdicts):
            unknown |= {part for v, parts in verdicts if v is None for part in parts}
    if rule.get("to"):
        unknown.add("operations (methods, paths, ports)")
    for cond in rule.get("when") or ():
        jwt = isinstance(cond, Mapping) and str(cond.get("key", "")).startswith("request.auth.")
        unknown.add("JWT claims" if jwt else "conditions")
    return Match(index, True, tuple(sorted(unknown)))


@dataclass(frozen=True)
class Verdict:
    """The policy that refuses a caller, the rule, and whether the refusal turns on its JWT."""

    policy: ConfigResource
    action: str
    rule: str
    others: tuple[str, ...] = ()  # the other ALLOW policies, when none admits the caller
    needs_jwt: bool = False  # decided by requestPrincipals / request.auth claims: the caller's JWT
    matched: str = "none"  # the policy name in Envoy's response details: ns[NS]-policy[NAME]-rule[I]

    @property
    def response_details(self) -> str:
        """What Envoy's access log says for these requests."""
        return f"rbac_access_denied_matched_policy[{self.matched}]"


def _rbac_name(policy: ConfigResource, index: int) -> str:
    return f"ns[{policy.namespace}]-policy[{policy.name}]-rule[{index}]"


def deciding_policy(policies: list[ConfigResource], principal: str | None, namespace: str) -> Verdict | None:
    """The policy that denies a refused caller, as Istio evaluates them: a matching DENY rule,
    else (when the workload has ALLOW policies) the ALLOW policies none of whose rules match --
    or whose rules admit the caller only with a JWT, which its refused requests then lacked."""
    by_action: dict[str, list[ConfigResource]] = {}
    for p in policies:
        by_action.setdefault(action_of(p), []).append(p)
    for p in by_action.get("DENY", []):
        for i, rule in enumerate(p.spec.get("rules") or ()):
            if isinstance(rule, Mapping) and (m := _rule(rule, i, principal, namespace)).matches:
                if m.needs_jwt:
                    return Verdict(p, "DENY", f"its {m.describe(p, hedge=False)} matches requests without the JWT "
                                              "it names, as the caller's are", needs_jwt=True, matched=_rbac_name(p, i))
                return Verdict(p, "DENY", f"its {m.describe(p)} matches the caller", matched=_rbac_name(p, i))
    allows = by_action.get("ALLOW", [])
    if not allows:
        return None
    maybe = [(p, m) for p in allows for i, rule in enumerate(p.spec.get("rules") or ())
             if isinstance(rule, Mapping) and (m := _rule(rule, i, principal, namespace)).matches]
    others = tuple(f"{p.namespace}/{p.name}" for p in allows[1:])
    if maybe and all(m.needs_jwt for _, m in maybe):
        p, m = maybe[0]
        return Verdict(p, "ALLOW", f"only its {m.describe(p, hedge=False)} could admit the caller, and only with a "
                                   "JWT whose principal (or claims) it names: the refused requests carry none",
                       tuple(f"{q.namespace}/{q.name}" for q in allows if q is not p), needs_jwt=True)
    if maybe:
        return None  # some rule may admit it: not decidable from the metrics
    first = allows[0]
    rules = "; ".join(f"rules[{i}] from {_sources(r.get('from'))}" for i, r in enumerate(first.spec.get("rules") or ())
                      if isinstance(r, Mapping)) or "no rules (it admits nothing)"
    return Verdict(first, "ALLOW", f"no ALLOW rule admits the caller ({rules})", others)


def _refused(e: Edge, code: str) -> float:
    """Requests answered ``code`` without a response flag (the filter's own answer), from either
    proxy's view."""
    def rate(rs: Iterable[ResponseStat]) -> float:
        return sum(r.rate for r in rs if r.http_equivalent == code and not r.flag_list)  # gRPC 7/16 too
    return max(rate(e.responses), rate(e.destination_responses))


def _requests(e: Edge) -> float:
    return max(e.request_rate, e.destination_request_rate)


def refuser(snapshot: MeshSnapshot, e: Edge) -> WorkloadRef | None:
    """The workload whose sidecar answered a refused call: the destination's; for calls that
    reached no workload, a gateway's own proxy (it validates the tokens, and applies the policies,
    of callers outside the mesh: a local reply there is its filters'). None otherwise."""
    if e.destination_workload is not None:
        return e.destination_workload
    w = snapshot.workload(e.source)
    return e.source if w is not None and is_gateway_of(snapshot, workload_labels(w), w.ref) else None


@dataclass(frozen=True)
class Refusal:
    """One caller's calls to one service that a filter refused: above the threshold, together.
    ``at_gateway``: refused by the calling gateway itself, for clients outside the mesh."""

    caller: str
    edges: tuple[Edge, ...]
    code: str
    rate: float
    ratio: float
    server: WorkloadRef
    at_gateway: bool = False

    @property
    def first(self) -> Edge:
        return self.edges[0]

    def servers(self) -> list[WorkloadRef]:
        return [self.server] if self.at_gateway else sorted(
            {e.destination_workload for e in self.edges if e.destination_workload is not None})


def refusals(snapshot: MeshSnapshot, edges: list[Edge], code: str, settings: Settings) -> list[Refusal]:
    """Per (caller, destination), the calls answered ``code`` by a filter -- the destination's,
    or the calling gateway's own -- when more than the error threshold of all the caller's calls
    there were (fewer are the policy doing its job)."""
    groups: dict[tuple[str, ServiceRef], list[Edge]] = {}
    for e in edges:
        groups.setdefault((str(snapshot.caller_of(e) or e.source), e.destination), []).append(e)
    out: list[Refusal] = []
    for (caller, _dst), group in groups.items():
        total = sum(_requests(e) for e in group)
        by_side: dict[bool, list[Edge]] = {}
        for e in group:
            if _refused(e, code) > 0 and refuser(snapshot, e) is not None:
                by_side.setdefault(e.destination_workload is None, []).append(e)
        for at_gateway, denied in sorted(by_side.items()):
            rate = sum(_refused(e, code) for e in denied)
            if total <= 0 or total < settings.min_request_rate or rate / total <= settings.error_ratio:
                continue
            server = refuser(snapshot, denied[0])
            assert server is not None
            who = f"callers outside the mesh, through {caller}" if at_gateway else caller
            out.append(Refusal(who, tuple(denied), code, rate, min(1.0, rate / total), server, at_gateway))
    return out


def _refused_edges(snapshot: MeshSnapshot) -> frozenset[int]:
    """The edges (by identity: the snapshot holds them) with calls a filter answered 401 or 403,
    found in one pass: most services have none, and --all would otherwise weigh every response of
    every edge twice per code."""
    return frozenset(id(e) for e in snapshot.edges if any(_refused(e, code) > 0 for code in FILTERS))


@check("traffic.authorization", Category.TRAFFIC, ("requests", "config"), ("MSH0414", "MSH0417"),
       uses=("security", "proxies"), mesh=Mesh.ISTIO)
def authorization(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Calls into or out of the service refused by the server's sidecar (or by a gateway, for
    clients outside the mesh), tied to the policy that refuses them: 403 from the RBAC filter to
    the AuthorizationPolicy (a matching DENY rule, ALLOW policies none of whose rules admits the
    caller, or a rule that admits it only with a JWT it lacks), the rule and the caller's
    principal; 401 from the JWT filter to the RequestAuthentication, its issuers and key
    locations."""
    edges = [e for e in (*snapshot.edges_into(service), *snapshot.edges_from(service)) if refuser(snapshot, e)]
    require_requests(snapshot, service, edges, "to or from")
    refused = memo(snapshot, "authz.refused_edges", _refused_edges)
    if not any(id(e) in refused for e in edges):
        return  # no call in or out answered by a filter: nothing to tie to a policy
    unexplained: list[str] = []
    for code, (http_filter, kind) in FILTERS.items():
        found = refusals(snapshot, edges, code, settings)
        if not found:
            continue
        # Without any AuthorizationPolicy the 403s cannot be told from the application's; a 401
        # is judged per server below, which says so when no RequestAuthentication applies.
        if code == DENIED and not pick_resources(snapshot, kind):
            unexplained.append(f"calls are answered {code} but the input holds no {kind} to tell which one refuses "
                               "them")
            continue
        for refusal in found:
            if code == DENIED:
                yield from _denied(snapshot, service, refusal)
                continue
            verdict = rejecting_authentication(snapshot, refusal.server)
            if isinstance(verdict, str):
                unexplained.append(verdict)
                continue
            yield _unauthenticated(snapshot, service, refusal, verdict, http_filter)
    if unexplained:
        raise CouldNotCheck("; ".join(dict.fromkeys(unexplained)))


def _identity(snapshot: MeshSnapshot, refusal: Refusal) -> tuple[str | None, str]:
    """The refused callers' peer principal and namespace; none for clients outside the mesh,
    which reach a gateway without a mesh identity."""
    if refusal.at_gateway:
        return None, ""
    return _principal(refusal.first, snapshot), refusal.first.source.namespace


def _caller_evidence(snapshot: MeshSnapshot, refusal: Refusal) -> dict[str, object]:
    e = refusal.first
    return {"caller": refusal.caller, "caller_workload": str(e.source), "principal": _identity(snapshot, refusal)[0],
            "refused_by": f"{refusal.server} ({'the gateway itself' if refusal.at_gateway else 'the destination'})",
            "destination": str(e.destination), "code": refusal.code, "refused_rps": _r(refusal.rate),
            "refused_ratio": _r(refusal.ratio)}


def _denied(snapshot: MeshSnapshot, service: ServiceRef, refusal: Refusal) -> Iterable[Finding]:
    e, server = refusal.first, refusal.server
    principal, namespace = _identity(snapshot, refusal)
    verdict = deciding_policy(policies_for(snapshot, server), principal, namespace)
    if verdict is None:
        return
    rbac = {str(w): c for w in refusal.servers() if (c := filter_counters(snapshot, w, "rbac"))}
    evidence: dict[str, object] = {**_caller_evidence(snapshot, refusal), "denied_rps": _r(refusal.rate),
                                   "action": verdict.action, "rule": verdict.rule,
                                   "other_allow_policies": list(verdict.others), "rbac_counters": rbac,
                                   "response_details": verdict.response_details}
    if verdict.action == "DENY":
        hint = "remove or narrow the DENY rule, or exclude the caller from it"
    else:
        hint = ("add a rule admitting the caller's principal (or namespace) to an ALLOW policy of the server, or run "
                "the caller under a principal the policy admits")
    if verdict.needs_jwt:
        ras = policies_for(snapshot, server, REQUEST_AUTHENTICATION)
        evidence["request_authentications"] = describe(ras)
        evidence["jwt_counters"] = {str(w): c for w in refusal.servers()
                                    if (c := filter_counters(snapshot, w, "jwt_authn"))}
        if ras:
            issuers = sorted({r["issuer"] for ra in ras for r in jwt_rules(ra)})
            hint = (f"have {refusal.caller} send a JWT from {', '.join(issuers)} (Authorization: Bearer ...), or add a "
                    "rule admitting its principal without one")
        else:
            hint = (f"no RequestAuthentication applies to {server}, so no request there has a request principal and "
                    "the rule admits nobody: add one for the issuer the callers' tokens come from")
    yield finding("MSH0414", "traffic.authorization", resource=verdict.policy, service=service,
                  services=(e.destination,), evidence=evidence, magnitude=refusal.rate,
                  hint=hint + f"; confirm with istioctl x authz check <{refusal.server.name} pod>",
                  policy=f"AuthorizationPolicy {verdict.policy.namespace}/{verdict.policy.name}",
                  action=verdict.action, source=refusal.caller,
                  principal=principal or ("no mesh identity" if refusal.at_gateway else "unknown principal"),
                  destination=str(e.destination), denied_rps=_r(refusal.rate), rule=verdict.rule)


def _unauthenticated(snapshot: MeshSnapshot, service: ServiceRef, refusal: Refusal, verdict: JwtVerdict,
                     http_filter: str) -> Finding:
    e = refusal.first
    ra = verdict.request_authentication
    ras = [ra] + [r for r in policies_for(snapshot, refusal.server, REQUEST_AUTHENTICATION) if r is not ra]
    rules = describe(ras)
    issuers = ", ".join(r["issuer"] for r in rules[0]["jwt_rules"]) or "no issuer"
    counters = {str(w): c for w in refusal.servers() if (c := filter_counters(snapshot, w, http_filter))}
    return finding("MSH0417", "traffic.authorization", resource=ra, service=service, services=(e.destination,),
                   evidence={**_caller_evidence(snapshot, refusal), "request_authentications": rules,
                             "other_request_authentications": list(verdict.others), "jwt_counters": counters,
                             "response_details": list(verdict.response_details)},
                   magnitude=refusal.rate,
                   hint=(f"check the tokens {refusal.caller} sends (issuer, expiry, signing key: decode one) against "
                         f"the jwtRules, and the JWKS the issuer publishes; the access log of a {refusal.server.name} "
                         "sidecar names the reason (jwt_authn_access_denied{...})"),
                   request_authentication=f"RequestAuthentication {ra.namespace}/{ra.name}", issuers=issuers,
                   source=refusal.caller, destination=str(e.destination), refused_rps=_r(refusal.rate),
                   refused_pct=_pct(refusal.ratio), reason=verdict.reason)
