"""No data is not health, per service: a service no check of its requests applies to (a
waypoint, whose requests are reported as the services'; an ingress gateway when only checks of
what its callers see run) is "clean" (nothing found in what was checked, traffic not checked),
never "healthy", in diagnose --all, diagnose SERVICE, graph --health and the dashboard's data;
every service whose traffic was judged keeps its status."""

from __future__ import annotations

import json

from click.testing import CliRunner

from meshobs.cli.main import cli
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import diagnose, diagnose_all
from meshobs.model import ServiceRef
from meshobs.tui.status import health_counts
from meshobs.tui.viewmodel import overview_rows

WAYPOINT = "analytics/waypoint"
INGRESS = "istio-system/istio-ingressgateway"
VOUCHING = ("traffic.error_rate", "traffic.latency", "traffic.no_route")


def _run(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, [*args, "-o", "json"])
    return result.exit_code, json.loads(result.stdout)


def _statuses(doc: dict[str, object]) -> dict[str, str]:
    return {f"{s['namespace']}/{s['service']}": s["status"] for s in doc["services"]}  # type: ignore[attr-defined, index]


def test_a_waypoint_no_traffic_check_applies_to_is_clean_not_healthy() -> None:
    code, doc = _run("diagnose", "--all", "--from", "demo:ambient-namespace")
    assert code == 0
    statuses = _statuses(doc)
    assert statuses.pop(WAYPOINT) == "clean"
    # The waypoint's checks of its requests did not apply; the others were judged, as before.
    (waypoint,) = [s for s in doc["services"] if s["service"] == "waypoint"]  # type: ignore[attr-defined]
    lines = {c["id"]: c for c in waypoint["checks"]}
    assert all(lines[c]["status"] == "skipped" and lines[c]["reason"].startswith("not applicable") for c in VOUCHING)
    assert statuses == {"analytics/query-api": "healthy", "analytics/warehouse": "healthy",
                        "web/dashboard": "healthy", "istio-system/istiod": "unknown"}
    # The mesh's requests were judged elsewhere: the mesh is healthy.
    assert doc["status"] == "healthy"
    code, one = _run("diagnose", WAYPOINT, "--from", "demo:ambient-namespace")
    assert code == 0 and one["status"] == "clean"
    text = CliRunner().invoke(cli, ["diagnose", WAYPOINT, "--from", "demo:ambient-namespace", "--no-color"])
    assert "Status: clean" in text.stdout and "healthy" not in text.stdout
    graph = json.loads(CliRunner().invoke(cli, ["graph", "--from", "demo:ambient-namespace", "-o", "json"]).stdout)
    health = {f"{s['namespace']}/{s['name']}": s["health"] for s in graph["services"]}
    assert health[WAYPOINT] == "clean" and health["analytics/warehouse"] == "healthy"


def test_an_ingress_gateway_with_only_callers_checks_selected_is_clean() -> None:
    """traffic.latency judges what callers see: not an ingress gateway's (its callers are outside
    the mesh). Selected alone beside the configuration, it judges every other service; the
    gateway's requests are then not judged. With every check, the same gateway is healthy."""
    skip = ["--skip", "traffic.error_rate", "--skip", "traffic.no_route"]
    code, doc = _run("diagnose", "--all", "--from", "demo:healthy", *skip)
    assert code == 0
    statuses = _statuses(doc)
    assert statuses.pop(INGRESS) == "clean"
    assert set(statuses.values()) == {"healthy"} and doc["status"] == "healthy"
    _code, whole = _run("diagnose", "--all", "--from", "demo:healthy")
    assert set(_statuses(whole).values()) == {"healthy"}


def test_the_rule_is_the_engines_one_per_service() -> None:
    snap = build_snapshot(load_demo("ambient-namespace"))
    every = {str(r.service): r.status for r in diagnose_all(snap).reports}
    assert every[WAYPOINT] == "clean"
    assert diagnose(snap, ServiceRef("analytics", "waypoint")).status == "clean"
    assert diagnose(snap, ServiceRef("analytics", "warehouse")).status == every["analytics/warehouse"] == "healthy"


def test_the_dashboard_counts_a_clean_service_apart() -> None:
    snap = build_snapshot(load_demo("ambient-namespace"))
    rows = overview_rows(snap, diagnose_all(snap))
    health = {str(r.ref): r.health for r in rows}
    assert health[WAYPOINT] == "clean" and health["analytics/warehouse"] == "healthy"
    assert health_counts(rows) == "0 failing · 1 clean · 3 healthy · 1 unknown"
