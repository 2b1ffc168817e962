"""Analyzer findings linked to what the traffic shows (issue 11 Build 3): a cause's signature
(the status codes and Envoy flags of the requests it breaks) is matched against how the
symptom's requests failed, over the hop to the service the cause is on. The cause the failures
point at ranks first; one they rule out explains nothing; unknown failures rule nothing out."""

from __future__ import annotations

from dataclasses import replace

from meshobs.checks.base import Finding, finding
from meshobs.engine import diagnose, hop_failures, hop_shows
from meshobs.engine.ranking import Failures, rank, signature_share, symptom_failures
from meshobs.model import Edge, Mesh, MeshSnapshot, ResponseStat, ServiceRef, SourceState, SourceStatus, WorkloadRef
from tests.support.manifests import manifests_snapshot
from tests.test_analyzers import docs
from tests.test_analyzers_sec import INJECTED, authz, namespace, principals, svc, workload

WEB, INTAKE, LEDGER = ServiceRef("claims", "web"), ServiceRef("claims", "intake"), ServiceRef("payments", "ledger")


def _symptom(by_code: dict[str, float] | None = None) -> Finding:
    evidence: dict[str, object] = {"error_rps": 8.0}
    if by_code is not None:
        evidence |= {"by_code": by_code, "by_flag": {"-": {"rps": 8.0, "meaning": "none"}}}
    return finding("MSH0401", "traffic.error_rate", f"Service {INTAKE}", service=INTAKE, evidence=evidence,
                   magnitude=8.0, ratio_pct="70", error_rps=8.0, rps=12.0, threshold_pct="1", top="500")


def _causes() -> list[Finding]:
    """Three findings on the callee: a policy refusing the caller (403), endpoints ejected (no
    signature: could explain any error), a subset without pods (503 UH)."""
    return [
        finding("MSH0255", "config.authz_identity", "AuthorizationPolicy payments/callers", service=LEDGER,
                policy="payments/callers", action="ALLOW", principal="p", namespace="claims",
                service_account="claims-portal", accounts="claims-intake", consequence="403"),
        finding("MSH0406", "traffic.endpoints", f"Service {LEDGER}", service=LEDGER, magnitude=3, ejected=3, proxies=2),
        finding("MSH0202", "config.empty_subset", "DestinationRule payments/ledger", service=LEDGER,
                destination_rule="payments/ledger", subset="v9", labels="version=v9"),
    ]


def _rank(hop: Failures | None, symptom: Finding) -> list[Finding]:
    return rank(INTAKE, {INTAKE: [symptom], LEDGER: _causes()}, {INTAKE: 0, LEDGER: 1},
                lambda s: [LEDGER] if s == INTAKE else [], hop_failures=lambda _x, _c: hop)


def test_the_cause_the_failures_point_at_ranks_first_and_one_they_rule_out_explains_nothing() -> None:
    ranked = _rank(Failures(8.0, {"403": 8.0}, {"-": 8.0}), _symptom({"500": 8.0}))
    assert [(f.rank, f.code) for f in ranked] == [(1, "MSH0255"), (2, "MSH0406"), (3, "MSH0401")]
    assert ranked[0].cause_of == ("MSH0401 Service claims/intake",)  # a warning explaining an error
    # The callee's 403s carry no UH: the subset without pods does not explain the caller's errors.
    assert "MSH0202" not in {f.code for f in ranked}


def test_failures_not_broken_down_rule_nothing_out() -> None:
    """CloudWatch's code classes, no flags: every cause may explain, magnitude orders them."""
    ranked = _rank(None, _symptom())
    assert [f.code for f in ranked] == ["MSH0406", "MSH0202", "MSH0255", "MSH0401"]


def test_signature_share() -> None:
    subset = _causes()[2]
    assert signature_share(subset, Failures(10.0, {"503": 10.0}, {"UH": 4.0, "-": 6.0})) == 0.4
    assert signature_share(subset, Failures(10.0, {"503": 10.0}, {"-": 10.0})) == 0.0
    assert signature_share(subset, Failures(10.0, {"503": 10.0}, {})) is None  # flags unknown
    assert signature_share(_causes()[1], Failures(10.0, {"503": 10.0}, {"UH": 10.0})) is None  # no signature


