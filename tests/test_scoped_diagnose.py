"""``diagnose SERVICE`` collects the graph mesh-wide, then only its neighbourhood: against a
generated mesh served live (a real Prometheus, loopback Envoy admin, Jaeger and Kubernetes
APIs), it asks only the neighbourhood's proxies and finds what a mesh-wide collection finds."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from meshobs.bundle import read_bundle, write_bundle
from meshobs.cli.common import UsageError
from meshobs.cli.diagnose import scoped_question
from meshobs.collect import build_snapshot, collect, scope_from_dict
from meshobs.collectors.prometheus import fetch as prom_fetch
from meshobs.collectors.promql import scope_matchers
from meshobs.config import Config, load_config
from meshobs.demo.author import Mesh, resource
from meshobs.demo.expect import Expectation
from meshobs.demo.scenario import Scenario
from meshobs.demo.serve import LiveDemo, serve_scenario
from meshobs.demo.state import PodState, Restart
from meshobs.demo.traffic import LatencyProfile, Reported
from meshobs.engine import Report, diagnose
from meshobs.model import MeshSnapshot, ServiceRef, WorkloadRef

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(require_prometheus: None) -> Iterator[tuple[LiveDemo, Config]]:
    with tempfile.TemporaryDirectory(prefix="scoped-") as tmp:
        demo = serve_scenario("generated-60", Path(tmp) / "demo")
        with demo:
            config = load_config(str(demo.config_path))
            assert config is not None
            yield demo, config


@pytest.fixture(scope="module")
def mesh_wide(live: tuple[LiveDemo, Config]) -> MeshSnapshot:
    return build_snapshot(collect(live[1]), origin="live")


def _pods_asked(demo: LiveDemo, since: int) -> set[str]:
    """namespace/pod of every admin request after the first ``since`` requests."""
    return {"/".join(r.path_only.split("/")[1:3]) for r in demo.requests_to("envoy")[since:]}


def _verdict(report: Report) -> tuple[set[tuple[str, str, str]], dict[str, str]]:
    return ({(f.code, f.subject, f.severity.value) for f in report.findings},
            {c.id: c.status for c in report.checks})


def _target(snapshot: MeshSnapshot) -> ServiceRef:
    """A middle-tier service with callers, callees and findings (some from downstream), so the
    neighbourhood has all three parts and the comparison has something to compare."""
    for s in sorted(snapshot.services, key=lambda s: s.ref):
        if (s.name.startswith("svc-") and snapshot.edges_into(s.ref) and snapshot.edges_from(s.ref)
                and any(f.service != s.ref for f in diagnose(snapshot, s.ref).findings)):
            return s.ref
    raise AssertionError("no middle-tier service with callers, callees and downstream findings")


def test_asks_only_the_neighbourhood_and_finds_the_same(live: tuple[LiveDemo, Config],
                                                        mesh_wide: MeshSnapshot, tmp_path: Path) -> None:
    demo, config = live
    target = _target(mesh_wide)
    before = len(demo.requests_to("envoy"))
    bundle = collect(config, question=scoped_question(str(target), None))
    asked = _pods_asked(demo, before)
    scope = scope_from_dict(bundle.scope)
    assert scope is not None and scope.target == target
    # Only the pods of the neighbourhood's workloads (the service, its callers, its callees).
    neighbourhood_pods = {f"{p.namespace}/{p.name}" for w in scope.workloads for p in mesh_wide.pods_of(w)}
    assert asked and asked <= neighbourhood_pods
    assert len(asked) < len(mesh_wide.proxies)  # (a small generated mesh: depth 3 reaches far)
    scoped = build_snapshot(bundle, origin="live")
    assert _verdict(diagnose(scoped, target)) == _verdict(diagnose(mesh_wide, target))
    # The bundle keeps the neighbourhood, and its replay gives the same answer.
    replayed = read_bundle(write_bundle(bundle, tmp_path / "scoped.tar.gz"))
    assert replayed.scope == bundle.scope
    assert _verdict(diagnose(build_snapshot(replayed), target)) == _verdict(diagnose(mesh_wide, target))


def test_a_source_of_one_phase_is_not_built_in_the_other(live: tuple[LiveDemo, Config], mesh_wide: MeshSnapshot,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Envoy fetches nothing in the graph phase: its collector (every target listed) is built
    once, for the scoped phase, and the answer is the same."""
    import meshobs.collectors.envoy as envoy

    _demo, config = live
    built: list[int] = []
    real = envoy.from_config
    monkeypatch.setattr(envoy, "from_config", lambda *a: built.append(1) or real(*a))
    target = _target(mesh_wide)
    bundle = collect(config, question=scoped_question(str(target), None))
    assert built == [1]
    assert _verdict(diagnose(build_snapshot(bundle, origin="live"), target)) == _verdict(diagnose(mesh_wide, target))


