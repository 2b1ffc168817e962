"""A question about one service has the analyzers that take a focus judge only what can touch the
services below it (:class:`meshobs.checks.scope.Focus`); the report must be, byte for byte, the
one a whole run of the analyzers gives. Checked for every service of meshes of our own (config
objects in one namespace shaping services in another, exportTo, mesh-wide policies in the root
namespace; a healthy but noisy one that must stay clean), of the scenario library and of the
built-in demos."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshobs import engine
from meshobs.catalogue import Category
from meshobs.checks.base import Analyzer, Settings, analyzer
from meshobs.checks.dataplane import members, members_of
from meshobs.checks.registry import ALL
from meshobs.checks.scope import Focus
from meshobs.collect import build_snapshot
from meshobs.demo.author import Mesh, resource
from meshobs.demo.build import render_bundle
from meshobs.demo.expect import Expectation
from meshobs.demo.scenario import builtin_scenario
from meshobs.demo.scenarios import LIBRARY, library_scenario
from meshobs.engine import diagnose, diagnose_all
from meshobs.engine.report import JUDGED
from meshobs.engine.runner import analyze
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.render.json import render

NOTHING = Expectation("healthy", healthy=True)
FOCUSABLE = [c for c in ALL if isinstance(c, Analyzer) and c.focusable]


def _estuary() -> Mesh:
    """Config that reaches across namespaces: a DestinationRule in the harbour office for the
    sensors' tide gauge (a subset without pods, TLS without a CA), a STRICT mesh-wide
    PeerAuthentication in the root namespace with a fleet DestinationRule disabling TLS towards
    the buoy feed, two VirtualServices (fleet's and sensors') claiming the buoy feed, a
    ServiceEntry exported to its own namespace only, a mesh-wide AuthorizationPolicy, a Sidecar
    narrowing the fleet's egress, a VirtualService with a field Istio rejects, and two
    Telemetries without selector in one namespace."""
    m = Mesh("estuary", "Estuary: config in one namespace shaping services in another", "several config faults")
    gw = m.ingress_gateway()
    dock = m.workload("fleet", "dock-planner", "v2", replicas=2)
    pilot = m.workload("fleet", "pilot-board", "v1")
    gauge = m.workload("sensors", "tide-gauge", "v3")
    buoy = m.workload("sensors", "buoy-feed", "v1", replicas=2)
    ledger = m.workload("harbour-ops", "berth-ledger", "v5")
    m.call(gw, dock, 18.0, 40.0, 150.0)
    m.call(dock, gauge, 18.0, 8.0, 30.0)
    m.call(dock, pilot, 6.0, 12.0, 50.0)
    m.call(pilot, buoy, 6.0, 5.0, 20.0)
    m.call(ledger, gauge, 2.0, 8.0, 30.0)
    m.apply(
        resource("DestinationRule", "harbour-ops", "tide-gauge", {
            "host": "tide-gauge.sensors.svc.cluster.local",
            "trafficPolicy": {"tls": {"mode": "SIMPLE"}},
            "subsets": [{"name": "v3", "labels": {"version": "v3"}}, {"name": "v9", "labels": {"version": "v9"}}]}),
        resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}),
        resource("DestinationRule", "fleet", "buoy-feed-plain", {
            "host": "buoy-feed.sensors.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
        resource("VirtualService", "fleet", "buoy-feed", {
            "hosts": ["buoy-feed.sensors.svc.cluster.local"],
            "http": [{"route": [{"destination": {"host": "buoy-feed.sensors.svc.cluster.local"}}]}]}),
        resource("VirtualService", "sensors", "buoy-feed", {
            "hosts": ["buoy-feed"], "http": [{"route": [{"destination": {"host": "buoy-feed"}}], "timeout": "3s"}]}),
        resource("VirtualService", "harbour-ops", "berth-ledger", {
            "hosts": ["berth-ledger"],
            "http": [{"route": [{"destination": {"host": "berth-ledger"}}], "timeout": "ten seconds"}]}),
        resource("ServiceEntry", "harbour-ops", "chart-service", {
            "hosts": ["charts.example.org"], "exportTo": ["."], "location": "MESH_EXTERNAL", "resolution": "DNS",
            "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}),
        resource("AuthorizationPolicy", "istio-system", "mesh-allow", {
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"namespaces": ["fleet", "harbour-ops", "istio-system"]}}]}]}),
        resource("Sidecar", "fleet", "default", {"egress": [{"hosts": ["./*", "sensors/*", "istio-system/*"]}]}),
        resource("Telemetry", "sensors", "metrics-a", {"metrics": [{"providers": [{"name": "prometheus"}]}]}),
        resource("Telemetry", "sensors", "metrics-b", {"tracing": [{"randomSamplingPercentage": 5.0}]}),
    )
    return m


def _breakwater() -> Mesh:
    """Healthy but noisy, its config spread over namespaces: a canary subset routed 5 % by a
    VirtualService in the callers' namespace, a DestinationRule in the root namespace setting
    ISTIO_MUTUAL mesh-wide, a STRICT PeerAuthentication, background 503s under the threshold."""
    m = Mesh("breakwater", "Healthy: a harbour's booking path with a canary", "no fault")
    gw = m.ingress_gateway()
    desk = m.workload("quayside", "booking-desk", "v4", replicas=2)
    slots_v1 = m.workload("berths", "slot-finder", "v1", replicas=2)
    slots_v2 = m.workload("berths", "slot-finder", "v2")
    m.call(gw, desk, 30.0, 50.0, 200.0, ("503", "-", 0.0005))
    m.call(desk, slots_v1, 28.5, 10.0, 45.0, ("503", "-", 0.001))
    m.call(desk, slots_v2, 1.5, 11.0, 50.0)
    m.apply(
        resource("DestinationRule", "istio-system", "mesh-mtls", {
            "host": "*.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
        resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}),
        resource("DestinationRule", "berths", "slot-finder", {
            "host": "slot-finder", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                               {"name": "v2", "labels": {"version": "v2"}}]}),
        resource("VirtualService", "quayside", "slot-finder", {
            "hosts": ["slot-finder.berths.svc.cluster.local"],
            "http": [{"route": [{"destination": {"host": "slot-finder.berths.svc.cluster.local", "subset": "v1"},
                                 "weight": 95},
                                {"destination": {"host": "slot-finder.berths.svc.cluster.local", "subset": "v2"},
                                 "weight": 5}]}]}),
    )
    return m


def _snapshot(m: Mesh) -> MeshSnapshot:
    return build_snapshot(render_bundle(m.build(NOTHING)), origin=f"test:{m.name}")


@pytest.fixture
def whole_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Every analysis the engine runs: True for a whole run, False for a focused one."""
    runs: list[bool] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        runs.append(kwargs.get("focus") is None)
        return analyze(*args, **kwargs)

    monkeypatch.setattr(engine, "analyze", counting)
    yield runs


