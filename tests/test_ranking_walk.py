"""The ranking walk (issue 10 Build 3): down the failing path any number of hops while the
evidence holds, stopping where it ends; several independent faults each ranked; a fault with a
deadline surfaced for every caller; symptoms linked to findings about the resources they went
through. Pure ``rank`` on hand-made findings, and the engine on hand-built meshes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from meshobs.checks.base import Finding, Settings, finding
from meshobs.engine import diagnose
from meshobs.engine.ranking import MAX_DEPTH, Failures, downstream, rank
from meshobs.model import (
    UNKNOWN_SERVICE,
    UNKNOWN_WORKLOAD,
    Cert,
    CertRole,
    Latency,
    MeshSnapshot,
    ResponseStat,
    ServiceRef,
    WorkloadRef,
)
from tests.support.builders import MeshBuilder

NS = "freight"


def ref(name: str) -> ServiceRef:
    return ServiceRef(NS, name)


def errors_of(name: str, rps: float = 10.0) -> Finding:
    return finding("MSH0401", "traffic.error_rate", f"Service {NS}/{name}", service=ref(name),
                   magnitude=rps, ratio_pct="50", error_rps=rps, rps=2 * rps, threshold_pct="1", top="503")


def ejected(name: str, n: int = 1) -> Finding:
    return finding("MSH0406", "traffic.endpoints", f"Service {NS}/{name}", service=ref(name), magnitude=n,
                   ejected=n, proxies=1)


def cert_expiring(name: str) -> Finding:
    return finding("MSH0303", "certs.expiry", f"Workload {NS}/{name}-v1", service=ref(name), magnitude=1.0,
                   role="workload", serial="ab12", cert_subject="spiffe", remaining="2h 40m", threshold="20%")


def chain(*names: str) -> dict[ServiceRef, list[ServiceRef]]:
    return {ref(a): [ref(b)] for a, b in pairwise(names)}


def ranked(target: str, findings: dict[str, list[Finding]], graph: dict[ServiceRef, list[ServiceRef]],
           shows: dict[tuple[str, str], bool | None] | None = None, **kw: object) -> list[Finding]:
    callees = lambda s: graph.get(s, [])  # noqa: E731
    depth = downstream(ref(target), callees, None)
    by_service = {s: findings.get(s.name, []) for s in depth}

    def hop(x: ServiceRef, c: ServiceRef, _kind: str) -> bool | None:
        return (shows or {}).get((x.name, c.name), True)

    return rank(ref(target), by_service, depth, callees, hop, **kw)  # type: ignore[arg-type]


def call_chain(names: list[str], *others: str) -> MeshBuilder:
    """A mesh of ``names`` (then ``others``), each of ``names`` calling the next at 5 rps."""
    m = MeshBuilder(namespace=NS)
    for n in [*names, *others]:
        m.service(n)
    for a, b in pairwise(names):
        m.call(a, b, rps=5.0)
    return m


def labels(fs: list[Finding]) -> list[str]:
    return [f"{f.code} {f.subject}" for f in fs]


def test_the_walk_goes_down_any_number_of_hops_to_the_cause() -> None:
    names = [f"hop{i}" for i in range(8)]
    findings = {n: [errors_of(n)] for n in names}
    findings["hop7"].append(ejected("hop7"))
    out = ranked("hop0", findings, chain(*names))
    assert labels(out)[0] == "MSH0406 Service freight/hop7"
    # Every hop's symptom is in the chain and cites the cause at the bottom.
    assert all(f.caused_by == ("MSH0406 Service freight/hop7",) for f in out[1:] if f.code == "MSH0401")
    assert {f.service for f in out} == {ref(n) for n in names}


def test_the_walk_stops_where_the_evidence_ends() -> None:
    names = ["gate", "orders", "stock", "warehouse"]
    findings = {"gate": [errors_of("gate")], "orders": [errors_of("orders")], "warehouse": [ejected("warehouse")]}
    # stock answers orders fine: warehouse's ejected endpoints cannot explain orders' errors.
    out = ranked("gate", findings, chain(*names), shows={("orders", "stock"): False})
    assert labels(out) == ["MSH0401 Service freight/orders", "MSH0401 Service freight/gate"]
    assert out[1].caused_by == ("MSH0401 Service freight/orders",)


def test_a_hop_without_findings_passes_the_failure_on_when_it_carries_the_errors() -> None:
    """stock shows no symptom of its own (its errors are under the threshold) but its calls to
    warehouse fail: the walk goes through it."""
    findings = {"gate": [errors_of("gate")], "warehouse": [ejected("warehouse")]}
    out = ranked("gate", findings, chain("gate", "stock", "warehouse"))
    assert labels(out)[0] == "MSH0406 Service freight/warehouse"
    assert out[1].caused_by == ("MSH0406 Service freight/warehouse",)


def test_causes_on_the_failing_path_are_reported_without_a_symptom_at_the_target() -> None:
    """Retries hide the callee's failure from the target (no symptom), but the hop carries its
    errors: the callee's cause is reported. A clean hop brings nothing."""
    findings = {"ledger": [ejected("ledger")], "audit": [ejected("audit")]}
    graph = {ref("pay"): [ref("ledger"), ref("audit")]}
    out = ranked("pay", findings, graph, shows={("pay", "audit"): False})
    assert labels(out) == ["MSH0406 Service freight/ledger"]
    # Without data for the hop (None) nothing is claimed either: the path needs evidence.
    out = ranked("pay", findings, graph, shows={("pay", "audit"): None, ("pay", "ledger"): None})
    assert out == []


