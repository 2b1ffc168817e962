"""The graph: the selected service's neighbourhood in the terminal (callers -> service ->
callees, coloured by error rate, labelled rate/p99/mTLS, navigable), and `meshobs graph`
focused on a service or namespace with health and mTLS marks in DOT and Mermaid."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from meshobs.cli.main import cli
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.render.graph import Marks, edge_severity, focus, to_dot, to_mermaid
from meshobs.tui.graph_model import graph_view
from meshobs.tui.screens.graph import GraphList, GraphScreen
from meshobs.tui.screens.service import ServiceScreen
from tests.test_tui import _deterministic, anyio_backend, app_for, demo_pair, settle  # noqa: F401

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    return demo_pair()
CART = ServiceRef("shop", "cart-service")
DB = ServiceRef("shop", "database-service")
FRONTEND = ServiceRef("shop", "frontend")


def option_ids(app) -> list[str]:  # type: ignore[no-untyped-def]
    graph = app.screen.query_one(GraphList)
    return [str(graph.get_option_at_index(i).id) for i in range(graph.option_count)]


async def test_graph_of_the_selected_service_and_walking_it(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("G")  # cart-service is selected (worst first)
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, GraphScreen) and screen.centre == CART
        assert [e.peer for e in screen.view.callers] == ["shop/frontend"]  # type: ignore[union-attr]
        assert [e.peer for e in screen.view.callees] == ["shop/database-service"]  # type: ignore[union-attr]
        assert option_ids(app).index("in:shop/frontend") < option_ids(app).index("centre") \
            < option_ids(app).index("out:shop/database-service")
        # ↓ to the callee, enter: the graph centres on the database; esc: back to the cart.
        await pilot.press("j", "enter")
        await settle(app, pilot)
        assert screen.centre == DB and screen.trail == [CART]
        assert {e.peer for e in screen.view.callers} == {"shop/cart-service", "shop/product-service"}  # type: ignore[union-attr]
        await pilot.press("v")
        await settle(app, pilot)
        assert isinstance(app.screen, ServiceScreen) and app.screen.ref == DB
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("escape")
        assert isinstance(app.screen, GraphScreen) and app.screen.centre == CART
        await pilot.press("escape")
        assert not isinstance(app.screen, GraphScreen)


def test_graph_edges_carry_numbers_colour_and_mtls(demo) -> None:  # type: ignore[no-untyped-def]
    _bundle, snapshot = demo
    view = graph_view(snapshot, CART, {CART: "failing", FRONTEND: "failing", DB: "failing"})
    [caller] = view.callers
    assert (caller.ref, caller.mtls, caller.severity, caller.health) == (FRONTEND, "yes", "error", "failing")
    assert round(caller.red.rate, 1) == 12.0 and round(caller.red.error_ratio, 2) == 0.45
    line = caller.line(80)
    assert len(line) <= 80 and "12.0/s" in line and "45.0%" in line and "mTLS yes" in line
    assert [edge_severity(x) for x in (0.0, 0.01, 0.02, 0.05)] == ["ok", "ok", "warning", "error"]


def test_focus_on_a_service_keeps_its_neighbourhood() -> None:
    snapshot = build_snapshot(load_demo("ecommerce"))
    marks = focus(snapshot, CART)
    assert marks.keep == {"shop/cart-service", "shop/frontend", "shop/database-service"}
    by_ns = focus(snapshot, namespace="istio-system")
    assert by_ns.keep == {"istio-system/istio-ingressgateway", "shop/frontend"}


def test_dot_and_mermaid_mark_health_focus_and_plaintext() -> None:
    snapshot = build_snapshot(load_demo("mtls-mismatch"))
    marks = dataclasses.replace(focus(snapshot, CART), health={"shop/cart-service": "failing",
                                                               "shop/frontend": "healthy"})
    dot = to_dot(snapshot, marks)
    node = next(line for line in dot.splitlines() if line.strip().startswith("n_shop_cart_service ["))
    assert "× failing" in node and "penwidth=3" in node and "#f4cccc" in node
    edge = next(line for line in dot.splitlines() if "n_shop_cart_service -> n_shop_database_service" in line)
    assert "PLAINTEXT" in edge and "style=dashed" in edge and "color=red" in edge
    assert "product" not in dot  # outside the neighbourhood
    mermaid = to_mermaid(snapshot, marks)
    assert "class n_shop_cart_service failing" in mermaid and "style n_shop_cart_service stroke-width:4px" in mermaid
    assert '-.->|"12.0 rps, 100.0% err, p99 8 ms, PLAINTEXT"|' in mermaid
    assert "linkStyle 0 stroke:red" in mermaid
    healthy = build_snapshot(load_demo("healthy"))
    quiet = to_dot(healthy, Marks())
    assert "style=dashed" not in quiet and "color=red" not in quiet and "\\nmTLS" in quiet


def test_graph_command_focus_and_health_marks() -> None:
    run = CliRunner().invoke
    result = run(cli, ["graph", "--from", "demo", "--service", "cart-service", "-o", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["focus"] == "shop/cart-service"
    assert {(s["name"], s["health"]) for s in doc["services"]} == {
        ("cart-service", "failing"), ("database-service", "failing"), ("frontend", "failing")}
    assert {(e["source"], e["destination"]) for e in doc["edges"]} == {
        ("shop/frontend", "shop/cart-service"), ("shop/cart-service", "shop/database-service")}
    result = run(cli, ["graph", "--from", "demo", "--namespace", "istio-system", "-o", "mermaid"])
    assert result.exit_code == 0 and "n_istio_system_istio_ingressgateway" in result.stdout
    assert "n_shop_cart_service" not in result.stdout
    result = run(cli, ["graph", "--from", "demo", "--service", "cart-servce"])
    assert result.exit_code == 2 and "did you mean cart-service" in result.output
    result = run(cli, ["graph", "--from", "demo", "--namespace", "nowhere"])
    assert result.exit_code == 2 and "istio-system, shop" in result.output
    result = run(cli, ["graph", "--from", "demo", "--service", "cart-service", "--no-health", "-o", "dot"])
    assert result.exit_code == 0 and "failing" not in result.stdout
