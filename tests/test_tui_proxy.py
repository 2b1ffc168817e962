"""A pod's Envoy as `istioctl proxy-config` shows it, on the demo: listeners, routes (weights,
retries, timeouts), clusters (circuit breakers, outlier detection), endpoints (health,
ejection), secrets, xDS state in words; fetched on demand when the snapshot lacks the pod."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from textual.widgets import TabbedContent

from meshobs.collect import build_snapshot
from meshobs.config import load_config
from meshobs.demo.catalog import load_demo
from meshobs.demo.serve import serve_scenario
from meshobs.engine import diagnose_all
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.tui.data import EnvoyAccess, SnapshotLoader
from meshobs.tui.proxy_model import proxy_findings, proxy_view, xds_words
from meshobs.tui.screens.proxies import ProxiesScreen
from meshobs.tui.screens.proxy import ProxyScreen
from meshobs.tui.widgets.tables import SyncTable
from tests.test_tui import FIXED, _deterministic, anyio_backend, app_for, demo_pair, settle  # noqa: F401

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    return demo_pair()
CART = ServiceRef("shop", "cart-service")


def rows(app, tab: str) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return [r.cells() for r in app.screen.query_one(f"#{tab}-table", SyncTable).rows_shown]


async def open_cart_pod(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(app, pilot)
    await pilot.press("enter", "2", "enter")  # cart-service, its Proxies tab, the first pod
    await settle(app, pilot)


async def test_proxy_config_views_of_a_cart_pod(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_cart_pod(app, pilot)
        screen = app.screen
        assert isinstance(screen, ProxyScreen) and screen.pod.startswith("cart-v1-") and screen.view is not None
        # Clusters: the database's endpoints are ejected by outlier detection; its DestinationRule named.
        clusters = {r[0]: r for r in rows(app, "clusters") if r[1] == "8080" and r[2] == "-"}
        db = clusters["database-service.shop"]
        assert db[3:] == ("out", "EDS", "0/2", "EJECTED 2")
        await pilot.press("3")
        assert screen.query_one(TabbedContent).active == "clusters"
        table = screen.query_one("#clusters-table", SyncTable)
        table.move_cursor(row=[r.cells() for r in table.rows_shown].index(db))
        await pilot.pause()
        detail = str(screen.query_one("#clusters-detail").render())
        assert "DestinationRule shop/database-service" in detail
        assert "outlier detection: consecutive_5xx" in detail and "ejected now 2" in detail
        assert "circuit breakers:" in detail
        # Endpoints: the two ejected database endpoints lead, FAILED outlier check.
        endpoints = rows(app, "endpoints")
        assert [e[1:3] for e in endpoints[:2]] == [("UNHEALTHY", "FAILED")] * 2
        assert all("database-service" in e[3] for e in endpoints[:2])
        # Routes: the cart's own VirtualService route with its timeout and retries.
        routes = {r[0]: r for r in rows(app, "routes")}
        assert any(k.startswith("database-service.shop") for k in routes)
        # Secrets: the workload certificate first, then the root.
        assert [s[1] for s in rows(app, "secrets")] == ["workload", "root"]
        # xDS: every type the proxy reports, in words.
        xds = {r[0]: r for r in rows(app, "xds")}
        assert {"CDS", "LDS", "RDS"} <= set(xds) and xds["RDS"][1] == "latest"


async def test_tab_and_numbers_walk_the_proxy_tabs(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_cart_pod(app, pilot)
        tabs = app.screen.query_one(TabbedContent)
        seen = [tabs.active]
        for _ in range(5):
            await pilot.press("tab")
            seen.append(tabs.active)
        assert seen == ["listeners", "routes", "clusters", "endpoints", "secrets", "xds"]
        await pilot.press("2")
        assert tabs.active == "routes"


def test_xds_state_is_said_in_words_from_the_engine() -> None:
    """envoyfilter-nack: dispatch-api's proxies reject every RDS push (an EnvoyFilter's patch)
    while their clusters and listeners stay current; the engine's MSH0107 says so."""
    snapshot = build_snapshot(load_demo("envoyfilter-nack"))
    report = diagnose_all(snapshot)
    nacking = next(p for p in snapshot.proxies if p.pod.startswith("dispatch-api-v4-"))
    mine = proxy_findings(report.findings, nacking.id)
    assert {f.code for f in mine} == {"MSH0107"}
    assert xds_words(nacking, mine, snapshot.time) == "RDS REJECTED"
    view = proxy_view(nacking, snapshot.certs_of(nacking.id), mine, snapshot.time)
    xds = {r.values[0]: r.values for r in view.tabs["xds"]}
    assert xds["RDS"][1] == "REJECTED" and xds["CDS"][1] == "latest"
    assert xds["RDS"][2] == "26m01s ago" and xds["RDS"][3] == "7"  # stuck since the filter, 7 rejected
    gateway = next(p for p in snapshot.proxies if p.pod.startswith("istio-ingressgateway"))
    assert xds_words(gateway, [], snapshot.time) == "latest · 8m13s ago"
    # Without the engine's verdict a rejected update is still said from the proxy's own counter.
    rejected = dataclasses.replace(gateway, update_rejected={"rds": 3})
    assert xds_words(rejected, [], snapshot.time) == "RDS REJECTED"
    assert xds_words(dataclasses.replace(gateway, control_plane_connected=False), [], snapshot.time) == "DISCONNECTED"