def _same_as_a_whole_run(snapshot: MeshSnapshot, monkeypatch: pytest.MonkeyPatch) -> list[ServiceRef]:
    """Assert every service's report equals the one with the analyzers' whole run; the services."""
    services = sorted(s.ref for s in snapshot.services if not s.ref.is_unknown)
    focused = {s: render(diagnose(snapshot, s)) for s in services}
    with monkeypatch.context() as m:
        m.setattr(engine._Cache, "analysis_for", lambda self, _service: self.analysis)
        for s in services:
            assert render(diagnose(snapshot, s)) == focused[s], s
    return services


def test_config_across_namespaces_gives_every_service_the_whole_runs_report(
        monkeypatch: pytest.MonkeyPatch, whole_runs: list[bool]) -> None:
    snapshot = _snapshot(_estuary())
    mesh = diagnose_all(snapshot)
    # Analyzer findings filed under services other than their resource's namespace's, and
    # mesh-level ones: the comparison below has something to lose.
    crossing = {(f.code, str(f.service)) for r in mesh.reports for f in r.findings
                if f.subject.split(" ")[0] in ("DestinationRule", "VirtualService")
                and f.subject.split(" ")[1].split("/")[0] != r.service.namespace}
    assert {("MSH0202", "sensors/tide-gauge"), ("MSH0306", "sensors/buoy-feed")} <= crossing
    assert {"MSH0206"} <= {f.code for r in mesh.reports for f in r.findings}
    assert {"MSH0226", "MSH0245"} <= {f.code for f in mesh.mesh_findings}
    whole_runs.clear()
    services = _same_as_a_whole_run(snapshot, monkeypatch)
    assert len(services) >= 5


