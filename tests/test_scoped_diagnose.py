"""``diagnose SERVICE`` collects the graph mesh-wide, then only its neighbourhood: against a
generated mesh served live (a real Prometheus, loopback Envoy admin, Jaeger and Kubernetes
APIs), it asks only the neighbourhood's proxies and finds what a mesh-wide collection finds."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshobs.bundle import read_bundle, write_bundle
from meshobs.cli.common import UsageError
from meshobs.cli.diagnose import scoped_question
from meshobs.collect import build_snapshot, collect, scope_from_dict
from meshobs.collectors.prometheus import fetch as prom_fetch
from meshobs.collectors.promql import scope_matchers
from meshobs.config import Config, load_config
from meshobs.demo.serve import LiveDemo, serve_scenario
from meshobs.engine import Report, diagnose
from meshobs.model import MeshSnapshot, ServiceRef

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
    monkeypatch.setattr(prom_fetch, "_narrowed", lambda text, *scopes: narrowed(text, *scopes[-1:]))
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


def test_a_source_failing_the_same_way_in_both_phases_is_reported_once() -> None:
    from meshobs.collect import merge_phases
    from meshobs.raw import RawSource

    why = "no kubeconfig at /nowhere and not running in a pod"
    graph = [RawSource("kubernetes", "kubernetes", error=why)]
    assert [r.name for r in merge_phases(graph, [RawSource("kubernetes", "kubernetes", error=why)])] == ["kubernetes"]
    # A different failure in the scoped phase is a second fact and stays visible.
    other = RawSource("kubernetes", "kubernetes", error="timed out after 5 s")
    assert [r.name for r in merge_phases(graph, [other])] == ["kubernetes", "kubernetes:scoped"]
