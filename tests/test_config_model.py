"""The typed configuration: every example we ship validates, the JSON Schema agrees with the
model, ranges are enforced, and the dicts collectors read keep their shape."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from meshobs.checks.base import Settings
from meshobs.cli.main import cli
from meshobs.config import ConfigError, load_config, validate
from meshobs.config_model import MeshobsConfig, Thresholds, json_schema

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config/meshobs.example.yaml"
SCHEMA_FILE = REPO / "config/meshobs.schema.json"


def uncommented(text: str, key: str) -> str:
    """The commented-out block ``# key:`` of an example file, uncommented."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"# {key}:"))
    block = [lines[start][2:]]
    for line in lines[start + 1:]:
        if not line.startswith("#   "):
            break
        block.append(line[2:])
    return "\n".join(block) + "\n"


def shipped_configs() -> list[tuple[str, Any]]:
    """Every meshobs.yaml we ship or show: the example (and its commented blocks), the ConfigMaps
    under config/, and the meshobs.yaml snippets in README.md and docs/."""
    text = EXAMPLE.read_text()
    out: list[tuple[str, Any]] = [("meshobs.example.yaml", yaml.safe_load(text))]
    out += [(f"meshobs.example.yaml#{key}", yaml.safe_load(uncommented(text, key)))
            for key in ("thresholds", "suppress")]
    for manifest in sorted((REPO / "config").glob("**/*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and "meshobs.yaml" in doc.get("data", {}):
                out.append((f"{manifest.name}:{doc['metadata']['name']}", yaml.safe_load(doc["data"]["meshobs.yaml"])))
    known = set(MeshobsConfig.model_fields)
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]:
        for n, block in enumerate(re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S)):
            # docs/findings/ examples hold several Kubernetes documents; a meshobs.yaml is one.
            for doc in yaml.safe_load_all(block):
                if isinstance(doc, dict) and set(doc) <= known:
                    out.append((f"{page.name}#{n}", doc))
    return out


SHIPPED = shipped_configs()


def test_the_examples_are_found() -> None:
    names = [n for n, _ in SHIPPED]
    assert any(n.startswith("cronjob.yaml:") for n in names) and any(n.startswith("README.md#") for n in names)
    assert any(n.startswith("drift.md#") for n in names)