def test_two_independent_faults_are_each_ranked_before_their_symptoms() -> None:
    findings = {"front": [errors_of("front", 30.0)], "cart": [ejected("cart", 2)], "search": [ejected("search", 1)]}
    graph = {ref("front"): [ref("cart"), ref("search")]}
    out = ranked("front", findings, graph)
    assert set(labels(out[:2])) == {"MSH0406 Service freight/cart", "MSH0406 Service freight/search"}
    assert out[2].caused_by == ("MSH0406 Service freight/cart", "MSH0406 Service freight/search")


def test_a_deadline_downstream_ranks_right_after_the_current_fault() -> None:
    findings = {"play": [errors_of("play", 28.8)], "manifest": [errors_of("manifest", 28.8)],
                "licence": [cert_expiring("licence")]}
    graph = {ref("play"): [ref("manifest"), ref("licence")]}
    # The licence hop is clean: a deadline is surfaced whatever the traffic says today.
    out = ranked("play", findings, graph, shows={("play", "licence"): False})
    assert labels(out) == ["MSH0401 Service freight/manifest", "MSH0303 Workload freight/licence-v1",
                           "MSH0401 Service freight/play"]


def test_a_cycle_in_the_call_graph_ends() -> None:
    findings = {"a": [errors_of("a")], "b": [errors_of("b")], "c": [ejected("c")]}
    graph = {ref("a"): [ref("b")], ref("b"): [ref("a"), ref("c")], ref("c"): [ref("b")]}
    out = ranked("a", findings, graph)
    assert labels(out)[0] == "MSH0406 Service freight/c"


def test_a_symptom_is_linked_to_the_findings_about_the_resources_it_went_through() -> None:
    symptom = replace(finding("MSH0416", "traffic.no_route", "Edge istio-system/gw -> tix.example",
                              service=ref("gw"), source="gw", rps="9", host="tix.example", claims="..."),
                      related=("VirtualService tickets/checkout",))
    cause = finding("MSH0224", "config.gateway_not_found", "VirtualService tickets/checkout", virtual_service="x",
                    gateway="tix-gw", gateway_ref="tickets/tix-gw")
    out = ranked("gw", {"gw": [symptom]}, {},
                 related=lambda subject: [cause] if subject == "VirtualService tickets/checkout" else [])
    assert labels(out) == ["MSH0224 VirtualService tickets/checkout", "MSH0416 Edge istio-system/gw -> tix.example"]
    assert out[1].caused_by == ("MSH0224 VirtualService tickets/checkout",)


def test_downstream_follows_evidence_beyond_the_fixed_radius() -> None:
    names = [f"s{i}" for i in range(MAX_DEPTH + 4)]
    graph = chain(*names)
    side = {ref(names[1]): [ref("quiet")], ref("quiet"): [ref("deeper")], ref("deeper"): [ref("deepest")]}
    graph.update({k: graph.get(k, []) + v for k, v in side.items()})
    near = downstream(ref("s0"), lambda s: graph.get(s, []))
    assert ref("deepest") not in near and ref(names[-1]) not in near
    everything = downstream(ref("s0"), lambda s: graph.get(s, []), follow=lambda x, c: c.name.startswith("s"))
    assert everything[ref(names[-1])] == len(names) - 1
    assert ref("deepest") not in everything  # no evidence that way beyond the radius


