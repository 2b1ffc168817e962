"""A configuration-only run: only sources.kubernetes.manifests, a relative path, no cluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshobs.cli.main import cli


def test_manifests_only_config_with_relative_path(corpus: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(corpus / "istio-config/kiali/subset-presence-no-matching-subsets-1.yaml", tmp_path / "m.yaml")
    (tmp_path / "meshobs.yaml").write_text("sources:\n  kubernetes:\n    manifests: [m.yaml]\n")
    monkeypatch.chdir("/")  # relative to the config file, not to the working directory
    result = CliRunner().invoke(cli, ["diagnose", "reviews", "--config", str(tmp_path / "meshobs.yaml"),
                                      "-o", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["namespace"] == "bookinfo"
    # Two routes to two undefined subsets: two findings on the one VirtualService; and the
    # second rule is never used, since the first has no match.
    assert sorted((f["code"], f["subject"], f["evidence"].get("subset", f["evidence"].get("rule")))
                  for f in doc["findings"]) == [
        ("MSH0201", "VirtualService bookinfo/reviews-vs", "not-v1"),
        ("MSH0201", "VirtualService bookinfo/reviews-vs", "not-v2"),
        ("MSH0220", "VirtualService bookinfo/reviews-vs", 1)]
    status = {c["id"]: c for c in doc["checks"]}
    assert status["config.unknown_subset"]["status"] == "fail"
    assert status["traffic.error_rate"]["status"] == "skipped"
    assert "no request metrics" in status["traffic.error_rate"]["reason"]
    assert status["appmesh.client_tls"]["reason"].startswith("not applicable")
