"""A scoped question reads the graph phase as edge keys (meshobs.graph_phase), not as the
assembled mesh-wide snapshot: against meshes served live (a real Prometheus, the Kubernetes
API), every service's name is found among the same services, its neighbourhood is the one the
whole snapshot draws, and an unknown name gets the same answer. Every fallback (the keys cannot
stand in: another source's edges or proxies, App Mesh names, a Service's workload known from the
edges only, an edge naming no source service, a malformed or failed answer, not one Prometheus)
is taken where it must be, and answers as the whole snapshot does."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from meshobs.callgraph import answered
from meshobs.cli.common import UsageError
from meshobs.cli.diagnose import scoped_question
from meshobs.collect import collect, normalize_source
from meshobs.config import load_config
from meshobs.demo.scenario import Scenario
from meshobs.demo.serve import serve_scenario
from meshobs.graph_phase import GraphPhase
from meshobs.model import ConfigResource, Edge, Mesh, Proxy, ServiceRef, SnapshotPart, Workload, WorkloadRef
from meshobs.model.frozen import FrozenDict
from meshobs.model.refs import UNKNOWN_WORKLOAD
from meshobs.neighbourhood import neighbourhood
from meshobs.raw import RawSource
from tests.test_node_edges import counting_house
from tests.test_scoped_diagnose import _foundry, _harbour, _lighthouse, _observatory, _orchard

pytestmark = pytest.mark.slow


class _Stop(Exception):
    pass


def _graph_phase(config_path: Path) -> GraphPhase:
    """The graph phase of a live question, as the question is handed it (then stopped)."""
    config = load_config(str(config_path))
    assert config is not None
    seen: list[GraphPhase] = []

    def capture(graph: GraphPhase) -> None:
        seen.append(graph)
        raise _Stop

    with pytest.raises(_Stop):
        collect(config, question=capture)
    return seen[0]


def _same_answers(phase: GraphPhase, keys: bool = True) -> int:
    """The phase answers as the whole snapshot does; ``keys``: from the edge keys (False: the
    whole snapshot answers, a fallback)."""
    names = phase.names()
    whole = phase.whole()
    assert (phase._call_graph() is not None) is keys  # the keys stood in: not the whole snapshot again
    assert [s.ref for s in names.services] == [s.ref for s in whole.services]
    assert answered(names) == answered(whole)
    services = [s.ref for s in whole.services]
    for service in services:
        around = phase.around(service)
        assert len(around.edges) <= len(whole.edges)
        assert bool(around.edges) == bool(whole.edges)
        assert neighbourhood(around, service) == neighbourhood(whole, service), service
        assert scoped_question(str(service), None)(phase) == scoped_question(str(service), None)(whole), service
    for name in ("no-such-service", services[0].name[:-1], f"{services[0].namespace}/nope"):
        answers = []
        for graph in (phase, whole):
            with pytest.raises(UsageError) as raised:
                scoped_question(name, None)(graph)
            answers.append(str(raised.value))
        assert answers[0] == answers[1]
    return len(services)


@pytest.mark.parametrize("rules", ["none", "edges"])
def test_a_generated_mesh_gives_every_service_the_same_neighbourhood(tmp_path: Path, require_prometheus: None,
                                                                     rules: str) -> None:
    with serve_scenario("generated-60", tmp_path / "demo", recording_rules=rules) as demo:
        phase = _graph_phase(demo.config_path)
        assert _same_answers(phase) >= 60


@pytest.mark.parametrize("build", [_observatory, _harbour, _lighthouse, _orchard, _foundry, counting_house])
def test_our_own_meshes_give_every_service_the_same_neighbourhood(build: Callable[[], Scenario], tmp_path: Path,
                                                                  require_prometheus: None) -> None:
    with serve_scenario(build(), tmp_path / "demo") as demo:
        assert _same_answers(_graph_phase(demo.config_path)) >= 5


# -- the fallbacks: where the keys cannot stand in, the whole snapshot answers -------------------
# Each variant changes the counting house's recorded graph phase (tests/test_node_edges.py: a
# Deployment behind two Services) the way a source can, builds the phase anew from it, and checks
# which way it answers and that it answers as the whole snapshot does.


@pytest.fixture(scope="module")
def counting_house_phase(require_prometheus: None, tmp_path_factory: pytest.TempPathFactory) -> GraphPhase:
    with serve_scenario(counting_house(), tmp_path_factory.mktemp("counting-house")) as demo:
        return _graph_phase(demo.config_path)


def _copy(raw: RawSource) -> RawSource:
    """``raw`` as fetched (its payloads copied, nothing normalised yet)."""
    return RawSource(raw.name, raw.kind, [replace(p, decoded=None) for p in raw.payloads], dict(raw.meta),
                     raw.error, raw.duration_s)


def _answer_without(raw: RawSource, label: str, workload: str, unknown: bool = False) -> RawSource:
    """``raw`` whose edge series from ``workload`` lack ``label`` (as a pod without it reports);
    ``unknown``: and their source workload is unknown too (a caller outside the mesh)."""
    out = _copy(raw)
    for p in out.payloads:
        if p.key.startswith("query:") and p.body:
            doc = json.loads(p.body)
            for series in (doc.get("data") or doc).get("result") or []:  # the data, as recorded
                metric = series["metric"]
                if metric.get("source_workload") == workload:
                    metric.pop(label, None)
                    if unknown:
                        metric["source_workload"] = metric["source_workload_namespace"] = "unknown"
            p.body = json.dumps(doc)
    return out


def _failed(raw: RawSource, key: str) -> RawSource:
    """``raw`` whose ``key`` the server answered with an error."""
    return RawSource(raw.name, raw.kind, [
        replace(p, decoded=None, body=None, status=503, error="503 Service Unavailable") if p.key == key
        else replace(p, decoded=None) for p in raw.payloads], dict(raw.meta))


def _with_part(name: str, kind: str, part: SnapshotPart) -> RawSource:
    raw = RawSource(name, kind)
    raw.part = part
    return raw


def _kubernetes_without(raw: RawSource, phase: GraphPhase, workload: str) -> RawSource:
    """The Kubernetes source's part without ``workload`` (its Deployment not listed)."""
    part = normalize_source(_copy(raw), phase.time, phase.window_s)
    part.workloads = [w for w in part.workloads if w.ref.name != workload]
    return _with_part(raw.name, raw.kind, part)