# -- the engine, on hand-built meshes ------------------------------------------------------------

def test_engine_walks_a_six_hop_timeout_chain_to_the_slow_service() -> None:
    names = ["shipments", "routing", "carriers", "rates", "tariffs", "tariff-db"]
    m = MeshBuilder(namespace=NS)
    for n in names:
        m.service(n)
    for a, b in pairwise(names):
        last = b == names[-1]
        m.call(a, b, rps=20.0, responses=[("200", "-", 0.45), ("504", "UT" if last else "-", 0.55)],
               p99=2000.0 if last else 2100.0)
    m.edges[-1] = replace(m.edges[-1], destination_latency=Latency(p50=2600.0, p99=6100.0),
                          destination_responses=(ResponseStat("200", "-", 9.0), ResponseStat("0", "DC", 11.0)))
    report = diagnose(m.build(), ref("shipments"))
    first = report.findings[0]
    assert (first.code, first.subject) == ("MSH0413", "Service freight/tariff-db")
    assert first.evidence["destination_disconnects_rps"] == 11.0 and first.evidence["own_p99_ms"] == 6100.0
    top = next(f for f in report.findings if f.subject == "Edge freight/shipments -> freight/routing")
    assert "MSH0413 Service freight/tariff-db" in top.caused_by and top.rank > first.rank


def test_a_timeout_on_a_service_that_waits_on_its_callee_is_walked_down_to_the_callee() -> None:
    """track -> geo times out (504 UT), but geo spends its time waiting on tiles: tiles is the
    slow hop, ranked first; geo's timeout finding is the link above it."""
    m = MeshBuilder(namespace=NS)
    for n in ("track", "geo", "tiles"):
        m.service(n)
    m.call("track", "geo", rps=20.0, responses=[("200", "-", 0.5), ("504", "UT", 0.5)], p99=2000.0)
    m.edges[-1] = replace(m.edges[-1], destination_latency=Latency(p50=2500.0, p99=5000.0),
                          destination_responses=(ResponseStat("200", "-", 10.0), ResponseStat("0", "DC", 10.0)))
    m.call("geo", "tiles", rps=20.0, p99=4900.0)
    out = diagnose(m.build(), ref("track")).findings
    assert [(f.code, f.subject) for f in out[:1]] == [("MSH0403", "Service freight/tiles")]
    timeout = next(f for f in out if f.code == "MSH0413")
    assert timeout.subject == "Service freight/geo" and timeout.caused_by == ("MSH0403 Service freight/tiles",)
    # Without the wait below (tiles fast), geo itself is the slow hop.
    m.edges[-1] = replace(m.edges[-1], latency=Latency(p50=4.0, p99=20.0))
    assert diagnose(m.build(), ref("track")).findings[0].subject == "Service freight/geo"


def test_a_certificate_running_out_far_below_is_in_every_callers_report() -> None:
    """Seven hops of healthy calls; the last service's certificate expires in 3 hours. Nothing
    fails yet, so no evidence leads there: its finding is still the first thing the top sees."""
    from datetime import timedelta

    from meshobs.model import Cert, CertRole, WorkloadRef

    names = [f"tier{i}" for i in range(8)]
    snap = call_chain(names).build()
    cert = Cert(serial="0f1e", subject="", issuer="cluster.local", not_before=snap.time - timedelta(hours=21),
                not_after=snap.time + timedelta(hours=3), role=CertRole.WORKLOAD,
                sans=(f"spiffe://cluster.local/ns/{NS}/sa/tier7",), workload=WorkloadRef(NS, "tier7-v1"))
    snap = replace(snap, certs=(cert,))
    out = diagnose(snap, ref("tier0")).findings
    assert [(f.code, f.subject) for f in out] == [("MSH0303", "Workload freight/tier7-v1")]
    assert out[0].cause_of == () and out[0].caused_by == ()


