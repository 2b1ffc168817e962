"""``meshobs drift`` refuses to run half-configured: a CronJob that lost its config or its
intended layer must fail (exit 2), not report the demo or "no drift" forever."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meshobs.cli.main import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def intended(tmp_path: Path) -> Path:
    out = tmp_path / "git"
    assert run("demo", "export", "weight-drift", str(out)).exit_code == 0
    return out


def test_no_config_is_a_usage_error_not_the_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 intended: Path) -> None:
    monkeypatch.delenv("MESHOBS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    result = run("drift", "--intended", str(intended))
    assert result.exit_code == 2 and "--from demo" in result.stderr
    assert run("drift", "--intended", str(intended), "--from", "demo:weight-drift").exit_code == 1  # explicit


def test_no_intended_layer_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"sources:\n  kubernetes: {{manifests: [{tmp_path}]}}\n")
    assert run("drift", "--config", str(cfg)).exit_code == 2
    assert run("drift", "--from", "demo:weight-drift").exit_code == 2


def test_no_intended_when_asked_for_compares_live_and_effective() -> None:
    result = run("drift", "--from", "demo:weight-drift", "--no-intended", "-o", "json")
    assert result.exit_code == 1  # the demo's live-effective weight drift
    assert '"checked": [\n    "live-effective"\n  ]' in result.stdout


def test_no_intended_and_an_intended_layer_conflict(intended: Path) -> None:
    assert run("drift", "--from", "demo:weight-drift", "--intended", str(intended), "--no-intended").exit_code == 2
