"""The engine: checklist order, skip reasons, internal errors, root-cause ranking, suppressions."""

from __future__ import annotations

from datetime import timedelta

from meshobs.catalogue import Category
from meshobs.checks import base
from meshobs.checks.base import Finding, Settings
from meshobs.engine import checklist, diagnose, diagnose_all
from meshobs.model import ServiceRef, SourceState, UpstreamHost
from meshobs.suppress import Suppression, parse
from tests.support.builders import T0, MeshBuilder

FRONT, CART, DB, CACHE = "frontend", "cart-service", "database-service", "cache-service"
EJECTED = (UpstreamHost("10.0.0.1:5432", healthy=False, failed_outlier_check=True),)


def ref(name: str) -> ServiceRef:
    return ServiceRef("default", name)


def cart_503_because_db_ejected() -> MeshBuilder:
    m = MeshBuilder().service(FRONT).service(CART).service(DB)
    m.call(FRONT, CART, rps=20, responses=[("200", "-", 0.7), ("503", "-", 0.3)])
    m.call(CART, DB, rps=6, responses=[("503", "UH", 1.0)], reached=False)
    return m.cluster(CART, DB, hosts=EJECTED, membership_healthy=0, membership_total=1,
                     outlier_ejections_active=1)


def test_checklist_runs_in_category_order() -> None:
    orders = [c.category.order for c in checklist()]
    assert orders == sorted(orders)
    report = diagnose(MeshBuilder().service(CART).build(), ref(CART))
    assert [r.id for r in report.checks] == [c.id for c in checklist()]


def test_healthy_mesh_is_healthy() -> None:
    m = MeshBuilder().service(FRONT).service(CART).call(FRONT, CART).cluster(FRONT, CART)
    report = diagnose(m.build(), ref(CART))
    assert report.status == "healthy" and report.findings == ()
    # The service checks; istiod's analyzers have no control-plane data in this mesh.
    assert {r.status for r in report.checks
            if r.category in (Category.PROXY, Category.TRAFFIC) and r.kind == "check"} == {"pass"}


def test_cause_one_hop_downstream_ranks_first_and_is_cited() -> None:
    report = diagnose(cart_503_because_db_ejected().build(), ref(CART))
    ranked = [(f.rank, f.code, f.subject) for f in report.findings]
    first = report.findings[0]
    assert first.code in ("MSH0406", "MSH0407") and first.subject == "Service default/database-service"
    assert [r for r, _c, _s in ranked] == list(range(1, len(ranked) + 1))
    symptoms = {f.code: f for f in report.findings if f.service == ref(CART)}
    assert set(symptoms) == {"MSH0401", "MSH0408"}
    for s in symptoms.values():
        assert "MSH0406 Service default/database-service" in s.caused_by
        assert s.rank > first.rank
    assert "MSH0401 Service default/cart-service" in first.cause_of
    assert report.status == "failing"


def test_cause_two_hops_downstream() -> None:
    """frontend -> cart -> database: the frontend's errors trace back to the database."""
    report = diagnose(cart_503_because_db_ejected().build(), ref(FRONT))
    first = report.findings[0]
    assert first.service == ref(DB) and first.code in ("MSH0406", "MSH0407")
    by_subject = {(f.code, f.subject): f for f in report.findings}
    edge = by_subject[("MSH0402", "Edge default/frontend -> default/cart-service")]
    assert "MSH0406 Service default/database-service" in edge.caused_by
    # The intermediate hop's symptom is part of the chain and cites the same cause.
    middle = by_subject[("MSH0408", "Edge default/cart-service -> default/database-service")]
    assert middle.service == ref(CART) and middle.rank > first.rank
    assert edge.rank > middle.rank or edge.severity.weight >= middle.severity.weight


def test_unrelated_downstream_problem_is_not_blamed() -> None:
    """cart fails on its own (500, no flag) while its calls to a sick cache succeed: the cache's
    unready proxy explains nothing, so cart's own symptom ranks first and cites nothing."""
    m = MeshBuilder().service(FRONT).service(CART).service(CACHE)
    m.call(FRONT, CART, responses=[("200", "-", 0.8), ("500", "-", 0.2)])
    m.call(CART, CACHE).proxy("cache-v1-0", ready=False, state="INITIALIZING")
    report = diagnose(m.build(), ref(CART))
    assert [(f.code, f.subject, f.caused_by) for f in report.findings] == [
        ("MSH0401", "Service default/cart-service", ())]


def test_healthy_target_does_not_import_downstream_findings() -> None:
    m = MeshBuilder().service(FRONT).service(CART).service(DB).call(FRONT, CART).call(CART, DB)
    m.cluster(CART, DB, hosts=EJECTED, outlier_ejections_active=1)
    report = diagnose(m.build(), ref(FRONT))
    assert report.findings == () and report.status == "healthy"


