"""Request authentication: JWTs validated by the server's sidecar (RequestAuthentication, 401)
and AuthorizationPolicy rules on the request principal they set (``requestPrincipals``, 403) --
one caller refused, and a mesh where every caller sends valid tokens and only scanners at the
ingress are turned away."""

from __future__ import annotations

from dataclasses import dataclass

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario, WorkloadSpec

FLEET_IDP = "https://id.fleetpulse.example"
COINRAIL_IDP = "https://login.coinrail.example"


@dataclass(frozen=True)
class Telemetry:
    """The FleetPulse workloads both telemetry scenarios share."""

    gateway: WorkloadSpec
    ingest: WorkloadSpec
    store: WorkloadSpec
    replay: WorkloadSpec


def _telemetry(m: Mesh, replay_version: str) -> Telemetry:
    """The vehicle-telemetry platform both FleetPulse scenarios share: devices post readings
    through the ingress with a device token; ingest-api accepts only requests with a JWT of the
    company's identity provider (RequestAuthentication + an ALLOW rule on requestPrincipals)."""
    m.namespace("telemetry")
    m.namespace("fleet-ops")
    t = Telemetry(m.ingress_gateway(replicas=2), m.workload("telemetry", "ingest-api", "v6", replicas=3),
                  m.workload("telemetry", "timeseries-store", "v2", replicas=3),
                  m.workload("fleet-ops", "replay-worker", replay_version, replicas=2, service_account="replay-worker"))
    m.apply(resource("RequestAuthentication", "telemetry", "ingest-jwt", {
        "selector": {"matchLabels": {"app": "ingest-api"}},
        "jwtRules": [{"issuer": FLEET_IDP, "jwksUri": f"{FLEET_IDP}/.well-known/jwks.json",
                      "audiences": ["ingest"], "forwardOriginalToken": True}]}), created_s_ago=40 * 86400)
    m.apply(resource("RequestAuthentication", "istio-system", "edge-device-jwt", {
        "selector": {"matchLabels": {"istio": "ingressgateway"}},
        "jwtRules": [{"issuer": FLEET_IDP, "jwksUri": f"{FLEET_IDP}/.well-known/jwks.json",
                      "forwardOriginalToken": True}]}), created_s_ago=40 * 86400)
    m.apply(resource("PeerAuthentication", "telemetry", "default", {"mtls": {"mode": "STRICT"}}))
    return t


def _require_jwt(m: Mesh, created_s_ago: float | None = None) -> None:
    m.apply(resource("AuthorizationPolicy", "telemetry", "ingest-require-jwt", {
        "selector": {"matchLabels": {"app": "ingest-api"}}, "action": "ALLOW",
        "rules": [{"from": [{"source": {"requestPrincipals": [f"{FLEET_IDP}/*"]}}]}]}), created_s_ago=created_s_ago)


def jwt_missing_token() -> Scenario:
    """Vehicle telemetry: ingest-api admits only requests carrying a FleetPulse JWT; the new
    replay worker calls it service-to-service without a token and every call is refused (403)."""
    onset = 1320.0
    m = Mesh("jwt-missing-token",
             "Vehicle telemetry: AuthorizationPolicy telemetry/ingest-require-jwt (requestPrincipals) refuses "
             "replay-worker, which sends no JWT (403)",
             "AuthorizationPolicy telemetry/ingest-require-jwt (ALLOW, applied 22 min ago) admits only requests "
             f"whose request principal is {FLEET_IDP}/* (set by RequestAuthentication telemetry/ingest-jwt from "
             "a valid JWT); devices' requests through the ingress carry one, fleet-ops/replay-worker calls "
             "ingest-api with none, so Istio's jwt filter lets the request through without a principal and the "
             "RBAC filter answers 403 (rbac_access_denied_matched_policy[none]), counted as "
             "http.inbound_0.0.0.0_8080.rbac.denied on ingest-api's sidecars; replay-scheduler's calls to the "
             "worker fail with 500", ingress_host="ingest.fleetpulse.example:8080")
    t = _telemetry(m, "v2")
    gw, ingest, store, replay = t.gateway, t.ingest, t.store, t.replay
    rules = m.workload("telemetry", "alert-rules", "v4")
    sched = m.workload("fleet-ops", "replay-scheduler", "v1", service_account="replay-scheduler")
    m.call(gw, ingest, 140.0, 9.0, 41.0)
    m.count(ingest, "http.inbound_0.0.0.0_8080.jwt_authn.allowed", 140.0 / ingest.replicas)
    m.call(ingest, store, 140.0, 3.0, 14.0)
    m.call(ingest, rules, 35.0, 1.5, 6.0)
    m.denied_call(replay, ingest, 6.5, onset_s_ago=onset)
    m.call(sched, replay, 0.8, 420.0, 1900.0, ("500", "-", 0.93), onset_s_ago=onset)
    _require_jwt(m, created_s_ago=onset + 25)
    return m.build(Expectation("authorization-deny", target="fleet-ops/replay-worker",
                               subjects=("AuthorizationPolicy telemetry/ingest-require-jwt",),
                               mentions=("requestPrincipals", "telemetry/ingest-jwt")))


