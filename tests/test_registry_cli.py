"""The one registry, ``meshobs checks``, ``--check`` / ``--skip``, and a configuration-only run
in CI (``diagnose --all --config-only -f DIR``): selection, exit codes by --fail-on, suppressions
for analyzers as for checks."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import meshobs.checks
from meshobs.checks.base import Analyzer, Check
from meshobs.checks.registry import ALL, UnknownCheck, configuration_only, select
from meshobs.cli.main import cli
from tests.test_manifest_lines import MULTI

FIXED = MULTI.replace("subset: canary", "subset: stable")  # the same files, nothing wrong
WARNING_ONLY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ledger, namespace: payments}
spec:
  hosts: [ledger]
  http:
  - route:
    - destination: {host: ledger}
  - match: [{headers: {x-tier: {exact: gold}}}]
    route:
    - destination: {host: ledger}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_every_declared_check_and_analyzer_is_in_the_one_list() -> None:
    declared = set()
    for info in pkgutil.iter_modules(meshobs.checks.__path__):
        module = importlib.import_module(f"meshobs.checks.{info.name}")
        declared |= {v.id for v in vars(module).values() if isinstance(v, (Check, Analyzer))}
    assert declared == {c.id for c in ALL}


def test_select_by_id_glob_code_and_kind() -> None:
    ids = lambda checks: {c.id for c in checks}  # noqa: E731
    assert ids(select(["traffic.*"])) == {c.id for c in ALL if c.id.startswith("traffic.")}
    assert ids(select(["MSH0201"])) == {"config.unknown_subset"}
    assert ids(select(["analyzers"])) == {c.id for c in ALL if isinstance(c, Analyzer)}
    assert ids(select(["config.*"], ["analyzers"])) == {c.id for c in ALL
                                                       if c.id.startswith("config.") and isinstance(c, Check)}
    with pytest.raises(UnknownCheck, match=r"did you mean config\.unknown_subset"):
        select(["config.unknown_subet"])


def test_config_only_keeps_analyzers_and_checks_that_need_only_configuration() -> None:
    kept = configuration_only(ALL)
    assert {c.id for c in kept if isinstance(c, Check)} == {c.id for c in ALL
                                                           if isinstance(c, Check) and c.needs == ("config",)}
    assert all(c in kept for c in ALL if isinstance(c, Analyzer) and c.needs == ("config",))
    # The control plane's analyzers judge istiod, which a manifests-only run does not have.
    control_plane = ("proxy.istiod_ready", "proxy.istiod_pushes", "proxy.version_skew", "proxy.injector")
    assert not [c for c in kept if c.id in control_plane]


def test_meshobs_checks_lists_every_check_with_kind_codes_and_needs() -> None:
    result = run("checks", "-o", "json")
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {c.id for c in ALL}
    assert rows["config.host_not_found"]["kind"] == "analyzer"
    assert rows["config.host_not_found"]["reads"] == ["VirtualService", "ServiceEntry", "Service"]
    assert [c["code"] for c in rows["traffic.error_rate"]["codes"]] == ["MSH0401", "MSH0402", "MSH0408", "MSH0409"]
    assert rows["traffic.error_rate"]["needs"] == ["requests"]
    text = run("checks", "--check", "config.*")
    assert text.exit_code == 0 and "config.unreachable_rule" in text.stdout and "traffic." not in text.stdout
    assert run("checks", "--check", "nonsense.check").exit_code == 2


def test_diagnose_check_and_skip_select_the_checklist() -> None:
    only = json.loads(run("diagnose", "cart-service", "--from", "demo", "-o", "json", "--check", "traffic.*").stdout)
    assert {c["id"] for c in only["checks"]} == {c.id for c in ALL if c.id.startswith("traffic.")}
    assert {f["check"] for f in only["findings"]} <= {c.id for c in ALL if c.id.startswith("traffic.")}
    skipped = json.loads(run("diagnose", "cart-service", "--from", "demo", "-o", "json", "--skip", "analyzers").stdout)
    assert not {c["id"] for c in skipped["checks"]} & {c.id for c in ALL if isinstance(c, Analyzer)}
    bad = run("diagnose", "cart-service", "--from", "demo", "--check", "trafic.latency")
    assert bad.exit_code == 2 and "traffic.latency" in bad.output


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "payments.yaml").write_text(MULTI)
    (tmp_path / "fixed").mkdir()
    (tmp_path / "fixed" / "payments.yaml").write_text(FIXED)
    (tmp_path / "warning").mkdir()
    (tmp_path / "warning" / "vs.yaml").write_text(WARNING_ONLY)
    return tmp_path


def test_config_only_exit_codes_follow_fail_on(repo: Path) -> None:
    ci = ("diagnose", "--all", "--config-only", "-f")
    assert run(*ci, str(repo / "fixed")).exit_code == 0
    assert run(*ci, str(repo / "broken")).exit_code == 1
    assert run(*ci, str(repo / "broken"), "--fail-on", "never").exit_code == 0
    assert run(*ci, str(repo / "warning")).exit_code == 0  # an unreachable rule is a warning
    assert run(*ci, str(repo / "warning"), "--fail-on", "warning").exit_code == 1
    doc = json.loads(run(*ci, str(repo / "broken"), "-o", "json").stdout)
    # Only configuration was read and judged: no traffic check ran, no source but the manifests.
    ran = {c["id"] for s in doc["services"] for c in s["checks"]} | {a["id"] for a in doc["analyzers"]}
    assert ran == {c.id for c in configuration_only(ALL)}
    assert [s["name"] for s in doc["sources"]] == ["manifests"]


def test_config_only_reads_no_live_source_even_when_configured(repo: Path) -> None:
    config = repo / "meshobs.yaml"
    config.write_text("sources:\n  prometheus: {url: 'http://127.0.0.1:1'}\n  jaeger: {url: 'http://127.0.0.1:1'}\n")
    result = run("diagnose", "--all", "--config-only", "-f", str(repo / "fixed"), "--config", str(config),
                 "-o", "json")
    assert result.exit_code == 0, result.output
    assert [s["name"] for s in json.loads(result.stdout)["sources"]] == ["manifests"]
    nothing = run("diagnose", "--all", "--config-only", "--config", str(config))
    assert nothing.exit_code == 2 and "-f DIR" in nothing.output


def test_suppressions_apply_to_analyzer_findings(repo: Path) -> None:
    config = repo / "meshobs.yaml"
    config.write_text("suppress:\n- code: MSH0201\n  subject: VirtualService payments/*\n"
                      "  reason: canary subset lands with the next release\n")
    result = run("diagnose", "--all", "--config-only", "-f", str(repo / "broken"), "--config", str(config),
                 "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    ledger = next(s for s in doc["services"] if s["service"] == "ledger")
    assert ledger["findings"] == []
    assert [(f["code"], f["reason"]) for f in ledger["suppressed"]] == [
        ("MSH0201", "canary subset lands with the next release")]
    assert {a["id"]: a["status"] for a in doc["analyzers"]}["config.unknown_subset"] == "pass"


def test_bad_manifest_flags_are_usage_errors(repo: Path) -> None:
    missing = run("diagnose", "--all", "-f", str(repo / "nowhere"))
    assert missing.exit_code == 2 and "nowhere" in missing.output
    both = run("diagnose", "--all", "-f", str(repo / "fixed"), "--from", "demo")
    assert both.exit_code == 2
