"""A scoped question reads the graph phase as edge keys (meshobs.graph_phase), not as the
assembled mesh-wide snapshot: against meshes served live (a real Prometheus, the Kubernetes
API), every service's name is found among the same services, its neighbourhood is the one the
whole snapshot draws, and an unknown name gets the same answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshobs.callgraph import answered
from meshobs.cli.common import UsageError
from meshobs.cli.diagnose import scoped_question
from meshobs.collect import collect
from meshobs.config import load_config
from meshobs.demo.scenario import Scenario
from meshobs.demo.serve import serve_scenario
from meshobs.graph_phase import GraphPhase
from meshobs.neighbourhood import neighbourhood
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


def _same_answers(phase: GraphPhase) -> int:
    names = phase.names()
    whole = phase.whole()
    assert phase._call_graph() is not None  # the keys stood in: not the whole snapshot again
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


@pytest.mark.parametrize("build", [_observatory, _harbour, _lighthouse, _orchard, _foundry])
def test_our_own_meshes_give_every_service_the_same_neighbourhood(build: Callable[[], Scenario], tmp_path: Path,
                                                                  require_prometheus: None) -> None:
    with serve_scenario(build(), tmp_path / "demo") as demo:
        assert _same_answers(_graph_phase(demo.config_path)) >= 5