@pytest.mark.parametrize("name, raw", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_every_shipped_example_validates(name: str, raw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_TOKEN", "t")
    validate(raw)
    jsonschema.validate(json.loads(json.dumps(raw, default=str)), json_schema())


def test_the_example_suppression_matches_a_real_finding(tmp_path: Path) -> None:
    """The example used to name a subject MSH0402 never has: copied as is, it must suppress."""
    cfg = tmp_path / "m.yaml"
    cfg.write_text(uncommented(EXAMPLE.read_text(), "suppress"))
    result = CliRunner().invoke(cli, ["diagnose", "--all", "--from", "demo:canary-errors", "--config", str(cfg),
                                      "-o", "json"])
    doc = json.loads(result.stdout)
    hidden = [f for s in doc["services"] for f in s.get("suppressed", [])]
    assert [f["code"] for f in hidden] == ["MSH0402"], doc


def test_the_schema_file_is_current() -> None:
    """config/meshobs.schema.json is what editors load: regenerate it with `meshobs config schema`."""
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("raw, key", [
    ({"thresholds": {"error_ratio": 5}}, "thresholds.error_ratio"),
    ({"thresholds": {"p99_ms": -1}}, "thresholds.p99_ms"),
    ({"thresholds": {"uptime_fraction": 0}}, "thresholds.uptime_fraction"),
    ({"thresholds": {"min_request_rate": -0.5}}, "thresholds.min_request_rate"),
    ({"thresholds": {"xds_stale_after": "0s"}}, "thresholds.xds_stale_after"),
    ({"sources": {"envoy": {"port": 70000}}}, "sources.envoy.port"),
    ({"sources": {"envoy": {"concurrency": 0}}}, "sources.envoy.concurrency"),
    ({"sources": {"jaeger": {"limit": 0}}}, "sources.jaeger.limit"),
    ({"sources": {"prometheus": {"timeout": "0s"}}}, "sources.prometheus.timeout"),
    ({"sources": {"prometheus": {"url": "http://p", "verify_tls": "yes"}}}, "sources.prometheus.verify_tls"),
    ({"sources": {"xray": {"max_attempts": 0}}}, "sources.xray.max_attempts"),
    ({"sources": {"jaeger": None}}, "sources.jaeger"),
    ({"sources": {"prometheus": {"url": None}}}, "sources.prometheus.url"),
    ({"window": 0}, "window"),
    ({"suppress": [{"code": "MSH9999"}]}, "suppress[0].code"),
    ({"suppress": [{"subject": "Edge a -> b"}]}, "suppress[0].code"),
    ({"drift": {"ignore": [{"kind": "VirtualService", "reason": " "}]}}, "drift.ignore[0].reason"),
    ({"drift": {"ignore": [{"reason": "matches everything"}]}}, "drift.ignore[0]"),
    ({"drift": {"fail_on": "sometimes"}}, "drift.fail_on"),
])
def test_out_of_range_is_refused_by_model_and_schema(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert err.value.problems[0].split(": ")[0] == key
    if key not in ("suppress[0].code", "drift.ignore[0]", "drift.ignore[0].reason", "thresholds.xds_stale_after",
                   "sources.prometheus.timeout", "window"):  # rules JSON Schema cannot say
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(raw, json_schema())


def test_every_problem_is_reported_each_naming_its_key() -> None:
    with pytest.raises(ConfigError) as err:
        validate({"thresholds": {"error_ratio": 5, "p99_ms": -1}, "sources": {"promethues": {}}})
    keys = [line.split(":")[0] for line in err.value.problems]
    assert keys == ["sources.promethues", "thresholds.error_ratio", "thresholds.p99_ms"]
    assert "did you mean prometheus" in err.value.problems[0]
    assert str(err.value).splitlines() == err.value.problems


def test_root_cert_warning_cannot_come_after_the_error() -> None:
    with pytest.raises(ConfigError, match=r"^thresholds: root_cert_warning_days"):
        validate({"thresholds": {"root_cert_warning_days": 3}})


def test_thresholds_the_code_uses_are_accepted_and_reach_settings() -> None:
    cfg = validate({"thresholds": {"uptime_fraction": 0.25, "min_request_rate": 2, "xds_stale_after": "15m"}})
    s = Settings.from_thresholds(cfg.typed.thresholds)
    assert (s.uptime_fraction, s.min_request_rate, s.xds_stale_after_s) == (0.25, 2.0, 900.0)
    assert Settings.from_thresholds(cfg.raw["thresholds"]) == s  # the dict call sites get the same


def test_settings_and_the_model_share_defaults() -> None:
    """Every threshold maps to a Settings field, and Settings() is the model's defaults."""
    # from_thresholds(None) and ({}) return Settings() without building the model: these must agree.
    assert Settings(**Thresholds().settings_values()) == Settings()  # type: ignore[arg-type]
    assert Settings.from_thresholds(None) == Settings.from_thresholds({}) == Settings()
    fields = set(Settings.__dataclass_fields__) - {"baseline", "explain_hops"}  # options, not thresholds
    assert set(Thresholds().settings_values()) == fields


def test_bad_thresholds_given_as_a_dict_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^thresholds\.error_ratio"):
        Settings.from_thresholds({"error_ratio": 2})


def test_collectors_defaults_match_the_model() -> None:
    from meshobs.collectors import aws, cloudwatch, jaeger, prometheus, xray

    m = MeshobsConfig.model_validate({"sources": {k: {} for k in ("prometheus", "jaeger", "envoy", "kubernetes",
                                                                  "cloudwatch", "xray", "appmesh")}}).sources
    assert m.prometheus and m.prometheus.timeout == prometheus.DEFAULT_TIMEOUT_S
    assert m.jaeger and m.jaeger.limit == jaeger.DEFAULT_LIMIT
    assert m.xray and m.xray.limit == xray.DEFAULT_LIMIT and m.xray.timeout == aws.DEFAULT_TIMEOUT_S
    assert m.xray.max_attempts == aws.DEFAULT_MAX_ATTEMPTS
    assert m.cloudwatch and m.cloudwatch.namespace == cloudwatch.DEFAULT_NAMESPACE
    # The same section built by the collectors from an empty section:
    empty = validate({"sources": {"prometheus": {}, "jaeger": {}, "envoy": {"discovery": "static"}}})
    p = prometheus.from_config(empty, [])
    j = jaeger.from_config(empty, [])
    assert p is not None and j is not None and m.envoy is not None
    assert (p.url, j.url, j.api) == (m.prometheus.url, m.jaeger.url, m.jaeger.api)
    from meshobs.collectors.envoy import from_config as envoy_from_config

    e = envoy_from_config(empty, [])
    assert e is not None and (e.timeout_s, e.concurrency) == (m.envoy.timeout, m.envoy.concurrency)


def test_raw_keeps_only_what_was_written_as_it_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Collectors read Config.section(...) dicts: absent keys stay absent (their defaults and
    "was it set?" logic depend on it), durations keep their text, paths resolve, ${VAR} expands."""
    monkeypatch.setenv("NS", "shop")
    f = tmp_path / "conf" / "m.yaml"
    f.parent.mkdir()
    f.write_text("window: 2m\nsources:\n  appmesh: {exported: [export], region: eu-west-1}\n"
                 "  kubernetes: {namespaces: '${NS}', manifests: ./deploy, kubeconfig: /abs/kc}\n"
                 "  prometheus: {url: 'http://p', timeout: 250ms}\n"
                 "time: 2026-11-20 12:00:00\n")
    cfg = load_config(str(f))
    assert cfg is not None
    assert cfg.raw["sources"]["appmesh"] == {"exported": [str(f.parent / "export")], "region": "eu-west-1"}
    assert cfg.sources["kubernetes"] == {"namespaces": ["shop"], "manifests": [str(f.parent / "deploy")],
                                         "kubeconfig": "/abs/kc"}
    assert cfg.sources["prometheus"] == {"url": "http://p", "timeout": "250ms"}
    assert cfg.typed.sources.prometheus is not None and cfg.typed.sources.prometheus.timeout == 0.25
    assert cfg.raw["time"] == "2026-11-20T12:00:00Z" and cfg.time is not None and cfg.time.hour == 12
    assert cfg.window_s == 120 and cfg.raw["window"] == "2m"
    json.dumps(cfg.raw)  # bundles record it


def test_a_config_built_by_hand_still_has_a_typed_view() -> None:
    from meshobs.config import Config

    assert Config(raw={"thresholds": {"p99_ms": 300}}).typed.thresholds.p99_ms == 300


def test_config_check_exit_codes(tmp_path: Path) -> None:
    good = CliRunner().invoke(cli, ["config", "check", str(EXAMPLE)])
    assert good.exit_code == 0, good.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds: {error_ratio: 5, p99_ms: -1}\n")
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert [ln.split(": ")[2] for ln in result.stderr.splitlines()] == ["thresholds.error_ratio", "thresholds.p99_ms"]
    assert CliRunner().invoke(cli, ["config", "check", str(tmp_path / "none.yaml")]).exit_code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [\n")
    assert CliRunner().invoke(cli, ["config", "check", str(broken)]).exit_code == 2


def test_config_check_contacts_nothing(tmp_path: Path) -> None:
    """A config naming unreachable sources is still valid: check does not collect."""
    f = tmp_path / "m.yaml"
    f.write_text("sources:\n  prometheus: {url: 'http://127.0.0.1:9', timeout: 1s}\n")
    result = CliRunner().invoke(cli, ["config", "check", str(f)])
    assert result.exit_code == 0 and "prometheus" in result.stdout


def test_config_schema_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["config", "schema"])
    assert result.exit_code == 0 and json.loads(result.stdout) == json_schema()


def test_loading_the_config_module_does_not_import_pydantic() -> None:
    """``meshobs <command> --help`` imports meshobs.config; pydantic waits for a real config."""
    code = "import sys, meshobs, meshobs.config, meshobs.cli.common; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
