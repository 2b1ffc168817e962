"""No data is not health: a window without samples, against a REAL Prometheus, says "could not
check" and exits 3; never "healthy" with exit 0 (issue 10, Build 5).

The Prometheus holds a mesh where web calls ledger at 8 req/s and batch calls archive at 0 req/s
(its counters exist and stay flat, as for an idle caller), backfilled with promtool. The
manifests beside it declare the four services, as the Kubernetes source would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meshobs.cli.main import cli
from meshobs.demo.prometheus import openmetrics
from meshobs.demo.promserver import PrometheusServer, prometheus_available, start_prometheus
from meshobs.demo.traffic import EdgeTraffic

pytestmark = pytest.mark.prometheus

T = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


def _edge(src: str, dst: str, rps: float) -> EdgeTraffic:
    return EdgeTraffic(source_namespace="books", source_workload=f"{src}-v1", source_service=src,
                       source_version="v1", destination_namespace="books", destination_service=dst,
                       destination_workload=f"{dst}-v1", destination_version="v1", rps=rps)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    if not prometheus_available():
        if os.environ.get("MESHOBS_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("prometheus/promtool not on PATH but MESHOBS_REQUIRE_PROMETHEUS=1")
        pytest.skip("prometheus/promtool not installed")
    traffic = [_edge("web", "ledger", 8.0), _edge("batch", "archive", 0.0)]
    with start_prometheus(openmetrics(traffic, T, 300.0), Path(tmp_path_factory.mktemp("prom"))) as srv:
        yield srv


SERVICES = "\n---\n".join(
    f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: books}}\n"
    f"spec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: 8080}}]\n"
    for name in ("web", "ledger", "batch", "archive"))


def diagnose(server: PrometheusServer, tmp_path: Path, at: datetime, *args: str) -> Result:
    (tmp_path / "services.yaml").write_text(SERVICES)
    config = tmp_path / "meshobs.yaml"
    config.write_text(f"time: '{at.isoformat()}'\nsources:\n  prometheus:\n    url: {server.url}\n"
                      f"  kubernetes:\n    manifests: [services.yaml]\n")
    return CliRunner().invoke(cli, ["diagnose", *args, "--config", str(config)])


def test_service_with_no_requests_in_the_window_could_not_be_checked(server: PrometheusServer,
                                                                     tmp_path: Path) -> None:
    result = diagnose(server, tmp_path, T, "archive", "-o", "json")
    assert result.exit_code == 3, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "unknown" and doc["findings"] == []
    checks = {c["id"]: c for c in doc["checks"]}
    for check_id in ("traffic.error_rate", "traffic.latency", "traffic.circuit_breaker"):
        assert checks[check_id]["status"] == "skipped"
        assert checks[check_id]["reason"].startswith("could not check: no requests")
    # Its configuration was judged (and is fine); its health was not.
    assert checks["config.host_not_found"]["status"] == "pass"


def test_the_same_window_judges_a_service_that_has_requests(server: PrometheusServer, tmp_path: Path) -> None:
    result = diagnose(server, tmp_path, T, "ledger", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "healthy"
    assert {c["id"]: c["status"] for c in doc["checks"]}["traffic.error_rate"] == "pass"


def test_a_window_after_the_traffic_stopped_is_unknown_never_healthy(server: PrometheusServer,
                                                                     tmp_path: Path) -> None:
    later = T + timedelta(hours=3)  # no sample of any series in the window
    result = diagnose(server, tmp_path, later, "ledger", "--no-color")
    assert result.exit_code == 3, result.output
    assert "Status: unknown" in result.stdout and "healthy" not in result.stdout
    assert "prometheus: no data" in result.stdout  # Prometheus answered, with nothing in the window
    every = diagnose(server, tmp_path, later, "--all", "--check", "traffic.*", "-o", "json")
    assert every.exit_code == 3, every.output
    assert json.loads(every.stdout)["status"] == "unknown"
