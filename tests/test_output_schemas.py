"""Every JSON document meshobs writes validates against its versioned schema: diagnose (one
service and --all), graph, drift (with history, ignored, resolved) and snapshot manifests, on
every demo mesh."""

from __future__ import annotations

import json
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from meshobs import __version__
from meshobs.cli.main import cli
from meshobs.demo.catalog import list_demos
from meshobs.schemas import VERSIONS, load
from tests.test_drift_data import write_intended, write_live

DEMOS = [name for name, _ in list_demos()]


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def valid(doc: Any, name: str) -> Any:
    validator = jsonschema.Draft202012Validator(load(name))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}"[:300] for e in errors[:5]]
    return doc


def test_the_schemas_are_valid_json_schemas() -> None:
    for name in VERSIONS:
        jsonschema.Draft202012Validator.check_schema(load(name))
        assert load(name)["$id"].endswith(f":{name}:{VERSIONS[name]}")


@pytest.mark.parametrize("demo", DEMOS)
def test_diagnose_and_graph_outputs_validate(demo: str) -> None:
    mesh = valid(run("diagnose", "--all", "--from", f"demo:{demo}", "-o", "json"), "diagnose")
    assert mesh["scope"] == "mesh" and mesh["schema_version"] == VERSIONS["diagnose"]
    assert mesh["meshobs_version"] == __version__ and mesh["origin"] == f"demo:{demo}"
    assert mesh["window_s"] > 0 and datetime.fromisoformat(mesh["time"]).tzinfo is not None
    worst = max(mesh["services"], key=lambda s: len(s["findings"]))
    one = valid(run("diagnose", worst["service"], "-n", worst["namespace"], "--from", f"demo:{demo}", "-o", "json"),
                "diagnose")
    assert one["scope"] == "service" and one["window_s"] == mesh["window_s"] and one["time"] == mesh["time"]
    graph = valid(run("graph", "--from", f"demo:{demo}", "-o", "json"), "graph")
    assert graph["schema_version"] == VERSIONS["graph"] and graph["edges"]


def test_caused_by_and_explains_are_first_class() -> None:
    doc = valid(run("diagnose", "cart-service", "--from", "demo", "-o", "json"), "diagnose")
    cause, *rest = doc["findings"]
    assert cause["rank"] == 1 and cause["explains"] and "explains" not in cause["evidence"]
    symptom = next(f for f in rest if f["caused_by"])
    assert f"{cause['code']} {cause['subject']}" in symptom["caused_by"]
    assert cause["service"] == "shop/database-service" and "service" not in cause["evidence"]


def test_suppressed_findings_validate(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("suppress:\n  - {code: 'MSH04*', reason: accepted, until: '2030-01-01T00:00:00Z'}\n")
    doc = valid(run("diagnose", "cart-service", "--from", "demo", "--config", str(cfg), "-o", "json"), "diagnose")
    assert doc["suppressed"] and all(s["reason"] == "accepted" for s in doc["suppressed"])


def test_the_schema_refuses_what_it_does_not_document() -> None:
    """A key added to an output without the schema fails the tests (the schema is the contract)."""
    doc = run("diagnose", "cart-service", "--from", "demo", "-o", "json")
    doc["findings"][0]["surprise"] = 1
    with pytest.raises(AssertionError):
        valid(doc, "diagnose")
    graph = run("graph", "--from", "demo", "-o", "json")
    del graph["window_s"]
    with pytest.raises(AssertionError):
        valid(graph, "graph")


def test_drift_outputs_validate_through_a_history(tmp_path: Path) -> None:
    git = write_intended(tmp_path / "git")
    state = tmp_path / "state"

    def drift(edit: str | None, *extra: str) -> Any:
        live = write_live(tmp_path / f"live-{edit}", edit)
        cfg = tmp_path / f"m-{edit}.yaml"
        cfg.write_text(json.dumps({"sources": {"kubernetes": {"manifests": [str(live)]}},
                                   "drift": {"ignore": [{"path": "labels.*", "reason": "set by a controller"}]}}))
        return valid(run("drift", "--intended", str(git), "--config", str(cfg), "--state-dir", str(state),
                         "-o", "json", *extra), "drift")

    first = drift("weight")
    assert first["drift"] and first["drift"][0]["status"] == "new"
    second = drift(None)
    assert second["resolved"] and second["schema_version"] == VERSIONS["drift"]


def test_drift_of_the_demo_with_effective_layer_validates(tmp_path: Path) -> None:
    intended = tmp_path / "git"
    CliRunner().invoke(cli, ["demo", "export", "weight-drift", str(intended)], catch_exceptions=False)
    doc = valid(run("drift", "--intended", str(intended), "--from", "demo:weight-drift", "-o", "json"), "drift")
    assert any(d["layers"] == "live-effective" for d in doc["drift"])
    assert {d["code"] for d in doc["drift"]} >= {"MSH0203", "MSH0207"}  # diagnose's codes


def test_an_unknown_run_validates() -> None:
    result = CliRunner().invoke(cli, ["diagnose", "--all", "--from", "demo:empty-window", "-o", "json"])
    assert result.exit_code == 3 and valid(json.loads(result.stdout), "diagnose")["status"] == "unknown"


def _manifest(path: Path) -> Any:
    with tarfile.open(path) as tar:
        member = tar.extractfile("bundle.json")
        assert member is not None
        return json.loads(member.read())


@pytest.mark.parametrize("demo", DEMOS)
def test_shipped_demo_bundle_manifests_validate(demo: str) -> None:
    from importlib import resources

    with resources.as_file(resources.files("meshobs.demo").joinpath("bundles", f"{demo}.tar.gz")) as path:
        valid(_manifest(path), "bundle")


def test_a_written_snapshot_manifest_validates(tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    result = CliRunner().invoke(cli, ["snapshot", "--from", "demo:migration", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = valid(_manifest(out), "bundle")
    assert doc["schema_version"] == VERSIONS["bundle"]