def _with_certs(snap: MeshSnapshot, *certs: Cert) -> MeshSnapshot:
    return replace(snap, certs=certs)


def _cert(snap: MeshSnapshot, workload: str, serial: str, role: CertRole, left: timedelta) -> Cert:
    return Cert(serial=serial, subject="", issuer="cluster.local", not_before=snap.time - timedelta(days=300),
                not_after=snap.time + left, role=role, workload=WorkloadRef(NS, workload))


def _summary(findings: tuple[Finding, ...]) -> list[tuple[int, str, str]]:
    return [(f.rank, f.code, f.subject) for f in findings]


def test_all_and_each_service_agree_on_deadlines_at_any_depth() -> None:
    """--all finds deadlines once for the whole mesh; every report must still say what the
    service's own diagnosis says, at any depth and on a side branch. A call to a service the
    metrics could not name (unknown) leads nowhere, as the walk down sees it."""
    from meshobs.engine import diagnose_all

    names = [f"tier{i}" for i in range(7)]
    m = call_chain(names, "audit", "bystander")
    m.call("bystander", "tier5", rps=1.0)
    # audit -> unknown, and unknown -> tier6: no known path from audit through it.
    m.call("audit", "tier6", rps=1.0)
    m.edges[-1] = replace(m.edges[-1], destination=UNKNOWN_SERVICE, destination_workload=None)
    m.edges.append(replace(m.edges[0], source=UNKNOWN_WORKLOAD, source_service=UNKNOWN_SERVICE,
                           destination=ref("tier6"), destination_workload=WorkloadRef(NS, "tier6-v1")))
    snap = m.build()
    snap = _with_certs(snap, _cert(snap, "tier6-v1", "0f1e", CertRole.WORKLOAD, timedelta(hours=3)),
                       _cert(snap, "tier3-v1", "77aa", CertRole.WORKLOAD, timedelta(hours=2)))
    everything = {r.service: r for r in diagnose_all(snap).reports}
    for s in snap.services:
        assert _summary(everything[s.ref].findings) == _summary(diagnose(snap, s.ref).findings), s.ref
    assert [f.subject for f in everything[ref("tier0")].findings] == [
        "Workload freight/tier6-v1", "Workload freight/tier3-v1"]  # deeper first, as the order says
    assert [f.subject for f in everything[ref("tier4")].findings] == ["Workload freight/tier6-v1"]
    assert [f.subject for f in everything[ref("bystander")].findings] == ["Workload freight/tier6-v1"]
    assert everything[ref("audit")].findings == ()


def test_a_mesh_ca_running_out_is_one_finding_for_every_service_found_in_one_walk() -> None:
    """The root certificate every proxy holds: one finding (one subject) in every report, and
    the engine walks up the call graph once for it, not once per service that holds it."""
    from meshobs.engine import _Cache, diagnose_all

    names = [f"hub{i}" for i in range(6)]
    snap = call_chain(names).build()
    snap = _with_certs(snap, *(_cert(snap, f"{n}-v1", "c0ffee", CertRole.ROOT, timedelta(days=12)) for n in names))
    cache = _Cache(snap, Settings(), None)
    (deadline,) = cache.deadlines()
    assert set(deadline.holders) == {ref(n) for n in names}
    for report in diagnose_all(snap).reports:
        assert [(f.code, f.subject) for f in report.findings] == [("MSH0303", "Certificate c0ffee")]


def test_the_neighbourhood_a_scoped_diagnose_collects_holds_everything_the_walk_can_reach() -> None:
    """Live ``diagnose SERVICE`` collects the neighbourhood only (meshobs.neighbourhood): the
    walk may follow evidence, and a deadline may surface, from any depth below the target, so
    all of it is collected; what lies beside or above the target is not."""
    from meshobs.neighbourhood import neighbourhood

    names = [f"tier{i}" for i in range(MAX_DEPTH + 4)]
    m = call_chain(names, "portal", "sibling")
    m.call("portal", "tier1", rps=1.0).call("portal", "sibling", rps=1.0)
    scope = neighbourhood(m.build(), ref("tier1"))
    assert scope.services == {ref(n) for n in names[1:]}
    assert WorkloadRef(NS, f"{names[-1]}-v1") in scope.workloads
    assert WorkloadRef(NS, "portal-v1") in scope.workloads  # a caller: its proxies hold tier1's endpoints
    assert WorkloadRef(NS, "sibling-v1") not in scope.workloads