def test_latency_chain_goes_to_the_slow_callee_not_an_error_cause() -> None:
    m = MeshBuilder().service(FRONT).service(CART).service(DB)
    m.call(FRONT, CART, p99=3000.0).call(CART, DB, p99=2900.0)
    report = diagnose(m.build(), ref(CART))
    assert (report.findings[0].code, report.findings[0].service) == ("MSH0403", ref(DB))
    cart = next(f for f in report.findings if f.service == ref(CART))
    assert cart.caused_by == ("MSH0403 Service default/database-service",)


def test_missing_inputs_skip_with_the_source_error() -> None:
    m = MeshBuilder().service(CART).without("envoy")
    m.source("envoy:default/cart-v1-0", SourceState.ERROR,
             "cannot reach http://10.0.0.5:15000 (connection refused)", kind="envoy")
    report = diagnose(m.build(), ref(CART))
    skipped = {r.id: r.reason for r in report.checks if r.status == "skipped"}
    assert "proxy.config_stale" in skipped and "proxy.warming" in skipped
    # The reason names the failed source; its error ("connection refused") is in sources.
    # Proxies or istiod's syncz: with Prometheus answering (the control-plane input) the check
    # runs, finds neither, and says so naming the failed source.
    assert "envoy:default/cart-v1-0 failed" in skipped["proxy.config_stale"]
    assert "connection refused" in report.sources[-1].error
    assert "proxy.not_ready" not in skipped  # pods from Kubernetes suffice
    assert {(f.code, f.subject) for f in report.findings} == {
        ("MSH0002", "Source envoy:default/cart-v1-0")}


def test_unconfigured_source_is_named_in_the_reason() -> None:
    report = diagnose(MeshBuilder().service(CART).without("prometheus").build(), ref(CART))
    reason = next(r.reason for r in report.checks if r.id == "traffic.error_rate")
    assert reason.startswith("no request metrics") and "prometheus" in reason


def test_no_source_answered_is_unknown() -> None:
    m = MeshBuilder().service(CART)
    for name in list(m.sources):
        m.source(name, SourceState.ERROR, "down")
    assert diagnose(m.build(), ref(CART)).status == "unknown"


@base.check("test.explodes", Category.PROXY, (), ())
def explodes(snapshot: object, service: object, settings: object) -> list[Finding]:
    """Always raises."""
    raise RuntimeError("boom")


def test_a_raising_check_becomes_msh0001_and_the_run_goes_on() -> None:
    m = MeshBuilder().service(CART).proxy("cart-v1-0", ready=False)
    report = diagnose(m.build(), ref(CART), checks=[*checklist(), explodes])
    result = next(r for r in report.checks if r.id == "test.explodes")
    assert result.status == "error" and "RuntimeError: boom" in result.reason
    codes = {(f.code, f.subject) for f in report.findings}
    assert ("MSH0001", "Check test.explodes") in codes
    assert ("MSH0102", "Proxy cart-v1-0.default") in codes  # later checks still ran


def test_suppression_active_and_expired() -> None:
    # cart serves traffic, so once the finding is suppressed there is a verdict: healthy.
    snap = (MeshBuilder().service(FRONT).service(CART).call(FRONT, CART).cluster(FRONT, CART)
            .proxy("cart-v1-0", ready=False).build())
    active = Suppression("MSH0102", "Proxy cart-v1-0.*", "known, fix tomorrow", T0 + timedelta(days=1))
    report = diagnose(snap, ref(CART), suppressions=[active])
    assert report.findings == () and report.status == "healthy"
    assert [(f.code, s.reason) for f, s in report.suppressed] == [("MSH0102", "known, fix tomorrow")]
    assert next(r for r in report.checks if r.id == "proxy.not_ready").status == "pass"
    expired = Suppression("MSH0102", "Proxy cart-v1-0.default", "old", T0 - timedelta(seconds=1))
    report = diagnose(snap, ref(CART), suppressions=[expired])
    assert [f.code for f in report.findings] == ["MSH0102"] and report.suppressed == ()


def test_suppressions_from_config_entries() -> None:
    (s,) = parse([{"code": "MSH0401", "subject": "Service default/cart-service",
                   "reason": "load test", "until": "2026-11-21T00:00:00Z"}])
    assert s.until is not None and s.until > T0 and not s.expired(T0)
    (s,) = parse([{"code": "MSH04*"}])
    assert s.subject == "*" and s.until is None


def test_settings_from_thresholds() -> None:
    s = Settings.from_thresholds({"error_ratio": 0.05, "xds_stale_after": "15m", "p99_ms": 250})
    assert (s.error_ratio, s.xds_stale_after_s, s.p99_ms) == (0.05, 900.0, 250.0)


def test_diagnose_all_groups_findings_per_service() -> None:
    mesh = diagnose_all(cart_503_because_db_ejected().build())
    by_service = {r.service.name: {f.code for f in r.findings} for r in mesh.reports}
    assert set(by_service) == {FRONT, CART, DB}
    assert {"MSH0406", "MSH0407"} <= by_service[DB]
    assert mesh.status == "failing"