def test_same_findings_for_a_frontend_and_a_data_store(live: tuple[LiveDemo, Config],
                                                       mesh_wide: MeshSnapshot) -> None:
    demo, config = live
    services = sorted(s.ref for s in mesh_wide.services)
    frontend = next(s for s in services if s.name.startswith("web-") and diagnose(mesh_wide, s).findings)
    for target in (frontend, next(s for s in services if s.name.startswith("db-"))):
        before = len(demo.requests_to("envoy"))
        scoped = build_snapshot(collect(config, question=scoped_question(str(target), None)))
        assert _verdict(diagnose(scoped, target)) == _verdict(diagnose(mesh_wide, target)), target
        if target.name.startswith("db-"):
            # A data store's neighbourhood is itself and its few callers: a handful of proxies.
            callers = {e.source for e in mesh_wide.edges_into(target)}
            expected = {f"{p.namespace}/{p.pod}" for p in mesh_wide.proxies
                        if p.workload in callers | {w.ref for w in mesh_wide.workloads_of(target)}}
            assert _pods_asked(demo, before) == expected
            assert len(expected) < len(mesh_wide.proxies) / 4


def test_compact_matchers_find_the_same(live: tuple[LiveDemo, Config], mesh_wide: MeshSnapshot,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The prefix-tree matchers a neighbourhood too big for plain alternations is narrowed with
    (forced here: the plain ones are skipped) give a front end the findings of a mesh-wide run."""
    config = live[1]
    narrowed = prom_fetch._narrowed
    monkeypatch.setattr(prom_fetch, "_narrowed", lambda text, *scopes, **kw: narrowed(text, *scopes[-1:], **kw))
    frontend = next(s for s in sorted(s.ref for s in mesh_wide.services)
                    if s.name.startswith("web-") and diagnose(mesh_wide, s).findings)
    bundle = collect(config, question=scoped_question(str(frontend), None))
    scope = scope_from_dict(bundle.scope)
    assert scope is not None
    plain, compact = (scope_matchers(scope.services, scope.workloads, c)[1] for c in (False, True))
    scoped = [p.params["query"] for r in bundle.sources if r.kind == "prometheus" for p in r.payloads
              if p.meta.get("scope") and p.key.split(":")[0] in ("query", "range")]
    assert scoped and plain != compact
    assert all(compact in q and plain not in q for q in scoped if "source_workload=~" in q)
    assert _verdict(diagnose(build_snapshot(bundle), frontend)) == _verdict(diagnose(mesh_wide, frontend))


def test_an_unknown_service_stops_before_the_heavy_collection(live: tuple[LiveDemo, Config]) -> None:
    demo, config = live
    before = {k: len(demo.requests_to(k)) for k in ("envoy", "jaeger", "kubernetes")}
    with pytest.raises(UsageError, match="unknown service"):
        collect(config, question=scoped_question("no-such-service", None))
    assert len(demo.requests_to("envoy")) == before["envoy"]  # no proxy was asked
    kube = [r.path_only for r in demo.requests_to("kubernetes")[before["kubernetes"]:]]
    assert kube and not any("/apis/networking.istio.io" in p for p in kube)  # no mesh config listed


def test_without_a_bundle_to_write_the_bodies_are_dropped_as_they_arrive(live: tuple[LiveDemo, Config],
                                                                        mesh_wide: MeshSnapshot) -> None:
    bundle = collect(live[1], keep_raw=False)
    envoy = [r for r in bundle.sources if r.kind == "envoy"]
    # Each proxy was normalised in its worker; only what was asked and how it went is kept.
    assert envoy and all(r.part is not None and all(p.body is None for p in r.payloads) for r in envoy)
    snap = build_snapshot(bundle, keep_raw=False)
    assert snap.proxies == mesh_wide.proxies and snap.edges == mesh_wide.edges
    assert all(p.body is None for r in bundle.sources for p in r.payloads)


def test_a_question_without_a_bundle_normalises_its_scoped_sources_as_they_arrive(
        live: tuple[LiveDemo, Config], mesh_wide: MeshSnapshot) -> None:
    from meshobs.raw import RawSource

    _demo, config = live
    target = _target(mesh_wide)
    early = collect(config, question=scoped_question(str(target), None), keep_raw=False)
    # Kubernetes and Prometheus were merged with their graph phase and normalised on their fetch
    # threads (while the proxies were still being asked), not left to the main thread.
    assert {r.kind for r in early.sources if r.part is not None} >= {"kubernetes", "prometheus", "envoy"}
    # The same answers normalised afterwards (the way a bundle to write is) make the same snapshot.
    afterwards = replace(early, sources=[r if r.kind == "envoy" else RawSource(r.name, r.kind, list(r.payloads),
                                                                                dict(r.meta), r.error, r.duration_s)
                                         for r in early.sources])
    assert build_snapshot(early) == build_snapshot(afterwards)
    later = collect(config, question=scoped_question(str(target), None))  # a bundle to write: as before
    assert not any(r.part is not None for r in later.sources if r.kind in ("kubernetes", "prometheus"))


def test_a_part_made_early_goes_only_to_the_source_made_of_the_same_answers() -> None:
    import json
    from datetime import UTC, datetime

    from meshobs.collect import EarlyParts, merge_phases, normalize_source
    from meshobs.raw import Payload, RawSource

    when = datetime(2026, 11, 30, tzinfo=UTC)
    namespaces = {"kind": "NamespaceList", "apiVersion": "v1", "items": [{"metadata": {"name": "shop"}}]}
    pods = {"kind": "PodList", "apiVersion": "v1", "items": [
        {"metadata": {"name": "cart-1", "namespace": "shop", "labels": {"app": "cart"}},
         "spec": {"containers": [{"name": "cart"}]}, "status": {"phase": "Running"}}]}

    def source(key: str, doc: dict[str, object]) -> RawSource:
        raw = RawSource("kubernetes", "kubernetes")
        raw.add(Payload(key=key, body=json.dumps(doc), status=200))
        return raw

    graph, scoped = [source("namespaces", namespaces)], [source("pods@shop", pods)]
    early = EarlyParts(graph, when, 300.0)
    early.read(scoped[0])
    merged = merge_phases(graph, scoped)
    early.hand_over(merged, scoped)
    assert merged[0].part is not None
    assert merged[0].part == normalize_source(merge_phases(graph, scoped)[0], when, 300.0)
    # Answers other than those it was made of (a source cut off by the deadline and replaced,
    # or the scoped phase returning the same source twice) are normalised afterwards.
    other = [source("pods@shop", pods)]
    merged = merge_phases(graph, other)
    early.hand_over(merged, other)
    assert merged[0].part is None
    merged = merge_phases(graph, scoped + scoped)
    early.hand_over(merged, scoped + scoped)
    assert merged[0].part is None


def test_a_source_failing_the_same_way_in_both_phases_is_reported_once() -> None:
    from meshobs.collect import merge_phases
    from meshobs.raw import RawSource

    why = "no kubeconfig at /nowhere and not running in a pod"
    graph = [RawSource("kubernetes", "kubernetes", error=why)]
    assert [r.name for r in merge_phases(graph, [RawSource("kubernetes", "kubernetes", error=why)])] == ["kubernetes"]
    # A different failure in the scoped phase is a second fact and stays visible.
    other = RawSource("kubernetes", "kubernetes", error="timed out after 5 s")
    assert [r.name for r in merge_phases(graph, [other])] == ["kubernetes", "kubernetes:scoped"]


# -- meshes of our own: every service's scoped diagnosis against the mesh-wide one ---------------
# The scoped phase reads the request rates (codes, flags, security) of the neighbourhood only
# (the graph phase asks for who calls whom): these meshes put noise and faults OUTSIDE each
# service's neighbourhood (a shadow's errors, a broken pair beside it, a caller's other callees)
# so that a check reading an edge beyond the neighbourhood would change some service's verdict.


def _observatory() -> Scenario:
    """Healthy but noisy: a canary within its SLO, a mirrored shadow failing 5 % (seen by its own
    proxy only), a data store over TCP, a batch job beside the request path, retries that hide
    a callee's rare 503s."""
    m = Mesh("observatory", "Healthy: an observatory's portal, its archive and a night batch", "no fault")
    gw = m.ingress_gateway()
    portal = m.workload("skywatch", "sky-portal", "v4", replicas=2)
    catalog_v1 = m.workload("skywatch", "plate-catalog", "v1", replicas=2)
    catalog_v2 = m.workload("skywatch", "plate-catalog", "v2")
    planner = m.workload("skywatch", "exposure-planner", "v2")
    weather = m.workload("domes", "weather-feed", "v1")
    sensors = m.workload("domes", "dome-sensors", "v3")
    batch = m.workload("archive", "calibration-runner", "v7")
    darkframes = m.workload("archive", "darkframe-store", "v1", replicas=2)
    shadow = m.workload("archive", "darkframe-store", "v2")
    m.call(gw, portal, 35.0, 60.0, 240.0, ("503", "-", 0.0008))
    m.call(portal, catalog_v1, 33.0, 12.0, 60.0, ("503", "-", 0.002))
    m.call(portal, catalog_v2, 2.0, 14.0, 70.0, ("500", "-", 0.004))
    m.call(portal, planner, 9.0, 30.0, 110.0, protocol="grpc")
    m.call(planner, weather, 9.0, 8.0, 30.0)
    m.call(weather, sensors, 4.0, 2.0, 9.0, protocol="tcp", tcp_bps=(2400.0, 51000.0))
    m.call(batch, darkframes, 6.0, 40.0, 180.0)
    m.mirror(batch, shadow, 6.0, 44.0, 200.0, ("500", "-", 0.05))
    m.call(batch, catalog_v1, 1.0, 12.0, 60.0)
    m.apply(resource("VirtualService", "archive", "darkframe-store", {
        "hosts": ["darkframe-store"],
        "http": [{"route": [{"destination": {"host": "darkframe-store", "subset": "v1"}}],
                  "mirror": {"host": "darkframe-store", "subset": "v2"}, "mirrorPercentage": {"value": 100.0}}]}))
    m.apply(resource("DestinationRule", "archive", "darkframe-store", {
        "host": "darkframe-store", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                               {"name": "v2", "labels": {"version": "v2"}}]}))
    return m.build(Expectation("healthy", healthy=True))


