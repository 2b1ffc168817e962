"""`y`: the selected resource as YAML, intended (Git) and live side by side, drifted lines
marked with the other side's value, through meshobs.drift's comparison."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import Layer, MeshSnapshot, freeze, thaw
from meshobs.tui.app import make_app
from meshobs.tui.data import SnapshotLoader
from meshobs.tui.screens.yaml import YamlScreen
from meshobs.tui.widgets.tables import SyncTable
from meshobs.tui.yaml_model import yaml_view
from tests.test_tui import FIXED, _deterministic, anyio_backend, settle  # noqa: F401

pytestmark = pytest.mark.anyio
WEIGHT = "spec.http[1].route[product-service.shop.svc.cluster.local|v1].weight"


def with_intended(snapshot: MeshSnapshot, name: str, edit) -> MeshSnapshot:  # type: ignore[no-untyped-def]
    live = next(c for c in snapshot.config if c.kind == "VirtualService" and c.name == name)
    spec = thaw(live.spec)
    edit(spec)
    intended = dataclasses.replace(live, layer=Layer.INTENDED, spec=freeze(spec), origin="git")
    return dataclasses.replace(snapshot, config=(*snapshot.config, intended))


def test_live_vs_effective_and_intended_vs_live_marks_the_same_field() -> None:
    snapshot = build_snapshot(load_demo("weight-drift"))

    def git_says_80_20(spec):  # type: ignore[no-untyped-def]
        spec["http"][1]["route"][0]["weight"], spec["http"][1]["route"][1]["weight"] = 80, 20

    snapshot = with_intended(snapshot, "product-service", git_says_80_20)
    live = next(c for c in snapshot.config if c.layer is Layer.LIVE and c.name == "product-service"
                and c.kind == "VirtualService")
    intended = next(c for c in snapshot.config if c.layer is Layer.INTENDED)
    view = yaml_view(live, intended, snapshot.proxies)
    assert len(view.drifts) == 4  # two weights, intended->live and live->effective
    short = WEIGHT.replace(".svc.cluster.local", "")
    assert any(short in d and "intended 80 → live 90" in d for d in view.drifts)
    assert any(short in d and "live 90 → effective 50" in d for d in view.drifts)
    assert view.live is not None and view.intended is not None
    [left] = [line for line in view.intended if line.path == WEIGHT]
    [right] = [line for line in view.live if line.path == WEIGHT]
    assert left.drifted and left.text.strip() == "weight: 80" and left.note == "live: 90"
    assert right.drifted and right.text.strip() == "weight: 90"
    assert right.note == "intended: 80; effective: 50 on 2 proxies"
    assert sum(line.drifted for line in view.live) == 2  # only the two weights, nothing else
    # Strings that read as other YAML types stay strings.
    assert any(line.text.strip() == 'exact: "true"' for line in view.live)


async def test_y_on_the_config_tab_shows_the_drift(tmp_path: Path) -> None:
    bundle = load_demo("weight-drift")
    snapshot = build_snapshot(bundle, origin="demo:weight-drift")
    loader = SnapshotLoader(lambda: snapshot, live=False, bundle=bundle)
    app = make_app(loader=loader, refresh_s=0, clock=lambda: FIXED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"product", "enter", "enter", "5")
        await settle(app, pilot)
        table = app.screen.query_one("#config-table", SyncTable)
        cells = [r.cells() for r in table.rows_shown]
        vs = cells.index(("≠ VirtualService shop/product-service", "2 drifted"))
        table.move_cursor(row=vs)
        await pilot.pause()
        assert "live 90 → effective 50" in str(app.screen.query_one("#config-detail").render())
        await pilot.press("y")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, YamlScreen) and screen.view is not None
        head = str(screen.query_one("#yaml-head").render())
        assert "2 difference(s)" in head and "no intended (Git) copy" in head
        live = str(screen.query_one("#yaml-live-text").render()).splitlines()
        marked = [line.split() for line in live if line.startswith("≠")]
        assert marked == [["≠", "weight:", "90", "#", "effective:", "50", "on", "2", "proxies"],
                          ["≠", "weight:", "10", "#", "effective:", "50", "on", "2", "proxies"]]
        await pilot.press("l")
        assert screen.query_one("#yaml-sides").has_class("stacked")


async def test_intended_copy_read_from_drift_intended_files(tmp_path: Path) -> None:
    bundle = load_demo("ecommerce")
    snapshot = build_snapshot(bundle, origin="demo:ecommerce")
    git = tmp_path / "git"
    git.mkdir()
    (git / "cart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "cart-service", "namespace": "shop"},
        "spec": {"hosts": ["cart-service"], "http": [{"name": "default", "timeout": "3s",
                 "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"},
                 "route": [{"destination": {"host": "cart-service", "subset": "v1"}}]}]}}))
    loader = SnapshotLoader(lambda: snapshot, live=False, bundle=bundle, intended=[str(git)])
    app = make_app(loader=loader, refresh_s=0, clock=lambda: FIXED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter", "5")
        await settle(app, pilot)
        table = app.screen.query_one("#config-table", SyncTable)
        names = [r.cells()[0].strip() for r in table.rows_shown]
        table.move_cursor(row=names.index("VirtualService shop/cart-service"))
        await pilot.press("y")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, YamlScreen) and screen.view is not None
        assert screen.view.drifts == ["≠ spec.http[0].timeout: intended 3 → live 5"]
        left = str(screen.query_one("#yaml-intended-text").render()).splitlines()
        assert [line.split() for line in left if line.startswith("≠")] == [["≠", "timeout:", "3", "#", "live:", "5"]]
