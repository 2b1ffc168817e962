"""The failure classes of issue 10 Build 1 on small meshes of their own (not the library's):
each rendered into the payloads real sources serve (Prometheus both reporters, Envoy admin,
Kubernetes, manifests' resources), normalised, diagnosed. A positive and a negative case per
code; codes, subjects and numbers asserted, never message text."""

from __future__ import annotations

from meshobs.catalogue import Severity
from meshobs.checks.base import Finding
from meshobs.collect import build_snapshot
from meshobs.demo.author import Mesh, resource
from meshobs.demo.build import render_bundle
from meshobs.demo.expect import Expectation
from meshobs.demo.traffic import LatencyProfile, Reported
from meshobs.engine import diagnose, diagnose_all
from meshobs.model import MeshSnapshot, ServiceRef

NOTHING = Expectation("healthy", healthy=True)


def snapshot_of(m: Mesh) -> MeshSnapshot:
    return build_snapshot(render_bundle(m.build(NOTHING)), origin=f"test:{m.name}")


def findings(snap: MeshSnapshot, target: str) -> list[Finding]:
    ns, name = target.split("/")
    return list(diagnose(snap, ServiceRef(ns, name)).findings)


def codes(fs: list[Finding]) -> set[str]:
    return {f.code for f in fs}


def serious(fs: tuple[Finding, ...] | list[Finding]) -> list[str]:
    return [f"{f.code} {f.subject}" for f in fs if f.severity in (Severity.ERROR, Severity.WARNING)]


def all_codes(snap: MeshSnapshot) -> set[str]:
    return {f.code for f in diagnose_all(snap).findings}


# -- retries hiding a failing service (MSH0412) --------------------------------------------------

def _library(first_attempt_failure: float, retries: int) -> Mesh:
    m = Mesh("lending-library", "books", "catalogue-db fails some attempts")
    m.namespace("loans")
    m.namespace("catalogue")
    desk = m.workload("loans", "loan-desk", "v4", replicas=2)
    db = m.workload("catalogue", "catalogue-db", "v9", replicas=2)
    m.retried_call(desk, db, 25.0, first_attempt_failure=first_attempt_failure, retries=retries,
                   p50=6.0, p99=20.0, caller_p50=8.0, caller_p99=70.0, onset_s_ago=600.0)
    return m


def test_retries_hiding_a_failing_service_rank_it_first_from_its_caller() -> None:
    snap = snapshot_of(_library(0.22, 2))
    first = findings(snap, "loans/loan-desk")[0]
    assert (first.code, first.subject) == ("MSH0412", "Service catalogue/catalogue-db")
    assert abs(first.evidence["own_error_ratio"] - 0.22) < 0.01
    assert first.evidence["error_ratio"] < 0.012  # 0.22^3 as the caller sees it
    assert first.evidence["retry_counters"]["upstream_rq_retry"] > 0
    assert first.evidence["caller_p99_ms"] > first.evidence["own_p99_ms"]


def test_a_service_failing_without_retries_is_not_called_hidden() -> None:
    m = Mesh("lending-library-plain", "books", "catalogue-db fails, no retries")
    m.namespace("loans")
    desk = m.workload("loans", "loan-desk", "v4")
    db = m.workload("loans", "catalogue-db", "v9")
    m.call(desk, db, 25.0, 6.0, 20.0, ("503", "-", 0.2))
    snap = snapshot_of(m)
    assert "MSH0412" not in all_codes(snap)
    assert "MSH0401" in codes(findings(snap, "loans/catalogue-db"))


def test_retries_that_absorb_a_tiny_failure_rate_are_fine() -> None:
    assert "MSH0412" not in all_codes(snapshot_of(_library(0.004, 2)))


# -- timeouts (MSH0413) ------------------------------------------------------------------------