def _harbour() -> Scenario:
    """Two faults in different corners: a slow sonar database three hops below the berth
    booking (504 UT above it), and a hoist controller beside it failing on its own (503), whose
    caller the booking shares with the gateway only."""
    m = Mesh("harbour", "Harbour: sonar-db slow under berth-booking; hoist-control failing elsewhere",
             "sonar-db answers in 2.4 s; tide-tables times out at 1 s (504 UT); hoist-control returns 503")
    gw = m.ingress_gateway()
    booking = m.workload("quay", "berth-booking", "v3", replicas=2)
    tides = m.workload("quay", "tide-tables", "v5")
    sonar = m.workload("seabed", "sonar-db", "v2")
    pilots = m.workload("quay", "pilot-roster", "v1")
    cranes = m.workload("yard", "crane-scheduler", "v9", replicas=2)
    hoist = m.workload("yard", "hoist-control", "v4")
    m.call(gw, booking, 20.0, 900.0, 1400.0, ("504", "-", 0.4))
    m.call(booking, pilots, 20.0, 5.0, 20.0)
    m.call(booking, tides, 20.0, 850.0, 1100.0, ("504", "-", 0.4))
    m.call(tides, sonar, 20.0, 800.0, 1000.0, ("504", "UT", 0.4),
           dest=Reported(20.0, (("200", "-", 0.6), ("0", "DC", 0.4)), LatencyProfile(2400.0, 5200.0)))
    m.call(gw, cranes, 12.0, 40.0, 160.0, ("503", "-", 0.2))
    m.call(cranes, hoist, 12.0, 20.0, 90.0, ("503", "-", 0.2))
    m.apply(resource("VirtualService", "seabed", "sonar-db", {
        "hosts": ["sonar-db.seabed.svc.cluster.local"],
        "http": [{"route": [{"destination": {"host": "sonar-db.seabed.svc.cluster.local"}}], "timeout": "1s"}]}))
    return m.build(Expectation("callee-failing", target="quay/berth-booking", subjects=("Service seabed/sonar-db",)))


