"""Analyzers in the engine: their findings join the report of each service they touch, the
mesh-level ones the --all report; a problem seen by a check and an analyzer is reported once;
a raising analyzer is an MSH0001 and the rest goes on; ranking treats them as causes."""

from __future__ import annotations

from collections.abc import Iterable

from meshobs.catalogue import Category
from meshobs.checks.base import Finding, Settings, check, finding
from meshobs.engine import checklist, diagnose, diagnose_all
from meshobs.model import MeshSnapshot, ServiceRef
from tests.support.manifests import manifests_snapshot
from tests.test_analyzers import docs, gateway, service, vs
from tests.test_manifest_lines import MULTI

LEDGER = ServiceRef("payments", "ledger")


def mesh() -> MeshSnapshot:
    """payments/ledger routes to an undefined subset; two Gateways conflict (touching no
    service); payments/checkout is fine."""
    return manifests_snapshot({
        "payments.yaml": MULTI,
        "checkout.yaml": docs(service("checkout", "payments"),
                              vs("checkout", "payments", "  - route:\n    - destination: {host: checkout}\n",
                                 hosts="[checkout]")),
        "gateways.yaml": docs(gateway("shop", "web", "{istio: ingressgateway}", 80, "[shop.example.org]"),
                              gateway("promo", "web", "{istio: ingressgateway}", 80, "[shop.example.org]"))})


def test_a_service_report_holds_the_analyzer_findings_that_touch_it() -> None:
    ledger = diagnose(mesh(), LEDGER)
    assert [(f.code, f.subject) for f in ledger.findings] == [("MSH0201", "VirtualService payments/ledger")]
    assert ledger.findings[0].service == LEDGER and ledger.findings[0].file == "payments.yaml"
    assert {c.id: c.status for c in ledger.checks}["config.unknown_subset"] == "fail"
    checkout = diagnose(mesh(), ServiceRef("payments", "checkout"))
    # Manifests only: nothing wrong in its configuration, its traffic not checked.
    assert checkout.findings == () and checkout.status == "clean"
    assert {c.id: c.status for c in checkout.checks}["config.unknown_subset"] == "pass"


def test_mesh_level_findings_are_in_the_all_report_only() -> None:
    report = diagnose_all(mesh())
    assert {(f.code, f.subject) for f in report.mesh_findings} == {
        ("MSH0222", "Gateway web/shop"), ("MSH0222", "Gateway web/promo")}
    assert not any(f.code == "MSH0222" for r in report.reports for f in r.findings)
    verdicts = {a.id: a.status for a in report.analyzers}
    assert verdicts["config.conflicting_gateways"] == "fail" and verdicts["config.unknown_subset"] == "fail"
    assert verdicts["config.host_not_found"] == "pass"
    assert report.status == "failing"


@check("test.same_subset", Category.CONFIG, ("config",), ("MSH0201",))
def same_subset(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """Sees the analyzer's problem from the service's side, with the same identity."""
    if service == LEDGER:
        yield finding("MSH0201", "test.same_subset", "VirtualService payments/ledger", service=service,
                      virtual_service="payments/ledger", subset="canary", host="ledger.payments.svc.cluster.local")


def test_a_problem_seen_by_a_check_and_an_analyzer_is_reported_once() -> None:
    report = diagnose(mesh(), LEDGER, checks=[*checklist(), same_subset])
    assert [f.code for f in report.findings] == ["MSH0201"]
    assert report.findings[0].file == "payments.yaml"  # the copy that names its line is kept


def test_a_raising_analyzer_is_an_internal_error_and_the_rest_goes_on() -> None:
    from meshobs.checks.base import analyzer

    @analyzer("test.broken", Category.CONFIG, ("VirtualService",), ())
    def broken(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
        """Always raises."""
        raise RuntimeError("bad spec")

    report = diagnose_all(mesh(), checks=[*checklist(), broken])
    assert {a.id: a.status for a in report.analyzers}["test.broken"] == "error"
    assert ("MSH0001", "Check test.broken") in {(f.code, f.subject) for f in report.mesh_findings}
    assert any(f.code == "MSH0201" for r in report.reports for f in r.findings)


def test_an_analyzer_finding_explains_the_errors_of_the_service_it_touches() -> None:
    """Ranking treats a configuration fault as a cause: the undefined subset explains the 503s."""
    from dataclasses import replace

    from meshobs.model import Edge, Mesh, ResponseStat, SourceState, SourceStatus, WorkloadRef

    snap = mesh()
    edge = Edge(source=WorkloadRef("payments", "checkout-v1"), destination=LEDGER,
                destination_workload=WorkloadRef("payments", "ledger-v1"),
                source_service=ServiceRef("payments", "checkout"), mesh=Mesh.ISTIO, request_rate=10.0,
                responses=(ResponseStat("200", "-", 9.0), ResponseStat("503", "NR", 1.0)))
    prometheus = SourceStatus("prometheus", SourceState.OK, kind="prometheus")
    snap = replace(snap, edges=(edge,), sources=(*snap.sources, prometheus))
    report = diagnose(snap, LEDGER)
    first, symptom = report.findings[0], next(f for f in report.findings if f.code == "MSH0401")
    assert (first.code, first.rank) == ("MSH0201", 1)
    assert "MSH0201 VirtualService payments/ledger" in symptom.caused_by
