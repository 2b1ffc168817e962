"""Inputs by kind of data: a source counts only for the data it delivered in this run.

Jaeger's dependency links are a service graph (call counts), never error rates, latency or
mTLS; a Prometheus that answered the request rates but not the latency quantiles costs the
latency checks only, and says which query.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from meshobs.bundle import Bundle, write_bundle
from meshobs.cli.main import cli
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import diagnose
from meshobs.engine.inputs import INPUTS, answered, availability, missing
from meshobs.model import Edge, MeshSnapshot, ServiceRef, SourceState, SourceStatus, WorkloadRef, frozen_map
from tests.support.builders import T0

# The checks that judge numbers Jaeger's call counts do not carry.
TRAFFIC_CHECKS = ("traffic.error_rate", "traffic.latency", "config.split_mismatch", "certs.plaintext_edge")
REFUSED = "cannot reach Prometheus at http://127.0.0.1:1 (connection refused): check sources.prometheus.url"


def _ecommerce(break_prometheus: dict[str, str]) -> Bundle:
    """The e-commerce demo (the database's endpoints are ejected) with Prometheus payloads
    replaced by errors: key prefix -> error."""
    bundle = load_demo("ecommerce")
    for source in bundle.sources:
        if source.kind != "prometheus":
            continue
        for p in source.payloads:
            for prefix, error in break_prometheus.items():
                if p.key.startswith(prefix):
                    p.body, p.status, p.error = None, None, error
                    p.meta["unreachable" if "refused" in error else "timed_out"] = True
    return bundle


def _run(bundle: Bundle, tmp_path: Path, *args: str) -> tuple[int, dict]:
    path = write_bundle(bundle, tmp_path / "b.tar.gz")
    result = CliRunner().invoke(cli, ["diagnose", *args, "--from", str(path), "-o", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_prometheus_down_jaeger_up_cannot_check_traffic_and_keeps_the_cause(tmp_path: Path) -> None:
    bundle = _ecommerce({"": REFUSED})
    assert any(s.kind == "jaeger" for s in bundle.sources)
    code, doc = _run(bundle, tmp_path, "frontend")
    checks = {c["id"]: c for c in doc["checks"]}
    for check_id in TRAFFIC_CHECKS:
        assert checks[check_id]["status"] == "skipped", check_id
        assert "prometheus" in checks[check_id]["reason"]
    # Jaeger still gives the graph, so the walk downstream finds what Envoy shows there.
    ranked = [(f["code"], f["subject"]) for f in doc["findings"]]
    assert ranked[0] == ("MSH0406", "Service shop/database-service")
    assert ("MSH0002", "Source prometheus") in ranked
    assert code == 1


def test_latency_timeout_skips_only_the_latency_check(tmp_path: Path) -> None:
    why = "query latency_p99 timed out after 10 s"
    code, doc = _run(_ecommerce({"query:latency_p99": why}), tmp_path, "frontend")
    checks = {c["id"]: c for c in doc["checks"]}
    assert checks["traffic.latency"]["status"] == "skipped"
    assert why in checks["traffic.latency"]["reason"]
    # (The control plane's analyzers: this bundle never asked Prometheus for istiod's metrics. It
    # holds no metric history either: the onset check says so, as before the timeout.)
    control_plane = ("proxy.istiod_ready", "proxy.istiod_pushes", "proxy.version_skew")
    assert [c for c in checks.values() if c["status"] == "skipped" and "prometheus" in c["reason"]
            and c["id"] not in control_plane and "no metric history" not in c["reason"]] == [
        checks["traffic.latency"]]
    assert all("not collected" in checks[c]["reason"] for c in control_plane)
    assert checks["traffic.error_rate"]["status"] == "fail"  # the requests answered: still judged
    assert doc["status"] == "failing" and code == 1


def _snapshot(*sources: SourceStatus, edges: tuple[Edge, ...] = ()) -> MeshSnapshot:
    return MeshSnapshot(time=T0, window_s=300.0, edges=edges, sources=sources)


def _jaeger_edge() -> Edge:
    return Edge(source=WorkloadRef("unknown", "unknown"), destination=ServiceRef("shop", "cart"),
                source_service=ServiceRef("shop", "web"), protocol="dependency", request_rate=3.0)


def test_call_counts_are_a_graph_not_request_metrics() -> None:
    available = availability(_snapshot(SourceStatus("jaeger", SourceState.OK, kind="jaeger"),
                                       edges=(_jaeger_edge(),)))
    assert available["graph"] is None and available["traces"] is None
    for name in ("requests", "latency", "security"):
        assert available[name] is not None and "no prometheus" in str(available[name])


def test_a_source_says_what_it_delivered() -> None:
    partial = SourceStatus("prometheus", SourceState.ERROR, "query latency_p99 timed out", kind="prometheus",
                           inputs=frozen_map({"graph": None, "requests": None, "security": None,
                                              "latency": "query latency_p99 timed out after 10 s"}))
    snapshot = _snapshot(partial, edges=(replace(_jaeger_edge(), protocol="http"),))
    available = availability(snapshot)
    assert available["requests"] is None and available["graph"] is None
    assert available["latency"] == "no latency metrics: prometheus: query latency_p99 timed out after 10 s"
    assert answered(snapshot)
    # An ok source that says it lacks a kind is believed too.
    ok_but = replace(partial, state=SourceState.OK)
    assert availability(_snapshot(ok_but))["latency"] is not None
    # Another source of a providing kind that delivered it makes it available.
    xray = SourceStatus("xray", SourceState.OK, kind="xray")
    assert availability(_snapshot(partial, xray))["latency"] is None


def test_a_wholly_failed_source_is_named_not_repeated() -> None:
    down = SourceStatus("prometheus", SourceState.ERROR, REFUSED, kind="prometheus",
                        inputs=frozen_map({name: REFUSED for name in ("graph", "requests", "latency", "security")}))
    available = availability(_snapshot(down))
    assert available["latency"] == "no latency metrics: prometheus failed (see Sources)"
    assert not answered(_snapshot(down))


def test_either_input_will_do() -> None:
    available = {"proxies": "no proxy data: envoy failed (see Sources)", "requests": None}
    assert missing(("proxies|requests",), available) is None
    assert missing(("proxies",), available) == available["proxies"]
    assert set(INPUTS) >= {"graph", "requests", "latency", "security"}


def test_build_snapshot_of_a_dead_prometheus_states_every_kind() -> None:
    snapshot = build_snapshot(_ecommerce({"": REFUSED}))
    status = snapshot.source("prometheus")
    assert status is not None and status.state is SourceState.ERROR
    assert set(status.inputs) == {"graph", "requests", "latency", "security", "control_plane"}
    assert all(REFUSED in str(v) for k, v in status.inputs.items() if k != "control_plane")
    assert "not collected" in status.inputs["control_plane"]  # this bundle never asked for it
    report = diagnose(snapshot, ServiceRef("shop", "frontend"))
    assert report.status == "failing"


def test_checks_and_engine_name_the_same_inputs() -> None:
    from meshobs.checks.base import INPUTS as DECLARABLE

    assert set(DECLARABLE) == set(INPUTS)
