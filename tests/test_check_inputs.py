"""What each check and analyzer declares it needs is exactly what it reads (Istio's
CheckMetadataInputs): every check runs on recording snapshots of the built-in demos, the
analyzer grid's inputs and hand-built meshes, and the union of what it read must equal its
declaration, so the engine's "skipped: no proxy data" is never wrong and ``meshobs checks``
tells the truth."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import pytest

from meshobs.checks.base import Analyzer, Check, CouldNotCheck, Settings
from meshobs.checks.registry import ALL
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import list_demos, load_demo
from meshobs.model import MeshSnapshot
from tests.support import e2_builders
from tests.support.manifests import manifests_snapshot
from tests.support.recording import RecordingSnapshot
from tests.support.scenarios import snapshot as scenario_snapshot
from tests.test_analyzers import GRID, live_namespace_without_pods
from tests.test_analyzers_net import NET_GRID
from tests.test_analyzers_sec import SEC_GRID

INPUTS = {"graph", "requests", "latency", "security", "proxies", "certs", "traces", "series", "history"}
# The kinds of edge data a source delivers with the graph: reading them implies reading it.
EDGE_DATA = {"requests", "latency", "security"}
TOPOLOGY = {"Service", "Workload"}


@cache
def snapshots() -> tuple[MeshSnapshot, ...]:
    names = [name for name, _ in list_demos() if not name.startswith("generated")]
    demos = [build_snapshot(load_demo(name), origin=name) for name in names]
    grid = [manifests_snapshot(files) for _a, _c, files, _e in GRID + NET_GRID + SEC_GRID]
    # Library scenarios with a control plane (istiod's endpoints and metrics, its injector
    # webhook) and configuration delivery faults (a NACK, an unacknowledged push); one with an
    # hour of metric history and dated changes (the classic demos have neither).
    from tests.test_ranking_signature import _ledger_with_dead_canary_rule

    library = [scenario_snapshot(n) for n in ("istiod-not-ready", "envoyfilter-nack", "proxy-unacked",
                                               "dr-change-onset")]
    # A dead rule whose subset got no traffic: config.idle_route reads the request rates there.
    dead_rule = _ledger_with_dead_canary_rule(0.0)
    assert isinstance(dead_rule, MeshSnapshot)
    return (*demos, *grid, *library, e2_builders.snapshot(), live_namespace_without_pods(), dead_rule)


def _consume(findings: Iterable[object]) -> None:
    try:
        for _ in findings:
            pass
    except CouldNotCheck:
        pass


@cache
def reads() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {c.id: set() for c in ALL}
    settings = Settings()
    for snapshot in snapshots():
        for c in ALL:
            recorder = RecordingSnapshot(snapshot)
            if isinstance(c, Analyzer):
                _consume(c.run(recorder, settings))  # type: ignore[arg-type]
            else:
                for s in snapshot.services:
                    _consume(c.run(recorder, s.ref, settings))  # type: ignore[arg-type]
            out[c.id] |= recorder.reads
    return out


def _check_inputs(read: set[str]) -> set[str]:
    """A service check's reads as engine inputs (configuration of any kind is "config")."""
    out = {r for r in read if r in INPUTS}
    out |= {"config" for r in read if r.startswith("config:")}
    out |= {"pods" for r in read if r == "Pod"}
    out |= {"control_plane" for r in read if r == "ControlPlane"}
    return out


def _with_graph(inputs: set[str]) -> set[str]:
    """Every source of request, latency or mTLS data gives the graph too: a check declaring one
    of them may read the graph without declaring it."""
    return inputs | {"graph"} if inputs & EDGE_DATA else inputs


@pytest.mark.parametrize("check", [c for c in ALL if isinstance(c, Check)], ids=lambda c: c.id)
def test_a_check_reads_exactly_the_inputs_it_declares(check: Check) -> None:
    read = reads()[check.id]
    assert not {r for r in read if r.startswith("unknown:")}, read
    needs = {option for need in check.needs for option in need.split("|")}
    uses = {option for use in check.uses for option in use.split("|")}
    inputs = _check_inputs(read)
    # Everything needed is read; nothing is read that is not declared. An optional input may go
    # unread on these snapshots (appmesh.client_tls reads request rates as evidence only when
    # it finds a mismatch).
    assert needs <= _with_graph(inputs)
    assert inputs <= _with_graph(needs | uses)


@pytest.mark.parametrize("analyzer", [c for c in ALL if isinstance(c, Analyzer)], ids=lambda c: c.id)
def test_an_analyzer_reads_exactly_the_kinds_it_declares(analyzer: Analyzer) -> None:
    read = reads()[analyzer.id]
    assert not {r for r in read if r.startswith("unknown:")}, read
    assert "config:*" not in read, "an analyzer names the kinds it reads"
    assert not read & INPUTS, "an analyzer judges configuration, not traffic, proxies or traces"
    kinds = {r.removeprefix("config:") for r in read}
    assert kinds == set(analyzer.reads)


def test_the_recorder_sees_what_a_check_reads() -> None:
    """The test above can fail: a check that reads proxies is caught reading them."""
    from meshobs.checks.traffic import endpoints

    recorder = RecordingSnapshot(snapshots()[0])
    service = next(s.ref for s in snapshots()[0].services if s.name == "database-service")
    _consume(endpoints.run(recorder, service, Settings()))  # type: ignore[arg-type]
    assert "proxies" in recorder.reads and "graph" not in recorder.reads


def test_the_recorder_sees_which_edge_data_a_check_reads() -> None:
    """Reading an edge's endpoints is the graph; its codes, latency or mTLS are more."""
    from meshobs.checks.traffic import error_rate, latency

    snapshot = snapshots()[0]
    service = next(s.ref for s in snapshot.services if s.name == "cart-service")
    for check, kind in ((error_rate, "requests"), (latency, "latency")):
        recorder = RecordingSnapshot(snapshot)
        _consume(check.run(recorder, service, Settings()))  # type: ignore[arg-type]
        assert kind in recorder.reads and "security" not in recorder.reads