def test_a_question_without_a_named_resource_never_runs_the_whole_analysis(whole_runs: list[bool]) -> None:
    snapshot = _snapshot(_estuary())
    report = diagnose(snapshot, ServiceRef("sensors", "tide-gauge"))
    assert whole_runs == [False]  # one focused run, nothing more
    # ... with the analyzers' finding about the service from a resource in another namespace.
    assert ("MSH0202", "sensors/tide-gauge") in \
        {(f.code, str(f.service)) for f in report.findings}


def test_a_focus_keeps_only_the_findings_about_its_services() -> None:
    snapshot = _snapshot(_estuary())
    gauge = ServiceRef("sensors", "tide-gauge")
    focused = analyze(snapshot, Settings(), FOCUSABLE, focus=Focus(frozenset({gauge})))
    whole = analyze(snapshot, Settings(), FOCUSABLE)
    assert set(focused.by_service) == {gauge}
    assert focused.by_service[gauge] == whole.by_service[gauge]
    # Whether each analyzer judged (pass/warn/fail counted per service), or why not, is the whole run's.
    assert {c: r.status in JUDGED or r for c, r in focused.results.items()} == \
        {c: r.status in JUDGED or r for c, r in whole.results.items()}
    assert focused.complete_for(gauge) and not focused.complete_for(ServiceRef("sensors", "buoy-feed"))


def test_a_healthy_noisy_mesh_stays_clean_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = _snapshot(_breakwater())
    for service in _same_as_a_whole_run(snapshot, monkeypatch):
        assert not [f for f in diagnose(snapshot, service).findings if f.severity.value in ("warning", "error")], \
            service


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_library_scenario_gives_the_whole_runs_reports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_as_a_whole_run(build_snapshot(render_bundle(library_scenario(name)), origin="test"), monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ecommerce", "canary-errors", "cert-expiry", "mtls-mismatch", "weight-drift",
                                  "slow-db", "healthy", "ecommerce-appmesh", "migration"])
def test_every_builtin_demo_gives_the_whole_runs_reports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_as_a_whole_run(build_snapshot(render_bundle(builtin_scenario(name)), origin="test"), monkeypatch)


def test_an_analyzer_taking_a_focus_cannot_emit_a_mesh_wide_delivery_cause() -> None:
    declare: Callable[..., Any] = analyzer("test.delivery", Category.PROXY, ("Pod",), ("MSH0110",),
                                          needs=("control_plane",))
    with pytest.raises(ValueError, match="MSH0110"):
        declare(lambda snapshot, settings, focus=None: ())
    assert not declare(lambda snapshot, settings: ()).focusable


@pytest.mark.parametrize("build", [_estuary, _breakwater])
def test_members_of_a_few_workloads_are_those_members_lists(build: Callable[[], Mesh]) -> None:
    """port_protocol's focused run reads the members of the focus's workloads alone
    (``members_of``): each is the one :func:`members` lists last for that workload."""
    snapshot = _snapshot(build())
    listed = {m.workload: m for ns in {w.namespace for w in snapshot.workloads} | {p.namespace for p in snapshot.pods}
              for m in members(snapshot, ns) or [] if m.workload is not None}
    assert listed  # something to compare
    assert members_of(snapshot, [w.ref for w in snapshot.workloads]) == listed
    some = sorted(listed)[:2]
    assert members_of(snapshot, some) == {ref: listed[ref] for ref in some}


