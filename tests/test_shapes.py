"""A malformed mesh resource costs that resource: ``hosts: 8080`` (an int) used to sink
diagnose, graph and drift with TypeError; now the resource is left out, named with its field
(MSH0003), and everything else is diagnosed and compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from meshobs.cli.main import cli

GOOD_VS = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "ledger", "namespace": "payments"},
           "spec": {"hosts": ["ledger"], "http": [{"route": [{"destination": {"host": "ledger", "subset": "v1"}}]}]}}
DR = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
      "metadata": {"name": "ledger", "namespace": "payments"},
      "spec": {"host": "ledger", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}
SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ledger", "namespace": "payments"},
       "spec": {"selector": {"app": "ledger"}, "ports": [{"port": 8080}]}}
BAD = [
    ("hosts", {"hosts": 8080}),
    ("http", {"hosts": ["audit"], "http": {"route": "audit"}}),
    ("weight", {"hosts": ["audit"], "http": [{"route": [{"destination": {"host": "audit"}, "weight": "half"}]}]}),
    ("subsets", None),
]


def _tree(root: Path, field: str, spec: dict[str, object] | None) -> Path:
    root.mkdir()
    docs: list[dict[str, object]] = [GOOD_VS, DR, SVC]
    if spec is not None:
        docs.append({**GOOD_VS, "metadata": {"name": "audit", "namespace": "payments"}, "spec": spec})
    else:  # a DestinationRule whose subsets is a mapping
        docs.append({**DR, "metadata": {"name": "audit", "namespace": "payments"},
                     "spec": {"host": "audit", "subsets": {"v1": {"labels": {"version": "v1"}}}}})
    (root / "mesh.yaml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return root


@pytest.mark.parametrize(("field", "spec"), BAD)
def test_one_malformed_resource_is_a_finding_not_a_crash(tmp_path: Path, field: str,
                                                          spec: dict[str, object] | None) -> None:
    tree = _tree(tmp_path / "live", field, spec)
    config = tmp_path / "meshobs.yaml"
    config.write_text(yaml.safe_dump({"sources": {"kubernetes": {"manifests": [str(tree)]}}}), encoding="utf-8")
    runner = CliRunner()
    diagnose = runner.invoke(cli, ["diagnose", "--all", "--config", str(config), "-o", "json"])
    assert diagnose.exit_code in (0, 1), diagnose.output
    report = json.loads(diagnose.stdout)
    found = json.dumps(report)
    assert "MSH0003" in found and "payments/audit" in found and field in found
    assert "mesh.yaml:" in found  # the line of the bad field, as a finding on a manifest names it
    assert "MSH0001" not in found  # no check crashed on it
    graph = runner.invoke(cli, ["graph", "--config", str(config)])
    assert graph.exit_code in (0, 3) and "internal error" not in graph.stderr
    intended = _tree(tmp_path / "git", field, spec)
    drift = runner.invoke(cli, ["drift", "--config", str(config), "--intended", str(intended), "-o", "json"])
    assert drift.exit_code == 3 and "internal error" not in drift.stderr  # incomplete: it says which
    result = json.loads(drift.stdout)
    assert any("payments/audit" in p for p in result["problems"])
    assert result["drift"] == [] or all(d["resource"]["name"] != "ledger" for d in result["drift"])
