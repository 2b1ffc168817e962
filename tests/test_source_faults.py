"""Each source misbehaving in turn (trickle, hang, huge, 429, garbage) while the others serve the
e-commerce demo live: the run ends within its deadline, the faulty source is "could not check"
with the reason, and no finding appears that the healthy run does not have."""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from meshobs.collect import build_snapshot, collect
from meshobs.config import Config, validate
from meshobs.demo.serve import serve_scenario
from meshobs.engine import Report, diagnose
from meshobs.model import MeshSnapshot, ServiceRef, SourceState
from tests.support.faults import Fault, FaultServer

pytestmark = pytest.mark.slow

RUN_S = 4.0
TARGET = ServiceRef("shop", "frontend")
FAULTS = {
    "trickle": (Fault.trickle(0.2), ("timed out", "deadline")),
    "hang": (Fault.hang(), ("timed out", "deadline")),
    "huge": (Fault.huge(), ("larger than 2 MB",)),
    "429": (Fault.ok('{"status": "error", "error": "slow down"}', status=429), ("429",)),
    "garbage": (Fault.ok("<html><body>maintenance</body></html>", content_type="text/html"),
                ("JSON", "json", "expected", "readiness", "unexpected")),
}


@pytest.fixture(scope="module")
def demo(require_prometheus: None) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp, \
            serve_scenario("ecommerce", Path(tmp) / "demo") as live:
        raw = yaml.safe_load(live.config_path.read_text())
        for section in raw["sources"].values():
            section["timeout"] = "1s"
        raw["max_response_mb"] = 2  # the demo's answers are smaller; a flood hits it at once
        yield raw


def _findings(report: Report) -> set[tuple[str, str]]:
    return {(f.code, f.subject) for f in report.findings}


@pytest.fixture(scope="module")
def healthy(demo: dict[str, Any]) -> set[tuple[str, str]]:
    snap = build_snapshot(collect(validate(demo)))
    assert all(s.ok for s in snap.sources)
    return _findings(diagnose(snap, TARGET))


def _with_fault(raw: dict[str, Any], source: str, url: str, tmp: Path) -> Config:
    raw = copy.deepcopy(raw)
    section = raw["sources"][source]
    if source == "kubernetes":
        kubeconfig = yaml.safe_load(Path(section["kubeconfig"]).read_text())
        kubeconfig["clusters"][0]["cluster"]["server"] = url
        path = tmp / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig))
        section["kubeconfig"] = str(path)
    elif source == "envoy":
        for target in section["targets"]:
            target["url"] = f"{url}/{target['namespace']}/{target['pod']}"
    else:
        section["url"] = url
    return validate(raw)


def _run(config: Config) -> tuple[MeshSnapshot, float]:
    start = time.monotonic()
    bundle = collect(config, deadline=start + RUN_S)
    snap = build_snapshot(bundle)
    diagnose(snap, TARGET)
    return snap, time.monotonic() - start


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("source", ["prometheus", "jaeger", "kubernetes", "envoy"])
def test_a_faulty_source_is_could_not_check(demo: dict[str, Any], healthy: set[tuple[str, str]],
                                            source: str, fault: str, tmp_path: Path) -> None:
    misbehaviour, words = FAULTS[fault]
    with FaultServer(lambda _path: misbehaviour) as srv:
        snap, took = _run(_with_fault(demo, source, srv.url, tmp_path))
    assert took < RUN_S + 1.0
    failed = [s for s in snap.sources if s.kind == source]
    assert failed and all(s.state is SourceState.ERROR for s in failed), [(s.name, s.state) for s in failed]
    assert all(any(w in s.message for w in words) for s in failed), [s.message for s in failed]
    # Nothing new: the faulty source costs its checks, it never invents a finding.
    found = _findings(diagnose(snap, TARGET))
    new = {f for f in found - healthy if f[0] != "MSH0002"}
    assert not new, new


def test_one_heavy_query_timing_out_leaves_the_others_used(demo: dict[str, Any], healthy: set[tuple[str, str]],
                                                           ) -> None:
    import requests

    upstream = demo["sources"]["prometheus"]["url"]

    def answer(path: str) -> Fault:
        if "istio_request_duration" in unquote(path):
            return Fault.hang()  # the latency histograms: the heavy query
        got = requests.get(upstream + path, timeout=10)
        return Fault.ok(got.content, status=got.status_code)

    raw = copy.deepcopy(demo)
    with FaultServer(answer) as srv:
        raw["sources"]["prometheus"]["url"] = srv.url
        snap, took = _run(validate(raw))
    assert took < RUN_S + 1.0
    (prometheus,) = [r for r in snap.sources if r.kind == "prometheus"]
    assert "timed out" in prometheus.message
    # The request-rate query answered: its edges and the error findings they carry are used.
    assert snap.edges
    errors = {f for f in _findings(diagnose(snap, TARGET)) if f[0] in ("MSH0401", "MSH0402")}
    assert errors and errors <= healthy


def test_sources_left_unasked_by_a_hung_graph_source_name_it(demo: dict[str, Any], tmp_path: Path) -> None:
    """A live ``diagnose SERVICE`` draws the call graph first (Prometheus, Kubernetes), then asks
    Envoy and Jaeger about the neighbourhood. A Prometheus that accepts and never answers holds
    the graph phase to the deadline: Envoy and Jaeger are not asked, and say it was Prometheus
    that took the time (not "raise sources.envoy.concurrency" / "check sources.jaeger.url").
    (With Prometheus's own timeout shorter than the run, the graph phase ends in time and Envoy
    does not ask the same hung Prometheus for the proxies' scraped stats: test_prometheus_hung.)"""
    from meshobs.cli.diagnose import scoped_question

    raw = copy.deepcopy(demo)
    raw["sources"]["prometheus"]["timeout"] = "10s"  # the default: longer than the run
    with FaultServer(lambda _path: Fault.hang()) as srv:
        config = _with_fault(raw, "prometheus", srv.url, tmp_path)
        start = time.monotonic()
        snap = build_snapshot(collect(config, deadline=start + RUN_S, question=scoped_question(str(TARGET), None)))
    assert time.monotonic() - start < RUN_S + 1.0
    by_kind = {s.kind: s for s in snap.sources}
    assert by_kind["prometheus"].state is SourceState.ERROR
    assert by_kind["kubernetes"].state is SourceState.OK
    for kind in ("envoy", "jaeger"):
        unasked = [s for s in snap.sources if s.kind == kind]
        assert [s.state for s in unasked] == [SourceState.ERROR], unasked
        assert "waited for prometheus" in unasked[0].message
        assert "concurrency" not in unasked[0].message and "check sources" not in unasked[0].message