def _crashing_on(monkeypatch: pytest.MonkeyPatch, victim: ServiceRef) -> str:
    """Swap the registry's ``config.empty_subset`` for a copy that raises when it judges ``victim``
    (a bug in meshobs met on one subject); the analyzer's id."""
    from dataclasses import replace as with_run

    from meshobs.checks import config, registry
    from meshobs.checks.scope import services_in_focus

    original = config.empty_subset

    @functools.wraps(original.run)
    def crashing(snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterator[Any]:
        for svc in services_in_focus(focus, config.istio_services(snapshot)):
            if svc.ref == victim:
                raise RuntimeError(f"broken on {victim}")
        yield from original.run(snapshot, settings, focus=focus)

    monkeypatch.setattr(registry, "ALL", tuple(with_run(c, run=crashing) if c is original else c
                                               for c in registry.ALL))
    return original.id


def _line(report: Any, check_id: str) -> str:
    return str(next(r.status for r in report.checks if r.id == check_id))


# The victim: upstream of others (its crash is outside every focus below it), and a leaf below
# others (inside the focus of every service calling it).
@pytest.mark.parametrize("victim", [ServiceRef("fleet", "dock-planner"), ServiceRef("sensors", "tide-gauge")])
def test_an_analyzer_that_crashes_gives_the_same_report_scoped_and_whole(
        victim: ServiceRef, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = _snapshot(_estuary())
    crashed = _crashing_on(monkeypatch, victim)
    mesh = diagnose_all(snapshot, jobs=1)
    assert "MSH0001" in {f.code for f in mesh.mesh_findings}  # the crash is reported once, mesh-wide
    assert next(r.status for r in mesh.analyzers if r.id == crashed) == "error"
    by_service = {r.service: r for r in mesh.reports}
    assert _line(by_service[victim], crashed) == "error"
    # Scoped, every service's report is the whole run's: the same error line where it crashed...
    services = _same_as_a_whole_run(snapshot, monkeypatch)
    assert victim in services
    for s in services:
        scoped = diagnose(snapshot, s)
        assert _line(scoped, crashed) == _line(by_service[s], crashed), s
    # ... and the analyzer's verdict elsewhere: a service it judged without crashing keeps it
    # (the subset without pods of the tide gauge is still found when the crash is elsewhere).
    gauge = ServiceRef("sensors", "tide-gauge")
    found = {(f.code, str(f.service)) for f in diagnose(snapshot, gauge).findings}
    assert (("MSH0202", "sensors/tide-gauge") in found) == (victim != gauge)


def test_the_services_an_analyzer_judges_are_picked_by_the_focus_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Istio analyzers judging services one by one work out the mesh of the focus's services
    only, not of every service before dropping those outside it (thousands, at 5,000 services)."""
    from meshobs.checks import config as config_checks
    from meshobs.demo.catalog import load_demo

    snapshot = build_snapshot(load_demo("ecommerce"), origin="demo")
    one = snapshot.services[0]
    asked: list[ServiceRef] = []
    real = config_checks.mesh_of
    monkeypatch.setattr(config_checks, "mesh_of", lambda s, ref: asked.append(ref) or real(s, ref))
    focused = config_checks.istio_services(snapshot, Focus(frozenset({one.ref})))
    assert focused == [s for s in config_checks.istio_services(snapshot) if s.ref == one.ref] == [one]
    asked.clear()
    config_checks.istio_services(snapshot, Focus(frozenset({one.ref})))
    assert asked == [one.ref] and len(snapshot.services) > 1
