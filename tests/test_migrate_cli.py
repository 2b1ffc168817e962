"""``meshobs migrate``: golden translation of the e-commerce App Mesh demo, exit codes, the
output passing meshobs's own configuration checks, and ``verify`` on demo-generated pairs.

Regenerate the golden files with ``MESHOBS_UPDATE_GOLDEN=1 pytest tests/test_migrate_cli.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from meshobs.bundle import write_bundle
from meshobs.cli.main import cli
from meshobs.demo.build import render_bundle
from meshobs.demo.scenario_appmesh import ecommerce_appmesh
from meshobs.demo.scenario_cutover import after, appmesh_before, lose_retry_and_change_weight

GOLDEN = Path(__file__).parent / "golden" / "migrate"


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MESHOBS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with MESHOBS_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def _tree(directory: Path) -> str:
    """Every file of a translation, in name order, as one text."""
    return "".join(f"=== {p.name}\n{p.read_text(encoding='utf-8')}" for p in sorted(directory.iterdir()))


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_golden_translation_of_the_ecommerce_appmesh_demo(tmp_path: Path) -> None:
    result = _run("migrate", "appmesh-to-istio", "--from", "demo:ecommerce-appmesh", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    _golden("ecommerce-appmesh.txt", _tree(tmp_path / "out"))


def test_golden_translation_with_tls_between_virtual_nodes(tmp_path: Path) -> None:
    # The same demo, generated with TLS on every listener and every caller enforcing it.
    src = tmp_path / "appmesh"
    src.mkdir()
    (src / "appmesh.yaml").write_text(yaml.safe_dump_all(ecommerce_appmesh(tls=True).appmesh_config),
                                      encoding="utf-8")
    result = _run("migrate", "appmesh-to-istio", "--from", str(src), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    _golden("ecommerce-appmesh-tls.txt", _tree(tmp_path / "out"))


def test_json_report_and_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run("migrate", "appmesh-to-istio", "--from", "demo:ecommerce-appmesh", "--out", str(out), "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["summary"]["istio_manifests"] == len(list(out.glob("*.yaml")))
    assert doc["round_trip"] == [] and [i for i in doc["schema"] if i["severity"] == "error"] == []
    assert {f["status"] for f in doc["fields"]} == {"untranslatable", "behaviour-change"}
    # Output directory not empty: refused (2) unless --force.
    assert _run("migrate", "appmesh-to-istio", "--from", "demo:ecommerce-appmesh", "--out", str(out)).exit_code == 2
    assert _run("migrate", "appmesh-to-istio", "--from", "demo:ecommerce-appmesh", "--out", str(out),
                "--force").exit_code == 0
    # No App Mesh configuration in the input: nothing to check (3).
    assert _run("migrate", "appmesh-to-istio", "--from", "demo:healthy", "--out", str(tmp_path / "o2")).exit_code == 3
    # Unreadable input: usage error (2), one line, no traceback.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("kind: [unclosed\n", encoding="utf-8")
    result = _run("migrate", "appmesh-to-istio", "--from", str(bad), "--out", str(tmp_path / "o3"))
    assert result.exit_code == 2 and "Traceback" not in result.output and "x.yaml" in result.output
    assert _run("migrate", "appmesh-to-istio", "--from", str(tmp_path / "nowhere"),
                "--out", str(tmp_path / "o4")).exit_code == 2


def test_a_round_trip_difference_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import meshobs.migrate.translate as translate_module

    real = translate_module.translate

    def lossy(*args: Any, **kwargs: Any) -> Any:
        translation = real(*args, **kwargs)
        for m in translation.manifests:
            if m.kind == "VirtualService" and m.name == "cart-service":
                m.doc["spec"]["http"][0].pop("retries")
        return translation

    monkeypatch.setattr(translate_module, "translate", lossy)
    result = _run("migrate", "appmesh-to-istio", "--from", "demo:ecommerce-appmesh", "--out", str(tmp_path / "o"),
                  "-o", "json")
    assert result.exit_code == 1, result.output
    paths = {d["path"] for d in json.loads(result.stdout)["round_trip"]}
    assert "spec.routes[cart-service-route].httpRoute.retryPolicy.maxRetries" in paths


def test_the_output_passes_meshobs_configuration_checks(tmp_path: Path) -> None:
    out = tmp_path / "istio"
    assert _run("migrate", "appmesh-to-istio", "--from", "demo:ecommerce-appmesh", "--out", str(out)).exit_code == 0
    # The cluster's Services and Deployments beside the translation, so subset checks can judge.
    assert _run("demo", "export", "ecommerce-appmesh", str(tmp_path / "git")).exit_code == 0
    config = tmp_path / "meshobs.yaml"
    config.write_text(f"sources:\n  kubernetes:\n    manifests: [{out}, {tmp_path / 'git' / 'kubernetes.yaml'}]\n",
                      encoding="utf-8")
    result = _run("diagnose", "--all", "--config", str(config), "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f for f in doc["findings"] if f["severity"] == "error"] == []
    checks = {(s["service"], c["id"]): c["status"] for s in doc["services"] for c in s["checks"]}
    # The configuration checks did run on the translation (not skipped for want of data).
    assert checks[("product-service", "config.unknown_subset")] == "pass"
    assert checks[("product-service", "config.empty_subset")] == "pass"
    assert checks[("cart-service", "certs.mtls_conflict")] == "pass"


# -- verify ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cutover")
    before = appmesh_before()
    out = {}
    for name, scenario in (("before", before), ("faithful", after(before)),
                           ("lossy", after(before, lose_retry_and_change_weight))):
        out[name] = str(write_bundle(render_bundle(scenario), root / f"{name}.tar.gz"))
    return out


def test_verify_a_faithful_cutover_passes(bundles: dict[str, str]) -> None:
    result = _run("migrate", "verify", "--before", bundles["before"], "--after", bundles["faithful"], "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["passed"] and doc["configuration"] == [] and doc["envoy"] == [] and doc["splits"] == []
    statuses = {(e["source"], e["destination"]): e["status"] for e in doc["edges"]}
    # App Mesh's demo edges were plaintext; Istio's auto mTLS encrypts them: better, not worse.
    assert statuses[("shop/frontend-v1", "shop/product-service")] == "better"
    assert set(statuses.values()) <= {"same", "better"} and len(statuses) == 6


def test_verify_a_lost_retry_policy_and_a_changed_weight_fail(bundles: dict[str, str]) -> None:
    result = _run("migrate", "verify", "--before", bundles["before"], "--after", bundles["lossy"], "-o", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    config = {(d["resource"]["name"], d["path"]) for d in doc["configuration"]}
    assert ("cart-service-router", "spec.routes[cart-service-route].httpRoute.retryPolicy.maxRetries") in config
    weights = {(d["path"], d["appmesh"], d["istio"]) for d in doc["configuration"] if d["category"] == "weight"}
    assert {(left, right) for _p, left, right in weights} == {(90, 80), (10, 20)}
    envoy = {(d["resource"]["name"], d["path"].rsplit(".", 1)[-1]) for d in doc["envoy"]}
    assert ("frontend-v1", "attempts") in envoy and ("frontend-v1", "weight") in envoy
    (moved,) = [s for s in doc["splits"] if s["against"] == "before"]
    assert moved["service"] == "shop/product-service"
    assert moved["observed"] == {"shop/product-v1": 80.0, "shop/product-v2": 20.0}


def test_verify_text_and_mixed_state(bundles: dict[str, str]) -> None:
    result = _run("migrate", "verify", "--before", bundles["before"], "--after", "demo:migration", "-o", "json")
    doc = json.loads(result.stdout)
    assert doc["still_on_appmesh"] == ["shop/cart-service", "shop/database-service"]
    on_appmesh = {(e["source"], e["destination"]) for e in doc["edges"] if e["on_appmesh"]}
    assert ("shop/frontend-v1", "shop/cart-service") in on_appmesh
    crossed = {(e["source"], e["destination"]): e["status"] for e in doc["edges"] if not e["on_appmesh"]}
    assert crossed[("shop/frontend-v1", "shop/product-service")] == "better"  # now mTLS
    # The App Mesh gateway was replaced by Istio's: one edge, judged, not missing + new.
    assert crossed[("shop/shop-gateway => istio-system/istio-ingressgateway", "shop/frontend")] == "same"
    # frontend (now on Istio) calls cart-service (still on App Mesh) without cart's App Mesh
    # retry policy: Istio callers do not read App Mesh routers. A real hazard, reported.
    envoy = {(d["resource"]["name"], d["path"]) for d in doc["envoy"]}
    assert ("frontend-v1", "routes[cart-service.shop.svc.cluster.local|cart-service-route].retries.attempts") \
        in envoy
    assert any("shop/frontend-v1 already calls shop/cart-service" in h for h in doc["hints"])
    assert result.exit_code == 1
    text = _run("migrate", "verify", "--before", bundles["before"], "--after", "demo:migration").output
    assert "still on App Mesh: shop/cart-service, shop/database-service" in text


def test_verify_usage_errors(bundles: dict[str, str], tmp_path: Path) -> None:
    assert _run("migrate", "verify", "--before", bundles["before"]).exit_code == 2
    assert _run("migrate", "verify", "--before", str(tmp_path / "none.tar.gz"), "--after", "demo").exit_code == 2


def test_verify_with_nothing_to_compare_exits_3(bundles: dict[str, str], tmp_path: Path) -> None:
    from meshobs.bundle import read_bundle

    shipped = read_bundle(bundles["before"])
    empty = write_bundle(type(shipped)(time=shipped.time, window_s=shipped.window_s, sources=[],
                                       config=shipped.config), tmp_path / "empty.tar.gz")
    result = _run("migrate", "verify", "--before", str(empty), "--after", str(empty), "-o", "json")
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["checkable"] is False
