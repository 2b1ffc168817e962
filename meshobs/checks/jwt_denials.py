"""Requests the JWT filter refuses (401), tied to the RequestAuthentication that configures it.

Istio turns the RequestAuthentications applying to a workload into one ``jwt_authn`` filter on its
sidecar. A request *without* a token passes it (Istio lets missing tokens through; only an
AuthorizationPolicy rule on ``requestPrincipals`` refuses those, with 403); a request whose token
fails is answered 401 by the sidecar itself, no response flag, with the reason in the access
log's response details (``jwt_authn_access_denied{Jwt_is_expired}``,
``jwt_authn_access_denied{Jwt_verification_fails}``,
``jwt_authn_access_denied{Jwt_issuer_is_not_configured}``...) and counted as
``http.<listener>.jwt_authn.denied``. The metrics carry the code and the caller, not the reason:
the finding names the resource, its issuers and key locations, and says which reasons fit --
unless the key location itself is one istiod cannot fetch (then every token fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshobs.model import ConfigResource, MeshSnapshot, WorkloadRef

from .analyzers_authn import jwks_locations, jwks_problem
from .policy_scope import REQUEST_AUTHENTICATION, policies_for, selector_of

# What the JWT filter answers for a token it refuses, as Envoy writes the reason (``{...}`` in
# the response details); the metrics do not carry it, the access log does.
TOKEN_FAILURES = ("Jwt_is_expired", "Jwt_verification_fails", "Jwt_issuer_is_not_configured",
                  "Jwks_doesn't_have_key_to_match_kid_or_alg_from_Jwt")


def jwt_rules(ra: ConfigResource) -> list[dict[str, Any]]:
    """Each ``jwtRules`` entry as evidence: issuer, where its keys come from, audiences."""
    out: list[dict[str, Any]] = []
    for rule in ra.spec.get("jwtRules") or ():
        if not isinstance(rule, Mapping):
            continue
        keys = ("inline jwks" if rule.get("jwks") else str(rule.get("jwksUri") or "")
                or f"{str(rule.get('issuer') or '').rstrip('/')}/.well-known/openid-configuration")
        out.append({"issuer": str(rule.get("issuer") or ""), "keys": keys,
                    "audiences": [str(a) for a in rule.get("audiences") or ()]})
    return out


def applies_to(ra: ConfigResource) -> str:
    """What a RequestAuthentication selects, in words: ``app=ingest-api`` or ``namespace telemetry``."""
    selector = selector_of(ra)
    if selector:
        return ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return f"namespace {ra.namespace}"


def describe(ras: list[ConfigResource]) -> list[dict[str, Any]]:
    """The RequestAuthentications applying to a workload, as evidence."""
    return [{"request_authentication": f"{ra.namespace}/{ra.name}", "selector": applies_to(ra),
             "jwt_rules": jwt_rules(ra)} for ra in ras]


@dataclass(frozen=True)
class JwtVerdict:
    """The RequestAuthentication behind a workload's 401s, and why its filter refuses tokens."""

    request_authentication: ConfigResource
    reason: str
    response_details: tuple[str, ...]
    others: tuple[str, ...] = ()  # further RequestAuthentications merged into the same filter


def rejecting_authentication(snapshot: MeshSnapshot, workload: WorkloadRef) -> JwtVerdict | str:
    """The RequestAuthentication whose JWT filter answers ``workload``'s 401s, or, when none
    applies to it, why none can be named (the 401s are then the application's own)."""
    ras = policies_for(snapshot, workload, REQUEST_AUTHENTICATION)
    if not ras:
        return (f"no RequestAuthentication applies to {workload} (in namespace {workload.namespace} or the root "
                "namespace), so its sidecar validates no JWT: the 401s are the application's own answers")
    # Keys istiod cannot fetch make every token fail: that resource is the one to name.
    for ra in ras:
        for _i, issuer, url, _path in jwks_locations(ra):
            found = jwks_problem(snapshot, url)
            if found is not None:
                return JwtVerdict(ra, f"the keys of issuer {issuer or '(none)'} come from {url}, which {found[0]}",
                                  ("jwt_authn_access_denied{Jwt_verification_fails}",),
                                  tuple(f"{r.namespace}/{r.name}" for r in ras if r is not ra))
    issuers = [r["issuer"] for ra in ras for r in jwt_rules(ra)]
    return JwtVerdict(ras[0], f"the caller's tokens fail the filter: expired, signed with a key not in the issuer's "
                              f"JWKS, or issued by someone other than {', '.join(issuers) or 'the issuers configured'}",
                      tuple(f"jwt_authn_access_denied{{{t}}}" for t in TOKEN_FAILURES),
                      tuple(f"{r.namespace}/{r.name}" for r in ras[1:]))