def _lighthouse(protocol: str = "http") -> Scenario:
    """A fault two hops down, seen from callers on both sides of the neighbourhood: the lamp
    keeper calls the lens grinder (no call fails), which calls the oil depot, whose callers'
    circuit breakers overflow (503 UO): the grinder's and the fog horn's, a caller from outside
    the keeper's neighbourhood. The tide clock, another caller from outside, calls the grinder
    only. Each hop holds most of its caller's time, so the walk follows the latency down.
    ``protocol="grpc"``: every call is gRPC, and Envoy's overflow reaches the callers as gRPC
    status 14 inside an HTTP 200 (UO), as Envoy answers a gRPC request it refuses."""
    m = Mesh(f"lighthouse-{protocol}", "Lighthouse: the oil depot's callers overflow their breakers",
             "the grinder's and the fog horn's circuit breakers for oil-depot overflow (503 UO)")
    grpc = protocol == "grpc"
    overflow, statuses = ("200" if grpc else "503", "UO"), (("0", "14") if grpc else ())
    gw = m.ingress_gateway()
    keeper = m.workload("beacon", "lamp-keeper", "v2")
    grinder = m.workload("beacon", "lens-grinder", "v1", replicas=2)
    depot = m.workload("depot", "oil-depot", "v3")
    horn = m.workload("signals", "fog-horn", "v1")
    clock = m.workload("signals", "tide-clock", "v4")
    m.call(gw, keeper, 10.0, 60.0, 200.0)
    m.call(keeper, grinder, 10.0, 55.0, 180.0, protocol=protocol)
    m.call(grinder, depot, 10.0, 50.0, 160.0, (*overflow, 0.1), protocol=protocol, grpc_statuses=statuses)
    m.call(horn, depot, 6.0, 50.0, 160.0, (*overflow, 0.2), protocol=protocol, grpc_statuses=statuses)
    m.call(clock, grinder, 4.0, 20.0, 90.0, protocol=protocol)
    return m.build(Expectation("callee-failing", target="beacon/lamp-keeper", subjects=("Service depot/oil-depot",)))


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_failing_service_two_hops_down_has_its_callers_read_whole(tmp_path: Path, require_prometheus: None,
                                                                    protocol: str) -> None:
    """The proxies of a caller from outside the neighbourhood are read whole (stats: their
    clusters' breakers and counters) when calls into the service they call failed, and for their
    configuration dump only when none did; the diagnosis, evidence included, is a mesh-wide
    run's. The same over gRPC: its failures (status 14 inside HTTP 200) are named by the graph
    phase, so a calm gRPC edge is calm and a failing one is followed."""
    with serve_scenario(_lighthouse(protocol), tmp_path / "demo") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        mesh_wide = build_snapshot(collect(config), origin="live")
        keeper, depot = ServiceRef("beacon", "lamp-keeper"), ServiceRef("depot", "oil-depot")
        want = diagnose(mesh_wide, keeper)
        breaker = [f for f in want.findings if f.code == "MSH0405" and f.service == depot]
        assert breaker and any("fog-horn" in p for p in breaker[0].evidence["caller_proxies"])  # type: ignore[union-attr]
        before = len(demo.requests_to("envoy"))
        bundle = collect(config, question=scoped_question(str(keeper), None))
        paths: dict[str, set[str]] = {}
        for r in demo.requests_to("envoy")[before:]:
            parts = r.path_only.split("/")
            paths.setdefault(parts[2].rsplit("-", 2)[0], set()).add("/" + "/".join(parts[3:]))
        # The fog horn calls the failing depot: read whole. The tide clock calls the grinder,
        # into which nothing failed: its dump only. The neighbourhood's own proxies, whole.
        assert {"/stats", "/config_dump"} <= paths["fog-horn-v1"]
        assert paths["tide-clock-v4"] == {"/config_dump"}
        for own in ("lamp-keeper-v2", "lens-grinder-v1", "oil-depot-v3"):
            assert "/stats" in paths[own], own
        got = diagnose(build_snapshot(bundle, origin="live"), keeper)
        assert [(f.code, f.subject, f.evidence) for f in got.findings] == \
            [(f.code, f.subject, f.evidence) for f in want.findings]
        # The timeline's changes too: the tide clock's xDS pushes touch the grinder it calls.
        assert got.timeline.changes == want.timeline.changes and got.status == want.status
        assert any("tide-clock" in c.subject for c in want.timeline.changes)


