"""Live vs effective for DestinationRule TLS and App Mesh VirtualRouters."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from meshobs.collect import build_snapshot
from meshobs.collectors.k8s_objects import config_from_object
from meshobs.demo.catalog import load_demo
from meshobs.drift.compare import LIVE_EFFECTIVE, Drift, Severity
from meshobs.drift.effective import compare_effective
from meshobs.drift.tls import expected_tls, proxy_labels
from meshobs.model import ConfigResource, Layer, MeshSnapshot, Proxy, RouteDestination
from tests.test_drift_data import HOST, NET, NS, proxy

DB = "outbound|8080||database-service.shop.svc.cluster.local"


def _dr(spec: dict[str, Any], name: str = "reviews") -> ConfigResource:
    doc = {"apiVersion": NET, "kind": "DestinationRule", "metadata": {"name": name, "namespace": NS}, "spec": spec}
    r = config_from_object(doc, Layer.LIVE, "test")
    assert r is not None
    return r


def _with_tls(p: Proxy, tls: dict[str, str]) -> Proxy:
    """``tls``: subset ("" for the plain cluster) -> mode; other clusters keep istio_mutual."""
    return replace(p, clusters=tuple(replace(c, tls=tls.get(c.subset or "", "istio_mutual")) for c in p.clusters))


def _tls_drifts(drifts: list[Drift]) -> list[Drift]:
    return [d for d in drifts if d.category == "tls"]


SUBSETS = [{"name": s, "labels": {"version": s}} for s in ("v1", "v2", "v3")]


def test_rule_disable_while_a_proxy_still_does_mtls() -> None:
    dr = _dr({"host": HOST, "trafficPolicy": {"tls": {"mode": "DISABLE"}}, "subsets": SUBSETS})
    proxies = [_with_tls(proxy("a"), dict.fromkeys(("", "v1", "v2", "v3"), "disable")),
               _with_tls(proxy("stale"), {"": "disable", "v1": "disable", "v2": "disable"})]  # v3 still mTLS
    [d] = compare_effective([dr], proxies, LIVE_EFFECTIVE)
    assert (d.resource.kind, d.resource.name, d.path) == ("DestinationRule", "reviews", "spec.trafficPolicy.tls.mode")
    assert (d.left, d.right, d.proxies, d.severity) == ("DISABLE", "ISTIO_MUTUAL", ("stale.shop",), Severity.ERROR)
    assert dict(d.extra)["proxies_in_sync"] == ["a.shop"]


def test_rule_istio_mutual_while_a_proxy_sends_plaintext() -> None:
    dr = _dr({"host": HOST, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}, "subsets": SUBSETS})
    [d] = compare_effective([dr], [_with_tls(proxy("a"), {"v1": "disable"})], LIVE_EFFECTIVE)
    assert (d.path, d.left, d.right) == ("spec.trafficPolicy.tls.mode", "ISTIO_MUTUAL", "DISABLE")


def test_subset_and_port_overrides_decide() -> None:
    spec = {"host": HOST, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
            "subsets": [*SUBSETS[:1], {"name": "v2", "labels": {"version": "v2"},
                                       "trafficPolicy": {"tls": {"mode": "DISABLE"}}}, SUBSETS[2]]}
    assert expected_tls({"trafficPolicy": {"tls": {"mode": "SIMPLE"}, "portLevelSettings": {
        "9080": {"port": {"number": 9080}}}}}, 9080, "") is None  # port-level settings do not inherit
    ok = _with_tls(proxy("a"), {"v2": "disable"})
    assert compare_effective([_dr(spec)], [ok], LIVE_EFFECTIVE) == []
    [d] = compare_effective([_dr(spec)], [_with_tls(proxy("b"), {})], LIVE_EFFECTIVE)
    assert (d.path, d.left, d.right) == ("spec.subsets[v2].trafficPolicy.tls.mode", "DISABLE", "ISTIO_MUTUAL")
    by_port = {"host": HOST, "trafficPolicy": {"portLevelSettings": [
        {"port": {"number": 9080}, "tls": {"mode": "SIMPLE"}}]}, "subsets": SUBSETS}
    [d] = compare_effective([_dr(by_port)], [_with_tls(proxy("c"), {})], LIVE_EFFECTIVE)
    assert (d.path, d.left, d.right) == (
        "spec.trafficPolicy.portLevelSettings[9080].tls.mode", "SIMPLE", "ISTIO_MUTUAL")


def test_no_tls_setting_or_unknown_tls_is_not_compared() -> None:
    dr = _dr({"host": HOST, "subsets": SUBSETS})
    assert compare_effective([dr], [_with_tls(proxy("a"), {"v1": "disable"})], LIVE_EFFECTIVE) == []
    dr = _dr({"host": HOST, "trafficPolicy": {"tls": {"mode": "DISABLE"}}, "subsets": SUBSETS})
    assert compare_effective([dr], [proxy("no-dump")], LIVE_EFFECTIVE) == []  # tls None: no config dump


def test_corpus_istio_1_3_proxy_against_a_disabling_rule(corpus: Path) -> None:
    from meshobs.collectors.envoy.normalize import normalize_proxy
    from meshobs.raw import Payload, RawSource

    raw = RawSource(name="envoy:default/productpage", kind="envoy",
                    meta={"pod": "productpage-v1-7bbd79f8fd-k6j79", "namespace": "default"})
    raw.add(Payload(key="ready", body="LIVE", status=200, url="http://x/ready"))
    body = (corpus / "envoy-config-dump/istio/describe__productpage-v1-7bbd79f8fd-k6j79.json").read_text()
    raw.add(Payload(key="config_dump", body=body, status=200, url="http://x/config_dump"))
    [pp] = normalize_proxy(raw).proxies
    doc = {"apiVersion": NET, "kind": "DestinationRule", "metadata": {"name": "ratings", "namespace": "default"},
           "spec": {"host": "ratings", "trafficPolicy": {"tls": {"mode": "DISABLE"}},
                    "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}
    dr = config_from_object(doc, Layer.LIVE, "test")
    assert dr is not None
    tls = _tls_drifts(compare_effective([dr], [pp], LIVE_EFFECTIVE))
    assert [(d.resource.name, d.path, d.left, d.right, d.proxies) for d in tls] == [
        ("ratings", "spec.trafficPolicy.tls.mode", "DISABLE", "ISTIO_MUTUAL", (pp.id,))]


def _demo(name: str) -> MeshSnapshot:
    return build_snapshot(load_demo(name), origin=f"demo:{name}")


def _live(snap: MeshSnapshot) -> list[ConfigResource]:
    return snap.config_of(layer=Layer.LIVE)


def test_mtls_mismatch_demo_disable_is_what_cart_holds() -> None:
    snap = _demo("mtls-mismatch")
    labels = proxy_labels(snap)
    assert compare_effective(_live(snap), snap.proxies, LIVE_EFFECTIVE, labels) == []
    cart = next(p for p in snap.proxies if p.pod.startswith("cart-v1"))
    assert labels[cart.id]["app"] == "cart-service"
    hacked = replace(cart, clusters=tuple(replace(c, tls="istio_mutual") if c.name == DB else c
                                          for c in cart.clusters))
    proxies = [hacked if p.id == cart.id else p for p in snap.proxies]
    [d] = compare_effective(_live(snap), proxies, LIVE_EFFECTIVE, labels)
    assert (d.resource.name, d.path, d.left, d.right) == (
        "database-service-from-cart", "spec.trafficPolicy.tls.mode", "DISABLE", "ISTIO_MUTUAL")
    assert d.proxies == (cart.id,) and cart.id not in dict(d.extra)["proxies_in_sync"]
    # Another caller of database-service falls under the ISTIO_MUTUAL rule, not cart's.
    front = next(p for p in snap.proxies if p.pod.startswith("frontend-v1"))
    plain = replace(front, clusters=tuple(replace(c, tls="disable") if c.name == DB else c for c in front.clusters))
    [d] = compare_effective(_live(snap), [plain], LIVE_EFFECTIVE, labels)
    assert (d.resource.name, d.left, d.right, d.proxies) == ("database-service", "ISTIO_MUTUAL", "DISABLE", (front.id,))


# -- App Mesh ------------------------------------------------------------------------------------

PRODUCT = "spec.routes[product-service-route].httpRoute"


def _edit_route(p: Proxy, vhost_prefix: str, **changes: Any) -> Proxy:
    return replace(p, routes=tuple(replace(r, **changes) if r.virtual_host.startswith(vhost_prefix) else r
                                   for r in p.routes))


def test_ecommerce_appmesh_demo_is_in_sync() -> None:
    snap = _demo("ecommerce-appmesh")
    assert compare_effective(_live(snap), snap.proxies, LIVE_EFFECTIVE) == []


def test_a_migrations_istio_callers_are_not_held_to_app_mesh_routers() -> None:
    """demo:migration: frontend and product (Istio sidecars) call cart-service (App Mesh) through
    Istio's routes; only App Mesh's Envoys hold what cart-service-router says."""
    snap = _demo("migration")
    assert compare_effective(_live(snap), snap.proxies, LIVE_EFFECTIVE) == []
    cart = next(p for p in snap.proxies if p.pod.startswith("cart-v1"))
    assert cart.node_id and cart.node_id.startswith("mesh/")  # an App Mesh Envoy: still compared
    # cart-v1 calls database-service through database-service-router (no retry policy, so its
    # timeout is App Mesh's default 15 s): a 2 s timeout in cart's Envoy is drift.
    hacked = replace(cart, routes=tuple(replace(r, timeout_s=2.0) for r in cart.routes))
    [d] = compare_effective(_live(snap), [hacked], LIVE_EFFECTIVE)
    assert (d.resource.kind, d.resource.name, d.path, d.left, d.right, d.proxies) == (
        "VirtualRouter", "database-service-router",
        "spec.routes[database-service-route].httpRoute.timeout.perRequest", 15, 2.0, (cart.id,))


def test_appmesh_weight_change_names_router_path_values_and_proxy() -> None:
    snap = _demo("ecommerce-appmesh")
    front = next(p for p in snap.proxies if p.pod.startswith("frontend-v1"))
    half = (RouteDestination("cds_egress_shop_product-v1_http_8080", 50),
            RouteDestination("cds_egress_shop_product-v2_http_8080", 50))
    hacked = _edit_route(front, "product-service.", destinations=half)
    proxies = [hacked if p.id == front.id else p for p in snap.proxies]
    drifts = {d.path: d for d in compare_effective(_live(snap), proxies, LIVE_EFFECTIVE)}
    assert set(drifts) == {f"{PRODUCT}.action.weightedTargets[product-v1].weight",
                           f"{PRODUCT}.action.weightedTargets[product-v2].weight"}
    d = drifts[f"{PRODUCT}.action.weightedTargets[product-v1].weight"]
    assert (d.resource.kind, d.resource.name, d.left, d.right, d.proxies, d.severity) == (
        "VirtualRouter", "product-service-router", 90, 50, (front.id,), Severity.ERROR)
    other = [p.id for p in snap.proxies if p.pod.startswith("frontend-v1") and p.id != front.id]
    assert dict(d.extra)["proxies_in_sync"] == other


def test_appmesh_retry_timeout_and_unknown_target() -> None:
    snap = _demo("ecommerce-appmesh")
    front = next(p for p in snap.proxies if p.pod.startswith("frontend-v1"))
    hacked = _edit_route(front, "cart-service.", timeout_s=15.0, retry_attempts=1, retry_on="5xx,gateway-error",
                         destinations=(RouteDestination("cds_egress_shop_cart-v2_http_8080", 100),))
    drifts = {d.path: d for d in compare_effective(_live(snap), [hacked], LIVE_EFFECTIVE)}
    cart = "spec.routes[cart-service-route].httpRoute"
    assert (drifts[f"{cart}.timeout.perRequest"].left, drifts[f"{cart}.timeout.perRequest"].right) == (5, 15)
    assert drifts[f"{cart}.timeout.perRequest"].severity is Severity.WARNING
    assert (drifts[f"{cart}.retryPolicy.maxRetries"].left, drifts[f"{cart}.retryPolicy.maxRetries"].right) == (3, 1)
    assert drifts[f"{cart}.retryPolicy.retryEvents"].right == "5xx,gateway-error"
    assert drifts[f"{cart}.action.weightedTargets[cart-v1].weight"].right is None
    extra = drifts[f"{cart}.action.weightedTargets[cart-v2]"]
    assert (extra.left, extra.right, extra.category) == (None, {"weight": 100}, "destination")

