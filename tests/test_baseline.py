"""--baseline: p99 regressed against an earlier window (a bundle, or Prometheus at an offset)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from meshobs.cli.main import cli
from tests.support.loopback import LoopbackServer


def test_regression_against_an_earlier_bundle() -> None:
    """slow-db's database p99 is far above the healthy mesh's, though under the 1 s threshold."""
    args = ["diagnose", "database-service", "--from", "demo:slow-db", "-o", "json"]
    without = json.loads(CliRunner().invoke(cli, args).stdout)
    assert "MSH0404" not in {f["code"] for f in without["findings"]}
    with_baseline = json.loads(CliRunner().invoke(cli, [*args, "--baseline", "demo:healthy"]).stdout)
    (reg,) = [f for f in with_baseline["findings"] if f["code"] == "MSH0404"]
    assert reg["subject"] == "Service shop/database-service"
    assert reg["evidence"]["factor"] > 10
    assert reg["evidence"]["baseline_p99_ms"] < 100 < reg["evidence"]["p99_ms"]
    # The slow query hop explains the regression and ranks above it.
    hop = next(f for f in with_baseline["findings"] if f["code"] == "MSH0501")
    assert hop["rank"] < reg["rank"]


def test_duration_baseline_needs_a_live_prometheus() -> None:
    result = CliRunner().invoke(cli, ["diagnose", "cart-service", "--from", "demo", "--baseline", "1d"])
    assert result.exit_code == 2
    assert "sources.prometheus" in result.output


def test_duration_baseline_queries_prometheus_one_offset_earlier(tmp_path: Path) -> None:
    """A live run with --baseline 1d asks the same Prometheus again, at time minus one day."""
    empty = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})
    empty_range = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})
    with LoopbackServer() as srv:
        srv.route("/api/v1/query", body=empty)
        srv.route("/api/v1/query_range", body=empty_range)
        cfg = tmp_path / "m.yaml"
        cfg.write_text(f"time: '2026-11-20T12:00:00Z'\nsources:\n  prometheus:\n    url: {srv.url}\n")
        result = CliRunner().invoke(cli, ["diagnose", "--all", "--config", str(cfg), "--baseline", "1d"])
        # Prometheus answers with no samples: nothing could be checked, which is never healthy.
        assert result.exit_code == 3, result.output
        times = {p.split("time=")[1].split("&")[0] for _m, p, _h in srv.requests if "time=" in p}
    assert times == {"1795176000.0", "1795089600.0"}  # 2026-11-20T12:00Z, and 86400 s earlier