def _orchard() -> Scenario:
    """Neighbourhoods across namespaces, and one name in two of them: the press calls the cellar,
    the cellar the bottling line and the orchard's weather station (four namespaces, past the
    point where the configuration is listed cluster-wide); a ``ledger`` in the press and
    another in the cellar, only the cellar's failing (503 on 4 %)."""
    m = Mesh("orchard", "Orchard: the cellar's ledger fails; the press has a ledger too",
             "cellar/ledger answers 503 to 4 % of calls")
    gw = m.ingress_gateway()
    press = m.workload("press", "cider-press", "v3", replicas=2)
    press_ledger = m.workload("press", "ledger", "v1")
    barrels = m.workload("cellar", "barrel-store", "v2")
    cellar_ledger = m.workload("cellar", "ledger", "v4")
    bottling = m.workload("bottling", "capper", "v1")
    weather = m.workload("grove", "frost-watch", "v2")
    m.call(gw, press, 18.0, 40.0, 160.0)
    m.call(press, press_ledger, 18.0, 4.0, 15.0)
    m.call(press, barrels, 9.0, 25.0, 110.0, ("503", "-", 0.01))
    m.call(barrels, cellar_ledger, 9.0, 6.0, 30.0, ("503", "-", 0.04))
    m.call(barrels, bottling, 5.0, 12.0, 50.0)
    m.call(barrels, weather, 2.0, 8.0, 35.0)
    m.call(bottling, cellar_ledger, 3.0, 5.0, 25.0, ("503", "-", 0.04))
    return m.build(Expectation("callee-failing", target="press/cider-press", subjects=("Service cellar/ledger",)))


def test_a_name_in_two_namespaces_is_asked_for_its_namespace_before_the_heavy_collection(
        tmp_path: Path, require_prometheus: None) -> None:
    """``ledger`` names a Service in two namespaces: a usage error naming both, before any proxy
    or mesh configuration is asked; each namespaced name resolves to its own service."""
    with serve_scenario(_orchard(), tmp_path / "demo") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        before = {k: len(demo.requests_to(k)) for k in ("envoy", "kubernetes")}
        with pytest.raises(UsageError, match="several namespaces") as raised:
            collect(config, question=scoped_question("ledger", None))
        assert "cellar/ledger" in str(raised.value) and "press/ledger" in str(raised.value)
        assert len(demo.requests_to("envoy")) == before["envoy"]
        kube = [r.path_only for r in demo.requests_to("kubernetes")[before["kubernetes"]:]]
        assert kube and not any("/apis/networking.istio.io" in p or p.endswith("/pods") for p in kube)
        for namespace in ("press", "cellar"):
            bundle = collect(config, question=scoped_question("ledger", namespace))
            scope = scope_from_dict(bundle.scope)
            assert scope is not None and scope.target == ServiceRef(namespace, "ledger")
        # The press's neighbourhood spans four namespaces (and the gateway's): its mesh
        # configuration is listed cluster-wide (kubernetes.SCOPED_NAMESPACES_MAX).
        scope = scope_from_dict(collect(config, question=scoped_question("cider-press", None)).scope)
        assert scope is not None and {"press", "cellar", "bottling", "grove"} <= scope.namespaces


