"""``meshobs diagnose`` through click's CliRunner: exit codes, outputs, golden files.

Regenerate the golden files with ``MESHOBS_UPDATE_GOLDEN=1 pytest tests/test_diagnose_cli.py``
and review the diff: they are the reference for what a person sees.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meshobs.cli.main import cli
from meshobs.engine import checklist

GOLDEN = Path(__file__).parent / "golden"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["diagnose", *args], catch_exceptions=False)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MESHOBS_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with MESHOBS_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_golden_text_of_the_default_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # not a terminal: 80 columns
    result = run("cart-service", "--no-color")
    assert result.exit_code == 1
    assert "\x1b[" not in result.stdout
    check_golden("diagnose-cart-service.txt", result.stdout)
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_text_wraps_at_the_width_and_never_cuts_names(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = "outbound|8080||database-service.shop.svc.cluster.local"
    for columns in ("60", "100", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        out = run("cart-service", "--no-color").stdout
        assert out.count(cluster) >= 2 and "\u2026" not in out
        assert all(len(line) <= int(columns) or " " not in line.strip() for line in out.splitlines())


def test_golden_json_of_the_default_demo() -> None:
    result = run("cart-service", "-o", "json")
    assert result.exit_code == 1
    check_golden("diagnose-cart-service.json", result.stdout)


def test_json_shape_is_exactly_the_documented_one() -> None:
    data = json.loads(run("cart-service", "--from", "demo:ecommerce", "-o", "json").stdout)
    assert set(data) == {"schema_version", "meshobs_version", "scope", "time", "window_s", "origin",
                         "service", "namespace", "status", "findings", "checks", "sources", "suppressed",
                         "timeline"}
    assert set(data["timeline"]) == {"checked", "reason", "start", "end", "resolution_s", "lookback_s", "covers",
                                     "onsets", "order", "changes", "unchecked"}
    assert (data["scope"], data["time"], data["window_s"], data["origin"]) == (
        "service", "2026-11-20T12:00:00.000000Z", 300.0, "demo:ecommerce")
    assert (data["service"], data["namespace"], data["status"]) == ("cart-service", "shop", "failing")
    for f in data["findings"]:
        assert set(f) == {"code", "check", "category", "severity", "subject", "service", "message", "evidence",
                          "hint", "doc", "rank", "caused_by", "explains", "location"}
    assert [f["rank"] for f in data["findings"]] == list(range(1, len(data["findings"]) + 1))
    assert data["findings"][0]["subject"] == "Service shop/database-service"
    assert all(set(c) == {"id", "category", "status", "reason"} for c in data["checks"])
    assert all(set(s) == {"name", "status", "error"} for s in data["sources"])


def test_exit_0_when_healthy() -> None:
    result = run("cart-service", "--from", "demo:healthy")
    assert result.exit_code == 0, result.output


def test_fail_on_controls_exit_1() -> None:
    # slow-db has warnings only: not a failure by default, a failure with --fail-on warning.
    assert run("frontend", "--from", "demo:slow-db").exit_code == 0
    assert run("frontend", "--from", "demo:slow-db", "--fail-on", "warning").exit_code == 1
    assert run("cart-service", "--from", "demo:ecommerce", "--fail-on", "never").exit_code == 0


def test_exit_2_unknown_service_suggests_close_names() -> None:
    result = run("cart-servce", "--from", "demo")
    assert result.exit_code == 2
    assert "cart-service" in result.stderr


@pytest.mark.parametrize("typed", [["default/cart-service"], ["cart-service.default"],
                                   ["cart-service.default.svc.cluster.local"], ["cart-service", "-n", "default"]])
def test_exit_2_service_in_another_namespace_names_where_it_is(typed: list[str]) -> None:
    """However the namespace is given (in the name, or --namespace), a service that exists only
    elsewhere is pointed at, not answered with 'unknown service' and a list of names."""
    result = run(*typed, "--from", "demo")
    assert result.exit_code == 2
    assert "exists in shop" in result.stderr
    assert ("shop/cart-service" if len(typed) == 1 else "--namespace shop") in result.stderr


def test_exit_2_usage_and_config_errors(tmp_path: Path) -> None:
    assert run("--from", "demo").exit_code == 2  # neither SERVICE nor --all
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds:\n  error_ratio: lots\n")
    result = run("cart-service", "--config", str(bad))
    assert result.exit_code == 2 and "thresholds.error_ratio" in result.stderr
    assert run("cart-service", "--from", "demo", "-o", "yaml").exit_code == 2


def test_exit_3_when_no_source_answers(tmp_path: Path) -> None:
    cfg = tmp_path / "dead.yaml"
    cfg.write_text("sources:\n  prometheus:\n    url: http://127.0.0.1:1\n    timeout: 2s\n")
    result = run("cart-service", "--config", str(cfg), "-o", "json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["status"] == "unknown"
    assert data["sources"][0]["status"] == "error" and "127.0.0.1:1" in data["sources"][0]["error"]
    reasons = {c["id"]: c["reason"] for c in data["checks"]}
    # The skip reason names the failed source; its error is told once, under sources.
    assert reasons["traffic.error_rate"] == "no request metrics: prometheus failed (see Sources)"


def test_exit_3_when_prometheus_is_unreachable_and_only_its_own_warning_remains(tmp_path: Path) -> None:
    # The manifests answer (the services are known, their configuration judged), Prometheus
    # refuses the connection: nothing vouches for traffic, and MSH0002 (a source could not be
    # read) is about meshobs's sources, not a verdict on the service. Documented: exit 3.
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: ledger, namespace: vault}\n"
        "spec:\n  selector: {app: ledger}\n  ports: [{name: http, port: 8080}]\n")
    cfg = tmp_path / "meshobs.yaml"
    cfg.write_text("sources:\n  prometheus:\n    url: http://127.0.0.1:1\n    timeout: 2s\n"
                   "  kubernetes:\n    manifests: [svc.yaml]\n")
    for args in (["vault/ledger"], ["--all"]):
        result = run(*args, "--config", str(cfg), "-o", "json")
        assert result.exit_code == 3, result.output
        data = json.loads(result.stdout)
        assert data["status"] == "unknown"
        codes = [f["code"] for f in data["findings"]]
        assert codes == ["MSH0002"]  # still reported: it says why nothing could be checked
        statuses = {s["name"]: s["status"] for s in data["sources"]}
        assert statuses["prometheus"] == "error" and statuses["manifests"] == "ok"
    # A warning about the sources is still a warning for --fail-on warning, but "could not
    # check" comes first: the exit code says nothing was judged.
    assert run("vault/ledger", "--config", str(cfg), "--fail-on", "warning").exit_code == 3


def test_a_failed_source_beside_judged_traffic_keeps_the_verdict() -> None:
    # The counterpart: traffic judged, one source failed (its MSH0002 warning) -> not unknown.
    from meshobs.checks.base import finding
    from meshobs.engine.report import status_of

    warn = finding("MSH0002", "sources", "Source jaeger", source="jaeger", reason="refused")
    assert status_of([warn], True, judged=True) == "degraded"
    assert status_of([warn], True, judged=False) == "unknown"


def test_help_lists_exit_codes() -> None:
    out = run("--help").stdout
    for code in ("0 ", "1 ", "2 ", "3 "):
        assert f"  {code}" in out


def test_configuration_only_run(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    assert CliRunner().invoke(cli, ["demo", "export", "weight-drift", str(manifests)]).exit_code == 0
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"sources:\n  kubernetes:\n    manifests: [{manifests}]\n")
    data = json.loads(run("product-service", "--config", str(cfg), "-o", "json").stdout)
    status = {c["id"]: c["status"] for c in data["checks"]}
    ran = {i for i, s in status.items() if s != "skipped"}
    assert ran and all(i.startswith(("config.", "certs.", "appmesh.")) for i in ran)
    assert status["traffic.error_rate"] == "skipped" and status["proxy.not_ready"] == "skipped"
    assert data["status"] != "unknown"


def test_suppression_from_config_changes_the_exit_code(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text('suppress:\n  - {code: "MSH04*", reason: "known incident", until: "2026-12-01T00:00:00Z"}\n')
    result = run("cart-service", "--from", "demo:ecommerce", "--config", str(cfg), "-o", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert [f["code"] for f in data["findings"] if f["severity"] != "info"] == []
    assert {s["code"] for s in data["suppressed"]} == {"MSH0401", "MSH0402"}
    cfg.write_text('suppress:\n  - {code: "MSH04*", reason: "old", until: "2026-01-01T00:00:00Z"}\n')
    result = run("cart-service", "--from", "demo:ecommerce", "--config", str(cfg), "-o", "json")
    assert result.exit_code == 1 and json.loads(result.stdout)["suppressed"] == []


def test_thresholds_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "t.yaml"
    cfg.write_text("thresholds:\n  error_ratio: 0.9\n")
    data = json.loads(run("product-service", "--from", "demo:canary-errors", "--config", str(cfg),
                          "-o", "json").stdout)
    assert not [f for f in data["findings"] if f["code"] == "MSH0401"]


def test_junit_has_one_testcase_per_check() -> None:
    result = run("cart-service", "--from", "demo:ecommerce", "-o", "junit")
    suite = ET.fromstring(result.stdout).find("testsuite")
    assert suite is not None
    own = [c for c in suite.findall("testcase") if c.get("classname") != "downstream"]
    assert [c.get("name") for c in own] == [c.id for c in checklist()]
    failed = {c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None}
    assert "traffic.error_rate" in failed and "traffic.endpoints database-service" not in failed
    assert any(n and n.startswith("traffic.endpoints shop/database-service") for n in failed)


def test_markdown_lists_checks_and_ranked_findings() -> None:
    out = run("cart-service", "--from", "demo:ecommerce", "-o", "markdown").stdout
    assert out.startswith("# Diagnosis of `shop/cart-service`: failing")
    assert "1. **MSH0406**" in out and "| `traffic.error_rate` |" in out


def test_all_services(tmp_path: Path) -> None:
    result = run("--all", "--from", "demo:ecommerce", "-o", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    services = {s["service"]: s["status"] for s in data["services"]}
    assert services["database-service"] == "failing" and services["product-service"] == "healthy"
    assert run("--all", "--from", "demo:healthy").exit_code == 0


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshobs.cli import diagnose as mod

    monkeypatch.setattr(mod.sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert mod.use_color(False) is True
    assert mod.use_color(True) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert mod.use_color(False) is False


def test_a_live_run_refuses_an_unknown_check_before_asking_any_source(tmp_path: Path) -> None:
    """The default checklist is looked up while the sources answer; a --check or --skip the
    registry does not know is still a usage error before the first request."""
    from meshobs.demo.httpserver import LoopbackHTTPServer, Response

    with LoopbackHTTPServer(lambda request: Response(404, "")) as server:
        config = tmp_path / "meshobs.yaml"
        config.write_text(f"sources:\n  prometheus:\n    url: {server.url}\n")
        for option in ("--check", "--skip"):
            bad = run("svc", "--config", str(config), option, "trafic.latency")
            assert bad.exit_code == 2 and "traffic.latency" in bad.output
        assert server.requests == []
        asked = run("svc", "--config", str(config), "-o", "json")
        assert asked.exit_code == 3 and server.requests  # asked, and nothing answered