async def test_the_mesh_wide_proxies_view_puts_xds_problems_first() -> None:
    bundle = load_demo("envoyfilter-nack")
    snapshot = build_snapshot(bundle, origin="demo:envoyfilter-nack")
    loader = SnapshotLoader(lambda: snapshot, live=False, bundle=bundle)
    from meshobs.tui.app import make_app

    app = make_app(loader=loader, refresh_s=0, clock=lambda: FIXED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"proxies", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ProxiesScreen)
        listed = [r.cells() for r in app.screen.query_one("#proxy-list", SyncTable).rows_shown]
        assert len(listed) == len(snapshot.proxies)
        assert [r[2] for r in listed[:3]] == ["RDS REJECTED"] * 3
        assert all(r[0].startswith("dispatch-api-v4-") for r in listed[:3])


def scoped(snapshot: MeshSnapshot) -> MeshSnapshot:
    """A snapshot without the cart pods' Envoy data, as a scoped collection leaves it."""
    return dataclasses.replace(snapshot, proxies=tuple(p for p in snapshot.proxies if not p.pod.startswith("cart-v1-")),
                               certs=tuple(c for c in snapshot.certs if not (c.proxy_id or "").startswith("cart-v1-")))


@pytest.mark.slow
async def test_a_pod_missing_from_the_snapshot_is_fetched_on_demand(tmp_path: Path) -> None:
    """Against the demo's loopback Envoy admin servers, through the Envoy collector."""
    with serve_scenario("ecommerce", tmp_path, prometheus=False) as served:
        config = load_config(str(served.config_path))
        assert config is not None
        bundle = load_demo("ecommerce")
        snapshot = scoped(build_snapshot(bundle, origin="demo:ecommerce"))
        loader = SnapshotLoader(lambda: snapshot, live=False, bundle=bundle, access=EnvoyAccess(config, ()))
        from meshobs.tui.app import make_app

        app = make_app(loader=loader, refresh_s=0, clock=lambda: FIXED)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("enter", "2")
            await settle(app, pilot)
            listed = [r.cells() for r in app.screen.query_one("#proxy-table", SyncTable).rows_shown]
            assert [r[2] for r in listed] == ["not collected: enter"] * 2
            await pilot.press("enter")
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, ProxyScreen) and screen.view is not None
            assert screen.view.origin == "fetched now"
            clusters = {r[0]: r for r in rows(app, "clusters") if r[1] == "8080" and r[2] == "-"}
            assert clusters["database-service.shop"][5:] == ("0/2", "EJECTED 2")
            assert [s[1] for s in rows(app, "secrets")] == ["workload", "root"]


async def test_without_an_envoy_source_a_missing_pod_says_why(demo) -> None:  # type: ignore[no-untyped-def]
    _bundle, snapshot = demo
    app = app_for(demo, lambda: scoped(snapshot))
    async with app.run_test(size=(100, 30)) as pilot:
        await open_cart_pod(app, pilot)
        screen = app.screen
        assert isinstance(screen, ProxyScreen) and screen.view is None
        assert "no Envoy data for the pod" in str(screen.query_one("#proxy-summary").render())


async def test_an_opened_screen_is_filled_once(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Textual runs the on_mount of every class in the MRO itself: a subclass that also calls
    # super().on_mount() fills its view twice.
    from meshobs.tui.screens.base import MeshScreen

    mounted: list[str] = []
    original = MeshScreen.on_mount

    def counting(self) -> None:  # type: ignore[no-untyped-def]
        mounted.append(type(self).__name__)
        original(self)

    monkeypatch.setattr(MeshScreen, "on_mount", counting)
    app = app_for(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_cart_pod(app, pilot)
        assert isinstance(app.screen, ProxyScreen)
    assert mounted.count("ServiceScreen") == 1 and mounted.count("ProxyScreen") == 1