def test_a_symptoms_grpc_failures_are_read_by_their_http_equivalent() -> None:
    """The breakdown names a gRPC call failed inside an HTTP 200 by its status: the ranking
    reads it as the model's one gRPC<->HTTP table says (14 UNAVAILABLE is a 503), a code class
    (CloudWatch's 5xx) stays unknown."""
    failures = symptom_failures(_symptom({"200 grpc-status 14 UNAVAILABLE": 6.0, "503": 1.0, "5xx": 1.0,
                                          "200 grpc-status 16 UNAUTHENTICATED": 0.5}))
    assert failures is not None and dict(failures.by_code) == {"503": 7.0, "401": 0.5}
    assert ResponseStat.of_outcome("200 grpc-status 14 UNAVAILABLE") == ResponseStat("200", "-", 0.0, "14")
    assert ResponseStat.of_outcome("not failed") is None and ResponseStat.of_outcome("5xx") is None
    for stat in (ResponseStat("200", "-", 1.0, "14"), ResponseStat("503", "UH", 1.0, "14"),
                 ResponseStat("200", "-", 1.0, "99"), ResponseStat("0", "DC", 1.0)):
        back = ResponseStat.of_outcome(stat.outcome)
        assert back is not None and back.http_equivalent == stat.http_equivalent


def test_grpc_unavailable_rules_out_a_refusal_on_the_symptoms_own_service() -> None:
    """Calls failing with gRPC 14 inside HTTP 200 were not refused: a policy whose requests
    fail with 403, filed on the same service, explains none of them (it was left standing
    when the breakdown's gRPC failures were not read)."""
    refusal = replace(_causes()[0], service=INTAKE)
    grpc = _symptom({"200 grpc-status 14 UNAVAILABLE": 8.0})
    ranked = rank(INTAKE, {INTAKE: [grpc, refusal]}, {INTAKE: 0}, lambda _s: [])
    assert "MSH0401" in {f.code for f in ranked}
    assert not any(f.code == "MSH0255" and f.cause_of for f in ranked)
    refused = _symptom({"200 grpc-status 7 PERMISSION_DENIED": 8.0})  # the gRPC 403
    ranked = rank(INTAKE, {INTAKE: [refused, refusal]}, {INTAKE: 0}, lambda _s: [])
    assert ranked[0].code == "MSH0255" and ranked[0].cause_of == ("MSH0401 Service claims/intake",)


def _edge(src: str, dst: ServiceRef, responses: tuple[ResponseStat, ...]) -> Edge:
    return Edge(source=WorkloadRef(src.split("/")[0], src.split("/")[1]), destination=dst,
                destination_workload=WorkloadRef(dst.namespace, f"{dst.name}-v1"),
                source_service=ServiceRef.parse(src.rsplit("-", 1)[0]), mesh=Mesh.ISTIO,
                request_rate=sum(r.rate for r in responses), responses=responses)


def test_an_authorization_policy_naming_the_wrong_account_ranks_first_for_the_caller_it_refuses() -> None:
    """The analyzer finds the principal no workload runs as; the caller's 403s over the hop link
    it to the caller's own errors (its 500s to its callers), and it ranks first there."""
    snap = manifests_snapshot({"a.yaml": docs(
        namespace("claims", INJECTED), namespace("payments", INJECTED),
        workload("web-v1", "claims", "{app: web}", "web"), workload("intake-v1", "claims", "{app: intake}",
                                                                       "claims-intake"),
        workload("ledger-v1", "payments", "{app: ledger}", "ledger"),
        svc("web", "claims", "[{name: http, port: 8080}]"), svc("intake", "claims", "[{name: http, port: 8080}]"),
        svc("ledger", "payments", "[{name: http, port: 8080}]"),
        authz("callers", "payments", principals("cluster.local/ns/claims/sa/claims-portal"), "{app: ledger}"))})
    edges = (_edge("claims/web-v1", INTAKE, (ResponseStat("200", "-", 4.0), ResponseStat("500", "-", 8.0))),
             _edge("claims/intake-v1", LEDGER, (ResponseStat("403", "-", 8.0),)))
    snap = replace(snap, edges=edges, sources=(*snap.sources, SourceStatus("prometheus", SourceState.OK,
                                                                           kind="prometheus")))
    assert hop_shows(snap, INTAKE, LEDGER, "errors")  # refusals are failed calls to the caller
    assert hop_failures(snap, INTAKE, LEDGER) == Failures(8.0, {"403": 8.0}, {"-": 8.0})
    report = diagnose(snap, INTAKE)
    first = report.findings[0]
    assert (first.code, first.subject, first.service) == ("MSH0255", "AuthorizationPolicy payments/callers", LEDGER)
    assert first.cause_of == ("MSH0401 Service claims/intake",)


