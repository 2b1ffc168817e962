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


def test_the_heading_names_the_manifests_not_live(corpus: Path, tmp_path: Path) -> None:
    """``--config-only -f DIR`` reads files only: the heading and the JSON's origin say which,
    not "(live)"; with a live source beside the files, the run is live."""
    manifest = tmp_path / "m.yaml"
    shutil.copy(corpus / "istio-config/kiali/subset-presence-no-matching-subsets-1.yaml", manifest)
    text = CliRunner().invoke(cli, ["diagnose", "--all", "--config-only", "-f", str(manifest)])
    heading = " ".join(text.stdout.split("\n\n")[0].split())  # a long path wraps it
    assert heading.startswith(f"Diagnosis of every service (manifests {manifest})") and "(live)" not in heading
    doc = json.loads(CliRunner().invoke(cli, ["diagnose", "--all", "-f", str(manifest), "-o", "json"]).stdout)
    assert doc["origin"] == f"manifests {manifest}"
    live = tmp_path / "meshobs.yaml"
    live.write_text("sources:\n  prometheus: {url: 'http://127.0.0.1:9'}\n")
    mixed = CliRunner().invoke(cli, ["diagnose", "--all", "-f", str(manifest), "--config", str(live),
                                     "--timeout", "3s", "-o", "json"])
    assert json.loads(mixed.stdout)["origin"] == "live"
    # --config-only leaves the files only: nothing live is asked.
    only = CliRunner().invoke(cli, ["diagnose", "--all", "--config-only", "-f", str(manifest), "--config", str(live),
                                    "-o", "json"])
    assert json.loads(only.stdout)["origin"] == f"manifests {manifest}"


def _statuses(doc: dict[str, object]) -> set[str]:
    return {s["status"] for s in doc["services"]}  # type: ignore[attr-defined, index]


def test_configuration_only_claims_no_health(tmp_path: Path) -> None:
    """No data is not health: a run that judged configuration only calls what it found nothing
    in "clean" (traffic not checked), never "healthy", and still exits 0 for CI. The demo's
    database is ejected: the configuration is fine, the traffic is not."""
    every = CliRunner().invoke(cli, ["diagnose", "--all", "--config-only", "--from", "demo:ecommerce", "-o", "json"])
    assert every.exit_code == 0, every.output
    doc = json.loads(every.stdout)
    assert doc["status"] == "clean" and _statuses(doc) == {"clean"}
    one = CliRunner().invoke(cli, ["diagnose", "cart-service", "--config-only", "--from", "demo:ecommerce",
                                   "--no-color"])
    assert one.exit_code == 0, one.output
    assert "Status: clean (traffic not checked)" in one.stdout and "healthy" not in one.stdout
    # The same mesh judged with its traffic: the cause is found, exit 1.
    assert CliRunner().invoke(cli, ["diagnose", "cart-service", "--from", "demo:ecommerce"]).exit_code == 1
    # Manifests alone (-f, every check selected: the traffic checks skip, no source configured).
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: ledger, namespace: payments}\n"
        "spec: {selector: {app: ledger}, ports: [{port: 80, name: http}]}\n")
    files = CliRunner().invoke(cli, ["diagnose", "--all", "-f", str(tmp_path / "m"), "-o", "json"])
    assert files.exit_code == 0, files.output
    files_doc = json.loads(files.stdout)
    assert files_doc["status"] == "clean" and _statuses(files_doc) == {"clean"}


def test_a_healthy_mesh_judged_with_its_traffic_is_still_healthy() -> None:
    result = CliRunner().invoke(cli, ["diagnose", "--all", "--from", "demo:healthy", "-o", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "healthy" and _statuses(doc) == {"healthy"}