def test_a_caller_timing_out_names_the_slow_service_and_its_own_latency() -> None:
    m = Mesh("parcel-tracking", "parcels", "geo-index slower than its callers' 1 s timeout")
    m.namespace("parcels")
    api = m.workload("parcels", "track-api", "v2")
    geo = m.workload("parcels", "geo-index", "v5")
    m.call(api, geo, 12.0, 900.0, 1000.0, ("504", "UT", 0.3),
           dest=Reported(12.0, (("200", "-", 0.7), ("0", "DC", 0.3)), LatencyProfile(950.0, 3800.0)))
    m.apply(resource("VirtualService", "parcels", "geo-index", {
        "hosts": ["geo-index"], "http": [{"route": [{"destination": {"host": "geo-index"}}], "timeout": "1s"}]}))
    first = findings(snapshot_of(m), "parcels/track-api")[0]
    assert (first.code, first.subject) == ("MSH0413", "Service parcels/geo-index")
    assert abs(first.evidence["timeouts_rps"] - 3.6) < 0.01
    assert first.evidence["own_p99_ms"] > 3000 and first.evidence["destination_disconnects_rps"] > 3
    assert list(first.evidence["timeouts_configured"]) == ["1 s route timeout of VirtualService parcels/geo-index"]


def test_gateway_timeouts_answered_by_the_application_are_not_caller_timeouts() -> None:
    m = Mesh("parcel-tracking-504", "parcels", "geo-index answers 504 itself")
    m.namespace("parcels")
    api = m.workload("parcels", "track-api", "v2")
    geo = m.workload("parcels", "geo-index", "v5")
    m.call(api, geo, 12.0, 40.0, 90.0, ("504", "-", 0.3))
    assert "MSH0413" not in all_codes(snapshot_of(m))


# -- authorization (MSH0414) -------------------------------------------------------------------

def _clinic(policy: dict[str, object]) -> Mesh:
    m = Mesh("vet-clinic", "pets", "a policy decides who may read the records")
    m.namespace("clinic")
    m.namespace("reception")
    front = m.workload("reception", "front-desk", "v2", service_account="front-desk")
    charts = m.workload("clinic", "pet-charts", "v7", replicas=2)
    lab = m.workload("clinic", "lab-results", "v1")
    m.denied_call(front, charts, 3.0)
    m.call(lab, charts, 5.0, 9.0, 30.0)
    m.apply(resource("AuthorizationPolicy", "clinic", "charts-access", {
        "selector": {"matchLabels": {"app": "pet-charts"}}, **policy}))
    return m


def test_a_deny_rule_matching_the_callers_namespace_is_the_cause() -> None:
    snap = snapshot_of(_clinic({"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["reception"]}}]}]}))
    first = findings(snap, "reception/front-desk")[0]
    assert (first.code, first.subject) == ("MSH0414", "AuthorizationPolicy clinic/charts-access")
    assert first.evidence["action"] == "DENY" and first.evidence["denied_rps"] == 3.0
    assert first.evidence["principal"] == "cluster.local/ns/reception/sa/front-desk"
    assert first.evidence["rbac_counters"]  # rbac.denied on pet-charts' sidecars
    # The server's diagnosis names the same policy.
    assert "MSH0414" in codes(findings(snap, "clinic/pet-charts"))


def test_allow_rules_that_admit_nobody_like_the_caller_are_the_cause() -> None:
    snap = snapshot_of(_clinic({"action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/clinic/sa/lab-results"]}}]}]}))
    first = findings(snap, "reception/front-desk")[0]
    assert (first.code, first.subject) == ("MSH0414", "AuthorizationPolicy clinic/charts-access")
    assert first.evidence["action"] == "ALLOW" and "lab-results" in first.evidence["rule"]