def jwt_wrong_issuer() -> Scenario:
    """Payouts: a partner sync job was pointed at the staging identity provider; payout-api's
    RequestAuthentication trusts only production's issuer, so its tokens are refused (401)."""
    onset = 780.0
    m = Mesh("jwt-wrong-issuer",
             "Payouts: RequestAuthentication payouts/payout-jwt refuses partner-sync's tokens (401, wrong issuer)",
             f"partner-sync v8 (rolled out 13 min ago) fetches its tokens from the staging identity provider; "
             f"RequestAuthentication payouts/payout-jwt on payout-api names only issuer {COINRAIL_IDP}, so "
             "payout-api's sidecars answer every partner-sync call 401 "
             "(jwt_authn_access_denied{Jwt_issuer_is_not_configured}), counted as "
             "http.inbound_0.0.0.0_8080.jwt_authn.denied; merchant-portal's tokens are accepted",
             ingress_host="pay.coinrail.example:8080")
    m.namespace("payouts")
    m.namespace("partners")
    portal = m.workload("payouts", "merchant-portal", "v12", replicas=2)
    payout = m.workload("payouts", "payout-api", "v5", replicas=2)
    bank = m.workload("payouts", "bank-gateway", "v3")
    sync = m.workload("partners", "partner-sync", "v8")
    m.call(portal, payout, 24.0, 35.0, 150.0)
    m.call(payout, bank, 24.0, 28.0, 120.0)
    m.denied_call(sync, payout, 3.2, by="jwt_authn", onset_s_ago=onset)
    m.apply(resource("RequestAuthentication", "payouts", "payout-jwt", {
        "selector": {"matchLabels": {"app": "payout-api"}},
        "jwtRules": [{"issuer": COINRAIL_IDP, "jwksUri": f"{COINRAIL_IDP}/oauth2/v1/keys"}]}),
        created_s_ago=90 * 86400)
    m.apply(resource("PeerAuthentication", "payouts", "default", {"mtls": {"mode": "STRICT"}}))
    return m.build(Expectation("authentication-reject", target="partners/partner-sync",
                               subjects=("RequestAuthentication payouts/payout-jwt",),
                               mentions=(COINRAIL_IDP,)))


def jwt_valid_tokens() -> Scenario:
    """Vehicle telemetry, healthy: every caller of ingest-api sends a valid JWT; scanners hitting
    the ingress with made-up tokens are refused there (401), a trickle of tokens expiring in flight
    is refused at ingest-api; both are well under the error threshold."""
    m = Mesh("jwt-valid-tokens",
             "Healthy: RequestAuthentication and a requestPrincipals policy, valid JWTs, scanner 401s at the ingress",
             "no fault: ingest-api requires a FleetPulse JWT (RequestAuthentication telemetry/ingest-jwt, "
             "AuthorizationPolicy telemetry/ingest-require-jwt) and every caller sends one; the ingress's own "
             "RequestAuthentication turns away 0.5 req/s of scanner requests with forged tokens (401, 0.3% of its "
             "traffic), and 0.1% of device tokens expire in flight (401 at ingest-api), both under the 1% "
             "threshold", ingress_host="ingest.fleetpulse.example:8080")
    t = _telemetry(m, "v3")
    gw, ingest, store, replay = t.gateway, t.ingest, t.store, t.replay
    m.denied_call(gw, ingest, 140.0, by="jwt_authn", share=0.001, served=(9.0, 41.0))
    m.unreached(gw, ingest, 0.5, ("401", "-", 1.0))  # refused by the gateway's own jwt filter
    m.count(gw, "http.outbound_0.0.0.0_8080.jwt_authn.denied", 0.5 / gw.replicas)
    m.count(gw, "http.outbound_0.0.0.0_8080.jwt_authn.allowed", 140.0 / gw.replicas)
    m.call(replay, ingest, 6.5, 12.0, 60.0)
    m.count(ingest, "http.inbound_0.0.0.0_8080.rbac.allowed", 146.5 / ingest.replicas)
    m.call(ingest, store, 146.0, 3.0, 14.0)
    _require_jwt(m)
    return m.build(Expectation("healthy", healthy=True))