def _quarry() -> Scenario:
    """HTTP and TCP edges from one service: the crusher calls the conveyor over HTTP (503 on
    8 %) and keeps its tallies in a TCP store, so a graph phase whose HTTP edge query failed
    still has an edge from the crusher, and a neighbourhood drawn from it misses the conveyor."""
    m = Mesh("quarry", "Quarry: the conveyor fails the crusher's calls", "conveyor answers 503 to 8 % of calls")
    gw = m.ingress_gateway()
    crusher = m.workload("pit", "crusher", "v7", replicas=2)
    conveyor = m.workload("pit", "conveyor", "v2")
    tally = m.workload("office", "tally-store", "v1")
    m.call(gw, crusher, 12.0, 30.0, 120.0)
    m.call(crusher, conveyor, 12.0, 20.0, 90.0, ("503", "-", 0.08))
    m.call(crusher, tally, 3.0, 2.0, 8.0, protocol="tcp", tcp_bps=(2048.0, 512.0))
    return m.build(Expectation("callee-failing", target="pit/crusher", subjects=("Service pit/conveyor",)))


def test_a_graph_without_its_http_edges_is_not_narrowed(tmp_path: Path, require_prometheus: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The graph phase's ``edges`` query fails while its TCP edges answer: a neighbourhood drawn
    from what answered would miss every HTTP caller and callee and still look complete. The run
    collects what a mesh-wide question collects instead, says why on stderr, and its diagnosis
    is the mesh-wide one."""
    import requests

    from tests.support.faults import Fault, FaultServer

    failed: list[str] = []
    with serve_scenario(_quarry(), tmp_path / "demo") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        upstream = config.sources["prometheus"]["url"]

        def answer(path: str) -> Fault:
            query = unquote(path)
            if "istio_requests_total" in query and "reporter" not in query and "response_code" not in query:
                failed.append(query)
                return Fault.ok('{"status":"error","errorType":"unavailable","error":"overloaded"}', status=503)
            got = requests.get(upstream + path, timeout=10)
            return Fault.ok(got.content, status=got.status_code)

        mesh_wide = build_snapshot(collect(config), origin="live")
        target = ServiceRef("pit", "crusher")
        assert scope_from_dict(collect(config, question=scoped_question(str(target), None)).scope) is not None
        capsys.readouterr()
        with FaultServer(answer) as srv:
            text = yaml.safe_load(demo.config_path.read_text(encoding="utf-8"))
            # Behind a proxy asking for credentials: the errors quote the URL, the warning must not.
            text["sources"]["prometheus"]["url"] = srv.url.replace("://", "://sre:quarry-hunter2@")
            (tmp_path / "faulty.yaml").write_text(yaml.safe_dump(text), encoding="utf-8")
            faulty = load_config(str(tmp_path / "faulty.yaml"))
            assert faulty is not None
            bundle = collect(faulty, question=scoped_question(str(target), None))
    assert failed, "the edges query was never sent"
    edges = next(s for s in bundle.sources if s.kind == "prometheus").get("query:edges")
    tcp = next(s for s in bundle.sources if s.kind == "prometheus").get("query:tcp_edges")
    assert edges is not None and edges.error and tcp is not None and tcp.ok and tcp.body not in (None, b"", "")
    assert bundle.scope is None
    warning = capsys.readouterr().err
    assert "edges" in warning and "quarry-hunter2" not in warning
    got, want = (diagnose(s, target) for s in (build_snapshot(bundle, origin="live"), mesh_wide))
    assert [(f.code, f.subject) for f in got.findings] == [(f.code, f.subject) for f in want.findings]
    assert any(f.subject == "Service pit/conveyor" for f in got.findings)


def test_the_edge_rules_draw_the_same_neighbourhood_and_findings(tmp_path: Path, require_prometheus: None) -> None:
    """``demo serve --recording-rules edges``: the demo's Prometheus holds meshobs's edge rules
    over its hour of history; a scoped question's graph phase reads them, and every service's
    neighbourhood (which proxies are read whole included) and diagnosis are those the raw
    metrics give (the same server read with ``recording_rules: off``)."""
    with serve_scenario(_lighthouse(), tmp_path / "demo", recording_rules="edges") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        text = yaml.safe_load(demo.config_path.read_text(encoding="utf-8"))
        text["sources"]["prometheus"]["recording_rules"] = "off"
        (tmp_path / "raw.yaml").write_text(yaml.safe_dump(text), encoding="utf-8")
        raw_config = load_config(str(tmp_path / "raw.yaml"))
        assert raw_config is not None
        mesh_wide = build_snapshot(collect(config), origin="live")
        services = sorted(s.ref for s in mesh_wide.services if not s.ref.is_unknown)
        assert len(services) >= 5
        for service in services:
            ruled, plain = (collect(c, question=scoped_question(str(service), None)) for c in (config, raw_config))
            graph = next(s for s in ruled.sources if s.kind == "prometheus").get("query:edges")
            assert graph is not None and graph.ok and "edge:istio_requests_total" in graph.params["query"]
            assert ruled.scope == plain.scope, service
            got, want = (diagnose(build_snapshot(b, origin="live"), service) for b in (ruled, plain))
            assert [(f.code, f.subject, f.evidence) for f in got.findings] == \
                [(f.code, f.subject, f.evidence) for f in want.findings], service
            assert _verdict(got) == _verdict(want) and got.status == want.status, service


@pytest.mark.parametrize("build", [_observatory, _harbour, _lighthouse, _orchard])
def test_every_service_of_our_own_meshes_finds_what_a_mesh_wide_run_finds(
        build: Callable[[], Scenario], tmp_path: Path, require_prometheus: None) -> None:
    scenario = build()
    with serve_scenario(scenario, tmp_path / "demo") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        mesh_wide = build_snapshot(collect(config), origin="live")
        findings = 0
        for service in sorted(s.ref for s in mesh_wide.services if not s.ref.is_unknown):
            bundle = collect(config, question=scoped_question(str(service), None))
            scope = scope_from_dict(bundle.scope)
            assert scope is not None and scope.target == service
            scoped = build_snapshot(bundle, origin="live")
            # The scoped snapshot's request edges are the neighbourhood's: what it narrowed to
            # (Jaeger's dependency edges are its own).
            assert all(e.destination in scope.services or e.source in scope.workloads
                       for e in scoped.edges if e.protocol != "dependency")
            want, got = diagnose(mesh_wide, service), diagnose(scoped, service)
            if not any(p.workload in scope.workloads for p in mesh_wide.proxies):
                # No proxy in the neighbourhood (istiod: no sidecar, no callers): Envoy says it has
                # nothing for this question and the checks reading proxies are skipped, where a
                # mesh-wide run passes them on other services' proxies. Every other check agrees.
                unproxied = {c.id for c in got.checks if c.status == "skipped" and "envoy" in c.reason}
                got, want = (replace(r, checks=tuple(c for c in r.checks if c.id not in unproxied))
                             for r in (got, want))
            assert _verdict(got) == _verdict(want), service
            assert got.status == want.status, service
            findings += sum(1 for f in want.findings if f.severity.value in ("warning", "error"))
        assert findings == 0 if scenario.expect.healthy else findings  # a healthy mesh stays clean


def _foundry() -> Scenario:
    """A sidecar problem in a crowded namespace: kiln-control's istio-proxy keeps restarting
    (and one replica is not ready) among 24 quiet workloads of its namespace; it calls a gauge
    beside it and a StatefulSet in another namespace (not among the Deployments the graph phase
    lists); a crash-looping router in a third namespace sits beside it."""
    m = Mesh("foundry", "Foundry: kiln-control's sidecar restarts among many quiet neighbours",
             "kiln-control's istio-proxy restarted 6 times in the last hour")
    gw = m.ingress_gateway()
    kiln = m.workload("foundry", "kiln-control", "v2", replicas=3)
    gauge = m.workload("foundry", "temper-gauge", "v1")
    slag = m.workload("slagyard", "slag-store", "v1", kind="StatefulSet", replicas=2)
    for i in range(24):
        m.workload("foundry", f"mould-{i:02d}", "v1", replicas=2)
    router = m.workload("depot", "crate-router", "v5")
    m.call(gw, kiln, 14.0, 30.0, 140.0)
    m.call(kiln, slag, 14.0, 6.0, 25.0)
    m.call(kiln, gauge, 7.0, 3.0, 12.0)
    m.call(gw, router, 5.0, 20.0, 90.0, ("503", "-", 0.1))
    m.pods(kiln, PodState(started_s_ago=4 * 86400.0, ready=False, replica=1,
                          restarts=(Restart("istio-proxy", count=6, s_ago=600.0, reason="OOMKilled",
                                            exit_code=137, ran_s=500.0),)))
    m.pods(router, PodState(restarts=(Restart("app", count=9, s_ago=120.0),), ready=False))
    return m.build(Expectation("control-plane", target="foundry/kiln-control",
                               subjects=("Service foundry/kiln-control",)))


def test_a_sidecar_problem_among_many_pods_is_found_from_the_namespaces_pods(
        tmp_path: Path, require_prometheus: None) -> None:
    """The graph phase lists no pods; the scoped phase lists the pods of the neighbourhood's
    namespaces only, narrowed by a label selector where the Services and Deployments say how
    (whole where a workload is known from traffic only, and the target's own), and the pod-level findings (a
    restarting, unready sidecar) and every other verdict equal a mesh-wide run's, for the
    service, its StatefulSet callee and a service beside."""
    scenario = _foundry()
    with serve_scenario(scenario, tmp_path / "demo") as demo:
        config = load_config(str(demo.config_path))
        assert config is not None
        mesh_wide = build_snapshot(collect(config), origin="live")
        kiln, slag = ServiceRef("foundry", "kiln-control"), ServiceRef("slagyard", "slag-store")
        assert {f.code for f in diagnose(mesh_wide, kiln).findings if f.service == kiln}  # something to find
        for target in (kiln, slag, ServiceRef("depot", "crate-router")):
            before = len(demo.requests_to("kubernetes"))
            bundle = collect(config, question=scoped_question(str(target), None))
            asked = {r.path_only: r.path for r in demo.requests_to("kubernetes")[before:]
                     if r.path_only.endswith("/pods")}
            pods_asked = list(asked)
            scope = scope_from_dict(bundle.scope)
            assert scope is not None
            # Pods per namespace of the neighbourhood (and istiod's), never the mesh's list.
            assert "/api/v1/pods" not in pods_asked
            assert {p.split("/")[4] for p in pods_asked} == scope.namespaces | {"istio-system"}
            scoped = build_snapshot(bundle, origin="live")
            assert {p.namespace for p in scoped.pods} <= scope.namespaces | {"istio-system"}
            if target == slag:
                # Its caller's crowded namespace narrowed to the neighbourhood's pods; its own
                # namespace and the root namespace (istiod's pods) listed whole.
                assert "labelSelector=" in asked["/api/v1/namespaces/foundry/pods"]
                assert "labelSelector=" not in asked["/api/v1/namespaces/slagyard/pods"]
                assert "labelSelector=" not in asked["/api/v1/namespaces/istio-system/pods"]
                foundry = {p.name for p in scoped.pods if p.namespace == "foundry"}
                assert foundry < {p.name for p in mesh_wide.pods if p.namespace == "foundry"}
                assert foundry == {p.name for p in mesh_wide.pods_of(WorkloadRef("foundry", "kiln-control-v2"))}
            if target == kiln:
                # The target's own namespace is listed whole: a namespace-wide comparison (its
                # sidecars' image against its neighbours') can find something about its pods.
                assert "labelSelector=" not in asked["/api/v1/namespaces/foundry/pods"]
            assert _verdict(diagnose(scoped, target)) == _verdict(diagnose(mesh_wide, target)), target
            assert diagnose(scoped, target).status == diagnose(mesh_wide, target).status, target
            replayed = build_snapshot(read_bundle(write_bundle(bundle, tmp_path / f"{target.name}.tar.gz")))
            assert _verdict(diagnose(replayed, target)) == _verdict(diagnose(mesh_wide, target)), target
        # The StatefulSet's workload is in kiln-control's neighbourhood (from the traffic it
        # answers, not from a Deployment) and its proxies were asked.
        scope = scope_from_dict(collect(config, question=scoped_question(str(kiln), None)).scope)
        assert scope is not None and {w.ref for w in mesh_wide.workloads_of(slag)} <= scope.workloads


def test_a_grpc_edge_is_calm_when_the_graph_phase_named_no_failure_on_it() -> None:
    """gRPC failures (Envoy's UO/UH/URX refusals, the server's grpc-status) arrive as HTTP 200;
    the graph phase's ``failing`` query names them by their grpc_response_status, so a gRPC edge
    it named none on is calm, and one it named a status 14 on is not."""
    from meshobs.model import Edge, ServiceRef, WorkloadRef
    from meshobs.model.traffic import NOT_FAILED, ResponseStat
    from meshobs.neighbourhood import _calm

    ok = (ResponseStat(code=NOT_FAILED, flags="-", rate=12.0),)
    unavailable = (ResponseStat(code=NOT_FAILED, flags="-", rate=11.0), ResponseStat("200", "UO", 1.0, "14"))
    caller, ledger = WorkloadRef("tollbooth", "gate-v1"), ServiceRef("tollbooth", "ledger")
    assert _calm([Edge(caller, ledger, protocol="http", responses=ok)])
    assert _calm([Edge(caller, ledger, protocol="grpc", responses=ok)])
    assert not _calm([Edge(caller, ledger, protocol="grpc", responses=unavailable)])
    assert not _calm([Edge(caller, ledger, protocol="grpc")])  # outcome unknown
    assert not _calm([Edge(caller, ledger, protocol="http")])