def test_a_policy_that_admits_the_caller_is_not_blamed_for_a_403() -> None:
    snap = snapshot_of(_clinic({"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["reception"]}}]}]}))
    assert "MSH0414" not in all_codes(snap)


# -- request authentication: 401 from the JWT filter (MSH0417), 403 from a requestPrincipals rule --

ISSUER = "https://sso.harbourline.example"


def _shipping(*resources: dict[str, object], by: str = "jwt_authn", share: float = 1.0) -> Mesh:
    """A port-logistics mesh: berth-planner's sidecar refuses some of crane-scheduler's calls."""
    m = Mesh("harbour", "berths", "who may book a berth")
    m.namespace("berths")
    m.namespace("cranes")
    planner = m.workload("berths", "berth-planner", "v4", replicas=2)
    tides = m.workload("berths", "tide-tables", "v1")
    cranes = m.workload("cranes", "crane-scheduler", "v9", service_account="crane-scheduler")
    m.call(tides, planner, 9.0, 12.0, 40.0)
    m.denied_call(cranes, planner, 4.0, by=by, share=share)
    for r in resources:
        m.apply(r)
    return m


def _request_authn(name: str, ns: str = "berths", labels: dict[str, str] | None = None,
                   jwks: str = f"{ISSUER}/keys") -> dict[str, object]:
    selector = {"selector": {"matchLabels": labels}} if labels is not None else {}
    return resource("RequestAuthentication", ns, name, {**selector, "jwtRules": [{"issuer": ISSUER, "jwksUri": jwks}]})


def _authz_check(snap: MeshSnapshot, target: str) -> tuple[str, str]:
    ns, name = target.split("/")
    result = next(c for c in diagnose(snap, ServiceRef(ns, name)).checks if c.id == "traffic.authorization")
    return result.status, result.reason


def test_401s_name_the_request_authentication_selecting_the_server() -> None:
    snap = snapshot_of(_shipping(_request_authn("planner-jwt", labels={"app": "berth-planner"}),
                                 _request_authn("tides-jwt", labels={"app": "tide-tables"}),
                                 _request_authn("cranes-jwt", ns="cranes")))
    first = findings(snap, "cranes/crane-scheduler")[0]
    assert (first.code, first.subject) == ("MSH0417", "RequestAuthentication berths/planner-jwt")
    assert first.evidence["code"] == "401" and first.evidence["refused_rps"] == 4.0
    assert first.evidence["principal"] == "cluster.local/ns/cranes/sa/crane-scheduler"
    # Only the one selecting berth-planner: not tide-tables', not the caller's namespace's.
    assert [r["request_authentication"] for r in first.evidence["request_authentications"]] == ["berths/planner-jwt"]
    assert first.evidence["request_authentications"][0]["jwt_rules"][0]["issuer"] == ISSUER
    counters = first.evidence["jwt_counters"]["berths/berth-planner-v4"]
    assert counters["jwt_authn.denied"] > 0 and counters["jwt_authn.allowed"] > 0
    assert "jwt_authn_access_denied{Jwt_is_expired}" in first.evidence["response_details"]
    assert "MSH0417" in codes(findings(snap, "berths/berth-planner"))  # the server's view names it too


def test_a_namespace_wide_or_mesh_wide_request_authentication_applies_too() -> None:
    for ns, name in (("berths", "berths-jwt"), ("istio-system", "mesh-jwt")):
        first = findings(snapshot_of(_shipping(_request_authn(name, ns=ns))), "cranes/crane-scheduler")[0]
        assert (first.code, first.subject) == ("MSH0417", f"RequestAuthentication {ns}/{name}")


def test_keys_istiod_cannot_fetch_are_the_reason_every_token_fails() -> None:
    from meshobs.checks.jwt_denials import JwtVerdict, rejecting_authentication
    from meshobs.model import WorkloadRef

    snap = snapshot_of(_shipping(_request_authn("planner-jwt", labels={"app": "berth-planner"},
                                                jwks="http://169.254.169.254/keys")))
    verdict = rejecting_authentication(snap, WorkloadRef("berths", "berth-planner-v4"))
    assert isinstance(verdict, JwtVerdict) and verdict.request_authentication.name == "planner-jwt"
    assert verdict.response_details == ("jwt_authn_access_denied{Jwt_verification_fails}",)


def test_401s_where_no_request_authentication_applies_are_said_to_be_the_applications() -> None:
    """A RequestAuthentication for another workload is no explanation: no finding, and the check
    says it could not tie the 401s to a policy (naming the workload) rather than guessing."""
    snap = snapshot_of(_shipping(_request_authn("tides-jwt", labels={"app": "tide-tables"})))
    assert not {"MSH0417", "MSH0414"} & all_codes(snap)
    status, reason = _authz_check(snap, "cranes/crane-scheduler")
    assert status == "skipped" and "berths/berth-planner-v4" in reason


def test_401s_on_a_mesh_without_request_authentication_are_the_applications() -> None:
    snap = snapshot_of(_shipping(share=0.06))  # a login form's wrong passwords, say
    assert serious(diagnose_all(snap).findings) == []
    status, reason = _authz_check(snap, "berths/berth-planner")
    assert status == "skipped" and "berths/berth-planner-v4" in reason


def test_a_few_401s_are_the_filter_doing_its_job() -> None:
    snap = snapshot_of(_shipping(_request_authn("planner-jwt", labels={"app": "berth-planner"}), share=0.005))
    assert not {"MSH0417", "MSH0414"} & all_codes(snap)
    assert serious(diagnose_all(snap).findings) == []


def test_401s_a_gateway_answers_itself_name_its_request_authentication() -> None:
    """Clients outside the mesh never reach a workload: the ingress's own JWT filter refuses
    them, and the RequestAuthentication selecting the gateway's pods is named -- above the
    threshold only (a scanner's forged tokens are not a fault)."""
    for share, named in ((0.3, True), (0.004, False)):
        m = Mesh("harbour-edge", "berths", "the ingress validates tokens")
        m.namespace("berths")
        gw = m.ingress_gateway()
        planner = m.workload("berths", "berth-planner", "v4", replicas=2)
        m.call(gw, planner, 20.0 * (1 - share), 12.0, 40.0)
        m.unreached(gw, planner, 20.0 * share, ("401", "-", 1.0))
        m.count(gw, "http.outbound_0.0.0.0_8080.jwt_authn.denied", 20.0 * share)
        m.apply(_request_authn("edge-jwt", ns="istio-system", labels={"istio": "ingressgateway"}))
        m.apply(_request_authn("planner-jwt", labels={"app": "berth-planner"}))
        snap = snapshot_of(m)
        found = [f for f in findings(snap, "istio-system/istio-ingressgateway") if f.code == "MSH0417"]
        assert bool(found) is named
        if named:
            assert found[0].subject == "RequestAuthentication istio-system/edge-jwt"
            assert found[0].evidence["principal"] is None and abs(found[0].evidence["refused_ratio"] - 0.3) < 1e-6
            assert found[0].evidence["jwt_counters"]["istio-system/istio-ingressgateway"]["jwt_authn.denied"] > 0
        else:
            assert serious(diagnose_all(snap).findings) == []


def _require_jwt(**extra: object) -> dict[str, object]:
    return resource("AuthorizationPolicy", "berths", "planner-require-jwt", {
        "selector": {"matchLabels": {"app": "berth-planner"}},
        "rules": [{"from": [{"source": {"requestPrincipals": [f"{ISSUER}/*"]}}], **extra}]})


def test_403s_from_a_request_principals_rule_name_that_rule_and_the_request_authentication() -> None:
    snap = snapshot_of(_shipping(_require_jwt(), _request_authn("planner-jwt", labels={"app": "berth-planner"}),
                                 by="rbac"))
    first = findings(snap, "cranes/crane-scheduler")[0]
    assert (first.code, first.subject) == ("MSH0414", "AuthorizationPolicy berths/planner-require-jwt")
    assert first.evidence["action"] == "ALLOW" and "requestPrincipals" in first.evidence["rule"]
    assert first.evidence["response_details"] == "rbac_access_denied_matched_policy[none]"
    assert [r["request_authentication"] for r in first.evidence["request_authentications"]] == ["berths/planner-jwt"]
    assert first.evidence["rbac_counters"]["berths/berth-planner-v4"]["rbac.denied"] > 0


def test_a_request_principals_rule_without_any_request_authentication_is_still_named() -> None:
    """No RequestAuthentication: no request ever has a principal, the rule admits nobody."""
    first = findings(snapshot_of(_shipping(_require_jwt(), by="rbac")), "cranes/crane-scheduler")[0]
    assert (first.code, first.subject) == ("MSH0414", "AuthorizationPolicy berths/planner-require-jwt")
    assert len(first.evidence["request_authentications"]) == 0


def test_a_request_principals_rule_that_also_names_paths_is_not_blamed() -> None:
    """The path could be what refused the caller: not decidable from the metrics."""
    snap = snapshot_of(_shipping(_require_jwt(to=[{"operation": {"paths": ["/berths/*"]}}]), by="rbac"))
    assert "MSH0414" not in all_codes(snap)


# -- egress (MSH0415) and PassthroughCluster ---------------------------------------------------

def _observatory(sidecar: dict[str, object] | None, mesh_mode: str | None, blackhole: bool = True) -> Mesh:
    m = Mesh("observatory", "telescopes", "egress of the scheduler")
    m.namespace("scopes")
    sched = m.workload("scopes", "scheduler", "v3", replicas=2)
    ui = m.workload("scopes", "dome-ui", "v1")
    m.call(ui, sched, 5.0, 30.0, 120.0, ("500", "-", 0.4) if blackhole else ("500", "-", 0.0))
    m.external(sched, "BlackHoleCluster" if blackhole else "PassthroughCluster", 2.0, 0.3, 1.0,
               ("502", "-", 1.0) if blackhole else ("503", "-", 0.002))
    if sidecar is not None:
        m.apply(resource("Sidecar", "scopes", "scheduler-egress", sidecar))
    if mesh_mode is not None:
        m.mesh_config(outboundTrafficPolicy={"mode": mesh_mode})
    return m


def test_a_sidecar_narrowing_egress_is_named_for_blackholed_calls() -> None:
    snap = snapshot_of(_observatory({"workloadSelector": {"labels": {"app": "scheduler"}},
                                     "egress": [{"hosts": ["./*"]}],
                                     "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}, None))
    first = findings(snap, "scopes/scheduler")[0]
    assert (first.code, first.subject) == ("MSH0415", "Sidecar scopes/scheduler-egress")
    assert first.evidence["blocked_rps"] == 2.0 and list(first.evidence["sidecar_egress_hosts"]) == ["./*"]
    assert findings(snap, "scopes/dome-ui")[0].subject == "Sidecar scopes/scheduler-egress"


def test_registry_only_in_the_mesh_config_is_named_when_no_sidecar_narrows() -> None:
    snap = snapshot_of(_observatory(None, "REGISTRY_ONLY"))
    first = findings(snap, "scopes/scheduler")[0]
    assert (first.code, first.subject) == ("MSH0415", "MeshConfig istio-system/istio")
    assert first.evidence["mesh_outbound_mode"] == "REGISTRY_ONLY"


def test_passthrough_egress_under_allow_any_is_judged_like_any_destination() -> None:
    snap = snapshot_of(_observatory(None, "ALLOW_ANY", blackhole=False))
    assert not {"MSH0408", "MSH0415", "MSH0402"} & all_codes(snap)


# -- no route (MSH0416) linked to the analyzer's finding ---------------------------------------

def _museum(gateways: list[str]) -> Mesh:
    m = Mesh("museum-tickets", "museum", "ingress routes for the tours host")
    m.namespace("tours")
    gw = m.ingress_gateway()
    tours = m.workload("tours", "tour-booking", "v2")
    m.external(gw, "tours.artmuseum.example", 6.0, 0.2, 0.9, ("404", "NR", 1.0))
    m.external(gw, "scanner-probe.invalid", 0.02, 0.2, 0.9, ("404", "NR", 1.0))
    m.call(gw, tours, 0.5, 30.0, 90.0)
    m.apply(resource("Gateway", "istio-system", "museum-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*.artmuseum.example"]}]}))
    m.apply(resource("VirtualService", "tours", "tours", {
        "hosts": ["tours.artmuseum.example"], "gateways": gateways,
        "http": [{"route": [{"destination": {"host": "tour-booking"}}]}]}))
    return m


def test_no_route_at_the_ingress_ranks_the_broken_binding_first() -> None:
    snap = snapshot_of(_museum(["museum-gateway"]))  # a bare name: tours/museum-gateway, which is not there
    out = findings(snap, "istio-system/istio-ingressgateway")
    assert (out[0].code, out[0].subject) == ("MSH0224", "VirtualService tours/tours")
    symptom = next(f for f in out if f.code == "MSH0416")
    assert symptom.evidence["host"] == "tours.artmuseum.example" and symptom.evidence["no_route_rps"] == 6.0
    assert "MSH0224 VirtualService tours/tours" in symptom.caused_by
    # The scanner's unclaimed host is not a finding.
    assert all(f.evidence.get("host") != "scanner-probe.invalid" for f in out)


# -- intended traffic: fault injection and mirroring (MSH0410 / MSH0411) -----------------------

def test_injected_faults_are_info_and_not_the_destinations_errors() -> None:
    m = Mesh("ferry-bookings", "ferries", "a chaos test on the seat map")
    m.namespace("ferries")
    web = m.workload("ferries", "booking-web", "v8")
    seats = m.workload("ferries", "seat-map", "v3")
    m.call(web, seats, 40.0 * 0.9, 12.0, 40.0)
    m.unreached(web, seats, 40.0 * 0.1, ("500", "FI", 1.0))
    m.apply(resource("VirtualService", "ferries", "seat-map", {
        "hosts": ["seat-map"], "http": [{"fault": {"abort": {"httpStatus": 500, "percentage": {"value": 10}}},
                                          "route": [{"destination": {"host": "seat-map"}}]}]}))
    found = diagnose_all(snapshot_of(m)).findings
    assert not serious(found)
    info = next(f for f in found if f.code == "MSH0410")
    assert info.evidence["aborted_rps"] == 4.0 and list(info.evidence["faults"]) == [
        "VirtualService ferries/seat-map (http[0]: abort 10% 500)"]


def test_mirrored_copies_are_info_and_not_a_failing_version() -> None:
    m = Mesh("weather-radar", "radar", "radar-tiles v2 gets a mirrored copy")
    m.namespace("radar")
    app = m.workload("radar", "radar-app", "v6")
    v1 = m.workload("radar", "radar-tiles", "v1", replicas=2)
    v2 = m.workload("radar", "radar-tiles", "v2")
    m.call(app, v1, 30.0, 15.0, 60.0)
    m.mirror(app, v2, 15.0, 18.0, 70.0, ("500", "-", 0.12))
    m.apply(resource("VirtualService", "radar", "radar-tiles", {
        "hosts": ["radar-tiles"], "http": [{"route": [{"destination": {"host": "radar-tiles", "subset": "v1"}}],
                                             "mirror": {"host": "radar-tiles", "subset": "v2"},
                                             "mirrorPercentage": {"value": 50.0}}]}))
    m.apply(resource("DestinationRule", "radar", "radar-tiles", {
        "host": "radar-tiles", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                           {"name": "v2", "labels": {"version": "v2"}}]}))
    found = diagnose_all(snapshot_of(m)).findings
    assert not serious(found)
    assert next(f for f in found if f.code == "MSH0411").subject == "Workload radar/radar-tiles-v2"


def test_destination_only_traffic_without_a_mirror_is_still_judged() -> None:
    """A caller without a sidecar is seen only by the destination too; its errors are real."""
    m = Mesh("weather-radar-nomirror", "radar", "a sidecar-less caller")
    m.namespace("radar")
    m.namespace("legacy", injection=False)
    app = m.workload("legacy", "radar-cron", "v1")
    tiles = m.workload("radar", "radar-tiles", "v1")
    m.call(app, tiles, 10.0, 15.0, 60.0, ("500", "-", 0.2))
    assert "MSH0401" in all_codes(snapshot_of(m))


def test_policy_evaluation_follows_istios_order_and_string_matching() -> None:
    from meshobs.checks.authz import deciding_policy
    from meshobs.model import ConfigResource, freeze

    def policy(name: str, spec: dict[str, object], ns: str = "clinic") -> ConfigResource:
        return ConfigResource("AuthorizationPolicy", ns, name, freeze(spec))

    caller = "cluster.local/ns/reception/sa/front-desk"
    allow_lab = policy("allow-lab", {"rules": [{"from": [{"source": {"principals": ["*/sa/lab-results"]}}]}]})
    deny_not_clinic = policy("deny-outsiders", {"action": "DENY", "rules": [
        {"from": [{"source": {"notNamespaces": ["clinic"]}}], "to": [{"operation": {"methods": ["DELETE"]}}]}]},
        ns="istio-system")
    verdict = deciding_policy([allow_lab, deny_not_clinic], caller, "reception")
    assert verdict is not None and (verdict.policy.name, verdict.action) == ("deny-outsiders", "DENY")
    assert "operations" in verdict.rule  # methods are not in the metrics: "matches if the request does"
    verdict = deciding_policy([allow_lab], caller, "reception")
    assert verdict is not None and (verdict.policy.name, verdict.action) == ("allow-lab", "ALLOW")
    assert deciding_policy([allow_lab], "cluster.local/ns/clinic/sa/lab-results", "clinic") is None
    # A rule on request principals (JWT) is not in the metrics; but a refused caller that only
    # such a rule could admit lacked the JWT: that rule is the cause.
    jwt = policy("allow-jwt", {"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]})
    verdict = deciding_policy([jwt], caller, "reception")
    assert verdict is not None
    assert (verdict.policy.name, verdict.action, verdict.needs_jwt) == ("allow-jwt", "ALLOW", True)
    assert verdict.response_details == "rbac_access_denied_matched_policy[none]"
    # ... unless a path or a condition other than the JWT's could also be what refused it.
    jwt_path = policy("allow-jwt-path", {"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}],
                                                    "to": [{"operation": {"paths": ["/v1/*"]}}]}]})
    assert deciding_policy([jwt_path], caller, "reception") is None
    claims = policy("allow-claims", {"rules": [{"when": [{"key": "request.auth.claims[groups]", "values": ["ops"]}]}]})
    verdict = deciding_policy([claims], caller, "reception")
    assert verdict is not None and verdict.needs_jwt
    # A DENY rule on requests without a principal names its rule in Envoy's response details.
    deny = policy("require-jwt", {"action": "DENY", "rules": [
        {"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]})
    verdict = deciding_policy([deny, allow_lab], caller, "reception")
    assert verdict is not None
    assert (verdict.policy.name, verdict.action, verdict.needs_jwt) == ("require-jwt", "DENY", True)
    assert verdict.response_details == "rbac_access_denied_matched_policy[ns[clinic]-policy[require-jwt]-rule[0]]"


def test_a_sidecars_egress_hosts_import_by_namespace_and_name() -> None:
    from meshobs.checks.egress import imports
    from meshobs.model import ConfigResource, freeze

    sidecar = ConfigResource("Sidecar", "scopes", "narrow", freeze(
        {"egress": [{"hosts": ["./*", "istio-system/*", "*/weather.svc-partners.svc.cluster.local",
                               "archive/*.archive.svc.cluster.local"]}]}))
    assert imports(sidecar, "scheduler.scopes.svc.cluster.local")
    assert imports(sidecar, "istiod.istio-system.svc.cluster.local")
    assert imports(sidecar, "plates.archive.svc.cluster.local")
    assert not imports(sidecar, "tax-engine.tax.svc.cluster.local")
    assert imports(ConfigResource("Sidecar", "scopes", "all", freeze({})), "tax-engine.tax.svc.cluster.local")


def test_no_route_to_a_rarely_called_host_beside_a_busy_one_is_found() -> None:
    """Every call to a host the service asks rarely fails 404 NR: a sliver of the service's
    calls (0.5 %), all of that host's. It is judged against the calls to the host too."""
    m = Mesh("glasshouse", "orchids", "the misting valves lost their route")
    m.namespace("orchids")
    web = m.workload("orchids", "greenhouse-web", "v2")
    climate = m.workload("orchids", "climate-api", "v5")
    valves = m.workload("orchids", "misting-valves", "v1")
    m.call(web, climate, 100.0, 10.0, 40.0)
    m.unreached(web, valves, 0.5, ("404", "NR", 1.0))
    m.apply(resource("VirtualService", "orchids", "misting-valves", {
        "hosts": ["misting-valves"],
        "http": [{"match": [{"uri": {"prefix": "/valves"}}], "route": [{"destination": {"host": "misting-valves"}}]}]}))
    out = findings(snapshot_of(m), "orchids/greenhouse-web")
    symptom = next(f for f in out if f.code == "MSH0416")
    assert symptom.evidence["host"] == "misting-valves.orchids.svc.cluster.local"
    assert symptom.evidence["ratio_of_host_calls"] == 1.0 and symptom.evidence["ratio_of_calls"] < 0.01
