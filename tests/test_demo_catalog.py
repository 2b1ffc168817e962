"""The demo catalogue: shipped bundles, names, errors, intended manifests, regeneration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshobs.bundle import read_bundle
from meshobs.demo.build import BUNDLES, render_bundle
from meshobs.demo.catalog import (
    DemoNotFound,
    check_demo_name,
    export_intended,
    list_demos,
    list_library,
    load_demo,
    scenario_for,
)
from meshobs.demo.scenario import builtin_scenario

NAMES = ["ecommerce", "healthy", "canary-errors", "cert-expiry", "mtls-mismatch", "weight-drift", "slow-db"]


def test_list_demos_names_every_demo_with_its_description() -> None:
    demos = list_demos()
    assert [n for n, _ in demos] == [*NAMES, "ecommerce-appmesh", "migration"]
    assert all(d and "\n" not in d for _, d in demos)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_bundle_reads_back_with_every_source(name: str) -> None:
    path = BUNDLES / f"{name}.tar.gz"
    assert path.stat().st_size < 1_000_000
    bundle = read_bundle(path)
    assert bundle.name == name
    kinds = [s.kind for s in bundle.sources]
    assert kinds.count("kubernetes") == kinds.count("jaeger") == kinds.count("prometheus") == 1
    pods = json.loads(bundle.sources[0].get("pods").body)["items"]  # type: ignore[union-attr]
    envoy = [s for s in bundle.sources if s.kind == "envoy"]
    assert len(envoy) == len(pods) == 10
    assert {s.name for s in envoy} == {f"envoy:{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods}
    assert bundle.time.isoformat() == "2026-11-20T12:00:00+00:00" and bundle.window_s == 300


@pytest.mark.parametrize("name", NAMES)
def test_regenerating_gives_the_shipped_bundle(name: str) -> None:
    shipped = read_bundle(BUNDLES / f"{name}.tar.gz")
    fresh = render_bundle(builtin_scenario(name))
    assert [s.name for s in fresh.sources] == [s.name for s in shipped.sources]
    for new, old in zip(fresh.sources, shipped.sources):
        assert [p.key for p in new.payloads] == [p.key for p in old.payloads], new.name
        for p, q in zip(new.payloads, old.payloads):
            assert p.status == q.status
            # Signatures are deterministic (RFC 6979), so even certificates compare equal.
            assert p.body == q.body, f"{new.name} {p.key}: run python -m meshobs.demo.build"


def test_load_demo_default_is_ecommerce() -> None:
    assert load_demo(None).name == "ecommerce"
    assert load_demo("slow-db").name == "slow-db"


def test_unknown_demo_lists_available_names() -> None:
    with pytest.raises(DemoNotFound) as info:
        load_demo("no-such-demo")
    for name in NAMES:
        assert name in str(info.value)


def _refused(fn: object, name: str | None) -> bool:
    try:
        fn(name)  # type: ignore[operator]
    except DemoNotFound:
        return True
    return False


def test_the_name_check_agrees_with_the_scenarios() -> None:
    """check_demo_name (the dashboard's up-front check) refuses exactly what scenario_for
    refuses; generated meshes are checked by name only (building 5,000 services takes seconds)."""
    for name in [None, "", *NAMES, *(n for n, _ in list_library()), "no-such-demo", "generated-12"]:
        assert _refused(check_demo_name, name) == _refused(scenario_for, name), name
    assert not _refused(check_demo_name, "generated-5000")
    for name in ("generated-0", "generated-5001", "generated-x"):
        assert _refused(check_demo_name, name) and _refused(scenario_for, name), name


def test_generated_demo_is_rendered_on_the_fly() -> None:
    bundle = load_demo("generated-12")
    assert bundle.name == "generated-12"
    assert sum(s.kind == "envoy" for s in bundle.sources) >= 12
    with pytest.raises(DemoNotFound):
        load_demo("generated-0")


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_export_intended_writes_parseable_manifests(tmp_path: Path) -> None:
    files = export_intended("ecommerce", tmp_path)
    kinds = {d["kind"] for f in files for d in _docs(f)}
    assert {"Service", "Deployment", "VirtualService", "DestinationRule", "PeerAuthentication",
            "Gateway"} <= kinds
    assert all(d["metadata"]["namespace"] for f in files for d in _docs(f))


def test_weight_drift_live_config_differs_from_intended(tmp_path: Path) -> None:
    files = export_intended("weight-drift", tmp_path)
    intended = {(d["kind"], d["metadata"]["name"]): d for f in files for d in _docs(f)}
    live_lists = read_bundle(BUNDLES / "weight-drift.tar.gz").sources[0]
    live = json.loads(live_lists.get("crd/networking.istio.io/v1/virtualservices").body)  # type: ignore[union-attr]
    live_cart = next(v for v in live["items"] if v["metadata"]["name"] == "cart-service")
    assert intended[("VirtualService", "cart-service")]["spec"]["http"][0]["retries"]["attempts"] == 3
    assert live_cart["spec"]["http"][0]["retries"]["attempts"] == 10
    # The other demos have no live/intended difference.
    other = {(d["kind"], d["metadata"]["name"]): d for f in export_intended("healthy", tmp_path / "h")
             for d in _docs(f)}
    assert other[("VirtualService", "cart-service")]["spec"]["http"][0]["retries"]["attempts"] == 3