# Signatures at any depth (the walk merged with issue 11's signature matching).

def empty_subset(name: str) -> Finding:
    return finding("MSH0202", "config.empty_subset", f"DestinationRule {NS}/{name}", service=ref(name),
                   destination_rule=f"{NS}/{name}", subset="canary", labels="version=v9")


def unknown_principal(name: str) -> Finding:
    return finding("MSH0255", "config.authz_identity", f"AuthorizationPolicy {NS}/{name}", service=ref(name),
                   policy=f"{NS}/{name}", action="ALLOW", principal="p", namespace=NS, service_account="a",
                   accounts="b", consequence="403")


UH = Failures(6.0, {"503": 6.0}, {"UH": 6.0})
REFUSED_403 = Failures(6.0, {"403": 6.0}, {"-": 6.0})


def test_signatures_are_matched_on_the_hop_where_the_walk_finds_the_cause_however_deep() -> None:
    """Four hops down, the bottom service holds three causes; its callers' calls fail 503 UH
    (it never sees them: no symptom of its own): the subset without pods ranks first, the
    ejected endpoints (no signature) may still explain, the policy whose 403s nobody got
    explains nothing."""
    names = [f"hop{i}" for i in range(5)]
    findings = {n: [errors_of(n)] for n in names[:-1]}
    findings["hop4"] = [ejected("hop4", n=9), empty_subset("hop4"), unknown_principal("hop4")]
    hops = {(ref(a), ref(b)): UH if b == "hop4" else None for a, b in pairwise(names)}
    out = ranked("hop0", findings, chain(*names), hop_failures=lambda x, c: hops.get((x, c)))
    assert labels(out)[:2] == ["MSH0202 DestinationRule freight/hop4", "MSH0406 Service freight/hop4"]
    assert "MSH0255" not in {f.code for f in out}
    assert out[-1].caused_by == ("MSH0202 DestinationRule freight/hop4", "MSH0406 Service freight/hop4")


def test_a_cause_the_failures_rule_out_does_not_stop_the_walk() -> None:
    """hop1's policy refusing callers is not what hop0 got (503 UH, no 403): the walk looks
    past it and finds the empty subset below."""
    findings = {"hop0": [errors_of("hop0")], "hop1": [unknown_principal("hop1")], "hop2": [empty_subset("hop2")]}
    out = ranked("hop0", findings, chain("hop0", "hop1", "hop2"), hop_failures=lambda _x, _c: UH)
    assert labels(out) == ["MSH0202 DestinationRule freight/hop2", "MSH0401 Service freight/hop0"]


def test_a_cause_on_the_caller_about_one_callee_is_matched_on_the_calls_to_it() -> None:
    """A policy on the caller's side naming the callee (MSH0414's destination) explains the
    caller's own 500s when its calls to that callee were refused, not when they failed UH."""
    denied = finding("MSH0414", "traffic.authorization", f"AuthorizationPolicy {NS}/deny", service=ref("web"),
                     evidence={"destination": str(ref("api"))}, policy=f"AuthorizationPolicy {NS}/deny",
                     action="DENY", source="web", principal="p", destination="api", denied_rps=6.0, rule="r")
    symptom = replace(errors_of("web"), evidence={"error_rps": 6.0, "by_code": {"500": 6.0}})
    for hop, linked in ((REFUSED_403, True), (UH, False)):
        out = ranked("web", {"web": [symptom, denied]}, {ref("web"): [ref("api")]},
                     hop_failures=lambda _x, _c, hop=hop: hop)  # type: ignore[misc]
        web = next(f for f in out if f.code == "MSH0401")
        assert (web.caused_by == ("MSH0414 AuthorizationPolicy freight/deny",)) is linked


