"""No data is never health (issue 10, Build 5): the run's status and exit code when a source left
a gap, and what the status line says it could not check.

    unknown  (exit 3)  nothing vouches for the service: its traffic checks ran into no data
    partial  (exit 0)  judged, nothing found, but a configured source left part of the data out
    degraded / failing findings, whatever could not be checked (the line names that too)
    healthy            judged, nothing found, nothing missing
"""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from meshobs.bundle import Bundle
from meshobs.checks.base import Settings
from meshobs.cli.main import cli
from meshobs.collect import build_snapshot
from meshobs.engine import diagnose, diagnose_all
from meshobs.engine.report import CheckResult, gaps, status_of, unchecked_line
from meshobs.model import MeshSnapshot, ServiceRef
from tests.support.scenarios import bundle, snapshot

TRIP = ServiceRef("travel", "trip-planner")


def _without(source_bundle: Bundle, kind: str, keys: str) -> MeshSnapshot:
    """The bundle's snapshot with the answers of ``kind`` whose key starts with ``keys`` empty."""
    changed = copy.deepcopy(source_bundle)
    for raw in changed.sources:
        if raw.kind != kind:
            continue
        for p in raw.payloads:
            if p.key.startswith(keys):
                p.body = json.dumps({"resultType": "vector", "result": []})
    return build_snapshot(changed, origin="test")


def _status_line(args: list[str]) -> tuple[int, str]:
    """The exit code and the status line (unwrapped: text output wraps at 80 columns)."""
    result = CliRunner().invoke(cli, ["diagnose", "--no-color", *args])
    text = result.stdout.strip()
    return result.exit_code, " ".join(text[text.rindex("Status: "):].split())


def test_an_empty_window_is_unknown_with_exit_3_never_healthy() -> None:
    code, line = _status_line(["--from", "demo:empty-window", "forecast-api"])
    assert code == 3 and line.startswith("Status: unknown")
    assert "could not check: " in line and "traffic.error_rate" in line and "traffic.latency" in line
    code, line = _status_line(["--from", "demo:empty-window", "--all"])
    assert code == 3 and line.startswith("Status: unknown")
    report = diagnose(snapshot("empty-window"), ServiceRef("forecast", "forecast-api"), Settings())
    checks = {c.id: c for c in report.checks}
    for check_id in ("traffic.error_rate", "traffic.latency"):
        assert checks[check_id].status == "skipped" and checks[check_id].missing_data
        assert "prometheus answered with no data" in checks[check_id].reason
    # The proxies and the configuration were judged, and still they do not vouch for it.
    assert checks["proxy.not_ready"].status == "pass"


def test_the_same_mesh_with_its_samples_is_healthy() -> None:
    code, line = _status_line(["--from", "demo:canary-within-slo", "trip-planner"])
    assert (code, line) == (0, "Status: healthy")


def test_latency_missing_while_requests_arrived_is_partial_and_says_what() -> None:
    snap = _without(bundle("canary-within-slo"), "prometheus", "query:latency")
    report = diagnose(snap, TRIP, Settings())
    assert report.status == "partial" and not [f for f in report.findings if f.severity.weight > 1]
    [latency] = [c for c in report.checks if c.id == "traffic.latency"]
    assert latency.status == "skipped" and latency.missing_data
    assert {c.id for c in gaps(report.checks)} == {"traffic.latency"}
    assert "traffic.latency (no latency metrics" in unchecked_line(report.checks)
    # The error rate was judged: the run is partial, not unknown.
    assert {c.id: c.status for c in report.checks}["traffic.error_rate"] == "pass"
    assert diagnose_all(snap, Settings()).status == "partial"


def test_a_source_not_configured_is_no_gap() -> None:
    """Without Jaeger in the set-up, the trace check is skipped, and that is not a gap."""
    changed = copy.deepcopy(bundle("canary-within-slo"))
    changed.sources = [s for s in changed.sources if s.kind != "jaeger"]
    report = diagnose(build_snapshot(changed, origin="test"), TRIP, Settings())
    [traces] = [c for c in report.checks if c.id == "traces.slow_hop"]
    assert traces.status == "skipped" and not traces.missing_data and not traces.could_not_check
    assert report.status == "healthy"