# A call Jaeger saw and Prometheus did not: a service and a callee of teller only it knows.
TRACED_EDGE = Edge(source=UNKNOWN_WORKLOAD, destination=ServiceRef("vault", "hsm"),
                   source_service=ServiceRef("vault", "teller"), protocol="dependency", request_rate=1.0)
Variant = Callable[[list[RawSource], GraphPhase], list[RawSource]]


def _replace(kind: str, change: Callable[[RawSource, GraphPhase], RawSource]) -> Variant:
    return lambda sources, phase: [change(r, phase) if r.kind == kind else r for r in sources]


VARIANTS: dict[str, tuple[Variant, bool]] = {
    # name: (the sources as changed, whether the keys still stand in)
    "as fetched": (lambda sources, phase: sources, True),
    "another source's edges": (lambda sources, phase: [*sources, _with_part(
        "jaeger", "jaeger", SnapshotPart(edges=[TRACED_EDGE]))], False),
    "App Mesh workloads": (lambda sources, phase: [*sources, _with_part("appmesh", "kubernetes", SnapshotPart(
        workloads=[Workload(WorkloadRef("vault", "ledger"), mesh=Mesh.APPMESH)]))], False),
    "App Mesh configuration": (lambda sources, phase: [*sources, _with_part("appmesh", "appmesh", SnapshotPart(
        config=[ConfigResource("VirtualNode", "vault", "ledger", FrozenDict({}), mesh=Mesh.APPMESH)]))], False),
    "a proxy": (lambda sources, phase: [*sources, _with_part("envoy", "envoy", SnapshotPart(
        proxies=[Proxy("ledger-0.vault", "ledger-0", "vault", WorkloadRef("vault", "ledger"))]))], False),
    "a Service's workload known from the edges only": (_replace(
        "kubernetes", lambda r, phase: _kubernetes_without(r, phase, "ledger")), False),
    "an edge naming no source service": (_replace(
        "prometheus", lambda r, phase: _answer_without(r, "source_canonical_service", "teller-v3")), False),
    "a malformed answer": (_replace("prometheus", lambda r, phase: RawSource(r.name, r.kind, [
        replace(p, decoded=None, body="{not json" if p.key == "query:edges" else p.body) for p in r.payloads],
        dict(r.meta))), False),
    "two Prometheus sources": (lambda sources, phase: [*sources, *(
        replace(_copy(r), name="prometheus-2") for r in sources if r.kind == "prometheus")], False),
    "Prometheus unreachable": (_replace("prometheus", lambda r, phase: RawSource(
        r.name, r.kind, error="cannot reach Prometheus at http://127.0.0.1:9 (connection refused)")), False),
    "Kubernetes unreachable": (_replace("kubernetes", lambda r, phase: RawSource(
        r.name, r.kind, error="no kubeconfig at /nowhere and not running in a pod")), True),
    "a caller outside the mesh": (_replace("prometheus", lambda r, phase: _answer_without(
        r, "source_canonical_service", "istio-ingressgateway", unknown=True)), True),
    "a failed edge query": (_replace("prometheus", lambda r, phase: _failed(r, "query:edges")), True),
    "a failed query beside the edges": (_replace(
        "prometheus", lambda r, phase: _failed(r, "query:failing")), True),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_fallback_answers_as_the_whole_snapshot(counting_house_phase: GraphPhase, variant: str) -> None:
    change, stands_in = VARIANTS[variant]
    fetched = [_copy(r) for r in counting_house_phase.sources]
    sources = change(fetched, counting_house_phase)
    phase = GraphPhase(counting_house_phase.time, counting_house_phase.window_s, counting_house_phase.config,
                       sources).done(sources)
    assert _same_answers(phase, stands_in) >= 5


@pytest.mark.parametrize("variant", ["another source's edges", "an edge naming no source service"])
def test_without_the_fallback_the_keys_would_answer_otherwise(counting_house_phase: GraphPhase, variant: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallbacks guard real differences: made to stand in, the keys miss a service only
    another source knows, or draw a caller's neighbourhood without the caller's calls."""
    import meshobs.graph_phase

    monkeypatch.setattr(meshobs.graph_phase, "_keys_stand_in", lambda rest, unnamed: True)
    sources = VARIANTS[variant][0]([_copy(r) for r in counting_house_phase.sources], counting_house_phase)
    phase = GraphPhase(counting_house_phase.time, counting_house_phase.window_s, counting_house_phase.config,
                       sources).done(sources)
    assert phase._call_graph() is not None
    whole = phase.whole()
    differ = [s.ref for s in whole.services if neighbourhood(phase.around(s.ref), s.ref) != neighbourhood(whole, s.ref)]
    assert differ or [s.ref for s in phase.names().services] != [s.ref for s in whole.services]