def test_a_split_that_differs_from_the_weights_is_explained_by_what_routes_elsewhere() -> None:
    """MSH0205 is a routing symptom: traffic goes elsewhere than configured. A subset without
    pods or a rule that can never match explains it; a certificate expiring does not."""
    split = finding("MSH0205", "config.split_mismatch", f"Service {LEDGER}", service=LEDGER, observed="v1 100%",
                    virtual_service="payments/ledger", configured="v1 90%/v2 10%", p_value=1e-9, requests=900,
                    magnitude=10)
    unreachable = finding("MSH0220", "config.unreachable_rule", "VirtualService payments/ledger", service=LEDGER,
                          rule="1", virtual_service="payments/ledger", reason="rule 0 takes every request")
    cert = finding("MSH0303", "certs.expiry", "Workload payments/ledger-v1", service=LEDGER, role="workload",
                   serial="1", cert_subject="x", remaining="2d", threshold="3d")
    ranked = rank(LEDGER, {LEDGER: [split, unreachable, cert, *_causes()[2:]]}, {LEDGER: 0}, lambda _s: [])
    by_code = {f.code: f for f in ranked}
    assert set(by_code["MSH0205"].caused_by) == {"MSH0202 DestinationRule payments/ledger",
                                                  "MSH0220 VirtualService payments/ledger"}
    assert by_code["MSH0303"].cause_of == ()
    assert [f.code for f in ranked].index("MSH0205") > [f.code for f in ranked].index("MSH0220")


def _ledger_with_dead_canary_rule(v2_rate: float, v1_rate: float = 5.0) -> MeshSnapshot:
    """Ledger's VirtualService sends everything to v1 first, then (never) the canary header to
    v2; callers' traffic into ledger per version as given (300 s window)."""
    from tests.test_analyzers import CATCH_ALL, HEADER_RULE, LEDGER_DR, deployment, service, vs

    snap = manifests_snapshot({"a.yaml": docs(
        service("ledger", "payments"), deployment("ledger-v1", "payments", "{app: ledger, version: v1}"),
        deployment("ledger-v2", "payments", "{app: ledger, version: v2}"), LEDGER_DR,
        vs("ledger", "payments", CATCH_ALL + HEADER_RULE))})
    edges = tuple(Edge(source=WorkloadRef("payments", "checkout-v1"), destination=LEDGER,
                       destination_workload=WorkloadRef("payments", f"ledger-{v}"),
                       source_service=ServiceRef("payments", "checkout"), mesh=Mesh.ISTIO, request_rate=rate,
                       responses=(ResponseStat("200", "-", rate),))
                  for v, rate in (("v1", v1_rate), ("v2", v2_rate)) if rate > 0)
    return replace(snap, edges=edges, sources=(*snap.sources, SourceStatus("prometheus", SourceState.OK,
                                                                           kind="prometheus")))


def test_a_rule_that_can_never_match_and_its_subset_that_gets_nothing_are_linked() -> None:
    """The analyzer finds the dead rule from the configuration; the traffic shows its subset got
    none of 1,500 requests; the ranking puts the rule first as the cause of that."""
    report = diagnose(_ledger_with_dead_canary_rule(0.0), LEDGER)
    by_code = {f.code: f for f in report.findings}
    assert (by_code["MSH0259"].fields["subset"], by_code["MSH0259"].fields["requests"]) == ("v2", 1500.0)
    assert by_code["MSH0259"].caused_by == ("MSH0220 VirtualService payments/ledger",)
    assert report.findings[0].code == "MSH0220"


def test_a_subset_that_gets_traffic_or_too_little_traffic_is_no_symptom() -> None:
    # v2 gets some (the rule is dead, but something else sends there): nothing to confirm.
    report = diagnose(_ledger_with_dead_canary_rule(0.5), LEDGER)
    assert "MSH0259" not in {f.code for f in report.findings}
    # 60 requests in the window: too few to say the subset got none on purpose.
    report = diagnose(_ledger_with_dead_canary_rule(0.0, v1_rate=0.2), LEDGER)
    result = next(c for c in report.checks if c.id == "config.idle_route")
    assert (result.status, result.could_not_check) == ("skipped", True)


def test_routing_is_a_service_own_symptom_and_never_walks_to_callees() -> None:
    """A callee's routes splitting wrongly is the callee's business: with the caller's own split
    check skipped ('routing' unjudged), the callee's weight drift does not join its report."""
    drift = finding("MSH0203", "config.weight_drift", "VirtualService payments/ledger", service=LEDGER,
                    field="spec.http[0].route[0].weight", object="VirtualService payments/ledger",
                    reference="live", expected="90", proxies="x", effective="100")
    assert rank(INTAKE, {INTAKE: [], LEDGER: [drift]}, {INTAKE: 0, LEDGER: 1}, lambda s: [LEDGER] if s == INTAKE
                else [], unjudged=frozenset({"routing"})) == []