def test_refusals_are_matched_to_the_filter_whose_code_they_carry() -> None:
    """401s are the JWT filter's (MSH0417, a RequestAuthentication), 403s the RBAC filter's
    (MSH0414, an AuthorizationPolicy): each explains the caller's 500s only for its own code."""
    jwt = finding("MSH0417", "traffic.authorization", f"RequestAuthentication {NS}/jwt", service=ref("web"),
                  evidence={"destination": str(ref("api"))}, request_authentication=f"RequestAuthentication {NS}/jwt",
                  issuers="https://id.example", source="web", destination="api", refused_rps=6.0,
                  refused_pct="100", reason="r")
    rbac = finding("MSH0414", "traffic.authorization", f"AuthorizationPolicy {NS}/deny", service=ref("web"),
                   evidence={"destination": str(ref("api"))}, policy=f"AuthorizationPolicy {NS}/deny",
                   action="DENY", source="web", principal="p", destination="api", denied_rps=6.0, rule="r")
    symptom = replace(errors_of("web"), evidence={"error_rps": 6.0, "by_code": {"500": 6.0}})
    for hop, cause in ((Failures(6.0, {"401": 6.0}, {"-": 6.0}), "MSH0417 RequestAuthentication freight/jwt"),
                       (REFUSED_403, "MSH0414 AuthorizationPolicy freight/deny")):
        out = ranked("web", {"web": [symptom, jwt, rbac]}, {ref("web"): [ref("api")]},
                     hop_failures=lambda _x, _c, hop=hop: hop)  # type: ignore[misc]
        web = next(f for f in out if f.code == "MSH0401")
        assert web.caused_by == (cause,)
        assert f"{out[0].code} {out[0].subject}" == cause


def test_a_routing_symptom_is_explained_on_its_own_service_only() -> None:
    split = finding("MSH0205", "config.split_mismatch", f"Service {NS}/web", service=ref("web"), observed="v1 100%",
                    virtual_service=f"{NS}/web", configured="v1 90%/v2 10%", p_value=1e-9, requests=900,
                    magnitude=10)
    # web's calls to api are fine (no errors to follow), so only what routes web's own traffic counts.
    out = ranked("web", {"web": [split], "api": [empty_subset("api")]}, {ref("web"): [ref("api")]},
                 {("web", "api"): None})
    assert labels(out) == ["MSH0205 Service freight/web"]
    out = ranked("web", {"web": [split, empty_subset("web")]}, {ref("web"): [ref("api")]})
    assert out[0].code == "MSH0202" and out[1].caused_by == ("MSH0202 DestinationRule freight/web",)


def _counting_cert_checks(monkeypatch: Any) -> Counter[ServiceRef]:
    """Swap the registry's certificate check (the one that emits deadlines) for a copy that
    counts its calls per service."""
    from meshobs.checks import certs, registry

    calls: Counter[ServiceRef] = Counter()
    original = certs.expiry

    def counting(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Any:
        calls[service] += 1
        return original.run(snapshot, service, settings)

    counting.__doc__ = original.run.__doc__
    monkeypatch.setattr(registry, "ALL", tuple(replace(c, run=counting) if c is original else c
                                               for c in registry.ALL))
    return calls


@pytest.mark.parametrize("jobs", [1, 2])
def test_diagnose_all_checks_each_services_certificates_once(jobs: int, monkeypatch: Any) -> None:
    """The deadlines below every service (a certificate running out) come from the checklist
    each service's report runs anyway: --all calls the certificate check once per service, not
    once more to find the deadlines. Forked (``jobs=2``), the parent checks only its own part:
    the children's checklists are the deadlines' too."""
    from meshobs.engine import diagnose_all, fanout
    from meshobs.render.json import render

    names = [f"hub{i}" for i in range(6)]
    snap = call_chain(names).build()
    snap = _with_certs(snap, _cert(snap, "hub4-v1", "c0ffee", CertRole.WORKLOAD, timedelta(days=2)))
    expected = render(diagnose_all(snap, jobs=1))
    calls = _counting_cert_checks(monkeypatch)
    if jobs > 1:
        monkeypatch.setattr("meshobs.engine.FORK_MIN_SERVICES", 1)
    mesh = diagnose_all(snap, jobs=jobs)
    assert render(mesh) == expected  # the same reports
    assert ("MSH0302", "hub0") in {(f.code, r.service.name) for r in mesh.reports for f in r.findings}
    # Forked, this process checks the first part, the children the others (a child that could
    # not be forked, or failed, has its part checked here too: a thread left by another test
    # keeps the run in one process). Never a service twice.
    here = fanout.split([ref(n) for n in names], jobs)[0]
    assert set(calls.values()) == {1} and set(here) <= set(calls)