def test_a_configured_source_that_answered_nothing_is_a_gap() -> None:
    changed = copy.deepcopy(bundle("canary-within-slo"))
    for raw in changed.sources:
        if raw.kind == "jaeger":
            for p in raw.payloads:
                if p.body and p.body.lstrip().startswith("{"):
                    p.body = json.dumps({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": None})
    report = diagnose(build_snapshot(changed, origin="test"), TRIP, Settings())
    [traces] = [c for c in report.checks if c.id == "traces.slow_hop"]
    assert traces.status == "skipped" and traces.missing_data
    assert report.status == "partial"


def _result(check_id: str, status: str, *, cnc: bool = False, gap: bool = False,
            reason: str = "") -> CheckResult:
    from meshobs.catalogue import Category

    return CheckResult(check_id, Category.TRAFFIC, status, reason, could_not_check=cnc, missing_data=gap)


@pytest.mark.parametrize(("results", "judged", "expected"), [
    ([_result("traffic.error_rate", "pass")], True, "healthy"),
    ([_result("traffic.error_rate", "pass"), _result("traffic.latency", "skipped", cnc=True, gap=True)],
     True, "partial"),
    # A run-time skip (nobody calls a top-level service) is no gap.
    ([_result("traffic.error_rate", "pass"), _result("traffic.latency", "skipped", cnc=True)], True, "healthy"),
    ([_result("traffic.error_rate", "skipped", cnc=True, gap=True)], False, "unknown"),
])
def test_status_words(results: list[CheckResult], judged: bool, expected: str) -> None:
    assert status_of([], True, judged, bool(gaps(results))) == expected
    assert status_of([], False, judged, bool(gaps(results))) == "unknown"


def test_findings_decide_before_gaps_and_the_line_still_names_the_gap() -> None:
    from meshobs.checks.base import finding
    from meshobs.render.text import _summary

    warn = finding("MSH0103", "proxy.restarting", "Pod forecast/x", pod="forecast/x", container="app",
                   restarts=3)
    gap = _result("traffic.latency", "skipped", cnc=True, gap=True,
                  reason="no latency metrics: prometheus answered with no data (see Sources)")
    assert status_of([warn], True, False, True) == "degraded"
    line = _summary("degraded", (warn,), lambda text, _key: text, [gap])
    assert line == ("Status: degraded (1 warning; could not check: traffic.latency "
                    "(no latency metrics: prometheus answered with no data))")


@pytest.mark.parametrize(("ns", "pod", "ambient"), [
    ({"istio.io/dataplane-mode": "ambient"}, {}, True),
    ({"istio.io/dataplane-mode": "ambient"}, {"istio.io/dataplane-mode": "none"}, False),
    ({}, {"istio.io/dataplane-mode": "ambient"}, True),
    ({"istio-injection": "enabled"}, {}, False),
])
def test_the_ambient_data_plane_is_read_from_pod_then_namespace(ns: dict[str, str], pod: dict[str, str],
                                                                ambient: bool) -> None:
    from meshobs.collectors.k8s_objects import pod_from_object

    obj = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "query-api-0", "namespace": "analytics", "labels": {"app": "query-api", **pod}},
           "spec": {"containers": [{"name": "query-api"}]}, "status": {"phase": "Running"}}
    parsed, _mesh = pod_from_object(obj, {"analytics": ns})
    assert parsed.ambient is ambient and not parsed.has_sidecar


def test_restart_history_says_when_the_last_run_ended() -> None:
    from datetime import UTC, datetime

    from meshobs.collectors.k8s_objects import restart_history

    statuses = [
        {"name": "claims-api", "restartCount": 1, "state": {"running": {"startedAt": "2026-11-17T14:24:02Z"}},
         "lastState": {"terminated": {"finishedAt": "2026-11-17T14:24:00Z", "reason": "OOMKilled", "exitCode": 137}}},
        {"name": "istio-proxy", "restartCount": 0, "state": {"running": {"startedAt": "2026-11-11T08:00:00Z"}}},
        {"name": "worker", "restartCount": 7, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
    ]
    app, worker = restart_history(statuses, "istio-proxy")
    assert (app.container, app.count, app.reason, app.exit_code) == ("claims-api", 1, "OOMKilled", 137)
    assert app.last_at == datetime(2026, 11, 17, 14, 24, tzinfo=UTC) and not app.sidecar
    assert (worker.waiting, worker.last_at) == ("CrashLoopBackOff", None)


def test_a_tcp_only_service_is_judged_by_its_connections() -> None:
    """ambient-namespace's warehouse: ztunnel reports TCP connections only (no waypoint for it);
    no request can fail there, and connections flowed: judged, not unknown."""
    report = diagnose(snapshot("ambient-namespace"), ServiceRef("analytics", "warehouse"), Settings())
    checks = {c.id: c for c in report.checks}
    assert checks["traffic.error_rate"].status == "pass" and report.status == "healthy"


def test_too_few_requests_is_said_in_requests_against_the_threshold() -> None:
    settings = Settings(min_request_rate=100.0)
    report = diagnose(snapshot("canary-within-slo"), TRIP, settings)
    [error_rate] = [c for c in report.checks if c.id == "traffic.error_rate"]
    assert error_rate.status == "skipped" and error_rate.could_not_check and not error_rate.missing_data
    assert "13200 requests to or from travel/trip-planner in the 5m window, need at least 30000 " \
           "(thresholds.min_request_rate 100 req/s)" in error_rate.reason
    # Its latency was judged: a run-time skip of one check is said, and the service vouched for.
    assert {c.id: c.status for c in report.checks}["traffic.latency"] == "pass"


def test_ambient_gateway_and_control_plane_services_in_healthy_meshes() -> None:
    """Each judged by its own rules: the waypoint by its proxy (its requests are the services':
    nothing found reads "clean", never "healthy"), the ingress gateway by its calls into the mesh
    (its callers are outside it); istiod, whose traffic no proxy reports, stays unknown in the
    per-service lines and does not make the run partial."""
    mesh = diagnose_all(snapshot("ambient-namespace"), Settings())
    status = {str(r.service): r.status for r in mesh.reports}
    assert status["analytics/waypoint"] == "clean" and mesh.status == "healthy"
    waypoint = {c.id: c for r in mesh.reports if str(r.service) == "analytics/waypoint" for c in r.checks}
    assert waypoint["traffic.error_rate"].reason.startswith("not applicable")
    gateway = diagnose(snapshot("canary-within-slo"), ServiceRef("istio-system", "istio-ingressgateway"),
                       Settings())
    checks = {c.id: c for c in gateway.checks}
    assert checks["traffic.latency"].reason.startswith("not applicable")
    assert checks["traffic.error_rate"].status == "pass" and gateway.status == "healthy"
