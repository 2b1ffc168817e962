"""Configuration checks: a table of (snapshot, target) -> expected (code, subject) pairs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from meshobs.checks.config_routes import chi_square_p
from meshobs.model import Layer, MeshSnapshot, ServiceRef
from tests.support.e2_builders import (
    dr,
    edge,
    envoy_route,
    healthy_config,
    healthy_edges,
    pairs,
    resource,
    run,
    snapshot,
    split_route,
    svc,
    vs,
)

PRODUCT = svc("product-service")
FRONT_ROUTES = {"frontend-v1": [envoy_route({"v1": 90, "v2": 10})]}


def _replace(config: list, kind: str, name: str, new: dict) -> list:  # type: ignore[type-arg]
    return [new if (c["kind"], c["metadata"]["name"]) == (kind, name) else c for c in config] + (
        [] if any((c["kind"], c["metadata"]["name"]) == (kind, name) for c in config) else [new])


def split_edges(v1: float, v2: float) -> list:  # type: ignore[type-arg]
    others = [e for e in healthy_edges() if e.destination != PRODUCT]
    return [*others, edge("frontend-v1", "product-v1", v1), edge("frontend-v1", "product-v2", v2)]


def corpus_subset_case(corpus: Path) -> MeshSnapshot:
    docs = [d for d in yaml.safe_load_all((corpus / "istio-config/kiali/subset-presence-no-matching-subsets-1.yaml")
                                          .read_text()) if d and d["kind"] != "Namespace"]
    return snapshot(config=[resource(d) for d in docs], edges=[], routes={})


CASES: list[tuple[str, Callable[..., MeshSnapshot], ServiceRef, set[tuple[str, str]]]] = [
    ("healthy product", lambda c: snapshot(routes=FRONT_ROUTES), PRODUCT, set()),
    ("healthy cart", lambda c: snapshot(routes=FRONT_ROUTES), svc("cart-service"), set()),
    ("healthy database", lambda c: snapshot(routes=FRONT_ROUTES), svc("database-service"), set()),
    ("undefined subset", lambda c: snapshot(
        config=_replace(healthy_config(), "VirtualService", "product-service",
                        vs("product-service", [split_route({"v1": 90, "v3": 10})])), edges=[]),
     PRODUCT, {("MSH0201", "VirtualService shop/product-service")}),
    # Both rules lack a match, so the second one is never used either (istioctl: IST0130).
    ("kiali corpus: subsets not-v1/not-v2", corpus_subset_case, ServiceRef("bookinfo", "reviews"),
     {("MSH0201", "VirtualService bookinfo/reviews-vs"), ("MSH0220", "VirtualService bookinfo/reviews-vs")}),
    ("subset selects no pods", lambda c: snapshot(
        config=_replace(healthy_config(), "DestinationRule", "product-service",
                        dr("product-service", "product-service",
                           {"v1": {"version": "v1"}, "v2": {"version": "v2"}, "v3": {"version": "v3"}})),
        routes=FRONT_ROUTES),
     PRODUCT, {("MSH0202", "DestinationRule shop/product-service")}),
    ("Envoy weights drifted from the VirtualService", lambda c: snapshot(
        routes={"frontend-v1": [envoy_route({"v1": 50, "v2": 50})]}),
     PRODUCT, {("MSH0203", "VirtualService shop/product-service")}),
    ("Envoy timeout differs", lambda c: snapshot(
        routes={"frontend-v1": [envoy_route({"v1": 90, "v2": 10}, timeout_s=15.0)]}),
     PRODUCT, {("MSH0204", "VirtualService shop/product-service")}),
    ("Envoy retries differ", lambda c: snapshot(
        routes={"frontend-v1": [envoy_route({"v1": 90, "v2": 10}, retry_attempts=5)]}),
     PRODUCT, {("MSH0204", "VirtualService shop/product-service")}),
    ("observed 50/50 vs configured 90/10", lambda c: snapshot(routes=FRONT_ROUTES, edges=split_edges(18.0, 18.0)),
     PRODUCT, {("MSH0205", "Service shop/product-service")}),
    ("drift and observed split together", lambda c: snapshot(
        routes={"frontend-v1": [envoy_route({"v1": 50, "v2": 50})]}, edges=split_edges(18.0, 18.0)),
     PRODUCT, {("MSH0203", "VirtualService shop/product-service"), ("MSH0205", "Service shop/product-service")}),
    ("split within statistical noise", lambda c: snapshot(routes=FRONT_ROUTES, edges=split_edges(32.4, 3.9)),
     PRODUCT, set()),
    ("tiny mesh: 50/50 on 60 requests is not significant", lambda c: snapshot(
        routes=FRONT_ROUTES, edges=split_edges(0.1, 0.1)), PRODUCT, set()),
    ("two VirtualServices for one host", lambda c: snapshot(
        config=[*healthy_config(), vs("product-canary", [split_route({"v2": 100})],
                                      hosts=["product-service.shop.svc.cluster.local"])],
        routes=FRONT_ROUTES),
     PRODUCT, {("MSH0206", "Service shop/product-service")}),
    ("live VirtualService hand-edited away from Git", lambda c: snapshot(
        config=[*healthy_config(), resource(vs("product-service", [split_route(
            {"v1": 90, "v2": 10}, timeout="10s", retries={"attempts": 3, "perTryTimeout": "3s"})]),
            layer=Layer.INTENDED, origin="git:shop/product-vs.yaml")],
        routes=FRONT_ROUTES),
     # Git (the intended layer) covers namespace shop and lacks the DestinationRule: drift's rule.
     PRODUCT, {("MSH0207", "VirtualService shop/product-service"),
               ("MSH0285", "DestinationRule shop/product-service")}),
]


@pytest.mark.parametrize(("name", "build", "target", "expected"), CASES, ids=[c[0] for c in CASES])
def test_config_grid(corpus: Path, name: str, build: Callable[..., MeshSnapshot], target: ServiceRef,
                     expected: set[tuple[str, str]]) -> None:
    findings = run(build(corpus), target, prefixes=("config.",))
    assert pairs(findings) == expected


def test_kiali_corpus_names_both_missing_subsets(corpus: Path) -> None:
    findings = run(corpus_subset_case(corpus), ServiceRef("bookinfo", "reviews"), prefixes=("config.unknown",))
    assert sorted(f.evidence["subset"] for f in findings) == ["not-v1", "not-v2"]
    assert all(list(f.evidence["defined_subsets"]) == ["v1", "v2"] for f in findings)


def test_weight_drift_evidence_names_the_numbers_and_the_proxies() -> None:
    snap = snapshot(routes={"frontend-v1": [envoy_route({"v1": 50, "v2": 50})],
                            "cart-v1": [envoy_route({"v1": 90, "v2": 10})]})
    found = run(snap, PRODUCT, prefixes=("config.weight",))
    host = "product-service.shop.svc.cluster.local"
    weights = {f.evidence["path"]: (f.evidence["live"], f.evidence["effective"]) for f in found}
    assert weights == {f"spec.http[0].route[{host}|v1].weight": (90, 50),
                       f"spec.http[0].route[{host}|v2].weight": (10, 50)}
    assert all(list(f.evidence["proxies"]) == ["frontend-v1-0.shop"] for f in found)
    assert all(list(f.evidence["proxies_in_sync"]) == ["cart-v1-0.shop"] for f in found)
    assert {f.fields["proxies"] for f in found} == {"shop/frontend-v1 (1 proxy)"}


def test_a_retry_policy_envoy_holds_as_its_own_conditions_is_no_drift() -> None:
    """Issue 10: ``retryOn: 5xx,503`` reaches Envoy as ``5xx,retriable-status-codes`` (Istio moves
    status codes out of retry_on): the same policy, for diagnose as for drift."""
    retries = {"attempts": 2, "perTryTimeout": "3s", "retryOn": "5xx,503"}
    config = [vs("product-service", [split_route({"v1": 90, "v2": 10}, timeout="10s", retries=retries)]),
              *healthy_config()[1:]]
    same = envoy_route({"v1": 90, "v2": 10}, retry_on="5xx,retriable-status-codes")
    assert run(snapshot(config=config, routes={"frontend-v1": [same]}), PRODUCT, prefixes=("config.",)) == []
    other = envoy_route({"v1": 90, "v2": 10}, retry_on="5xx")
    [f] = run(snapshot(config=config, routes={"frontend-v1": [other]}), PRODUCT, prefixes=("config.",))
    assert (f.code, f.evidence["path"], f.evidence["live"], f.evidence["effective"]) == (
        "MSH0204", "spec.http[0].retries.retryOn", "5xx,retriable-status-codes", "5xx")


def test_split_mismatch_counts_requests_over_the_window() -> None:
    [f] = run(snapshot(routes=FRONT_ROUTES, edges=split_edges(18.0, 18.0)), PRODUCT, prefixes=("config.split",))
    assert f.evidence["observed_requests"] == {"v1": 5400.0, "v2": 5400.0}
    assert f.evidence["configured_percent"] == {"v1": 90.0, "v2": 10.0}
    assert f.evidence["p_value"] < 1e-9


def test_chi_square_p_values_match_known_tail_probabilities() -> None:
    # chi2(df=1) = 3.841 -> p = 0.05; chi2(df=2) = 5.991 -> p = 0.05; df=3, 11.345 -> 0.01
    _, p = chi_square_p({"a": 50 + 9.8, "b": 50 - 9.8}, {"a": 0.5, "b": 0.5})  # stat = 3.8416
    assert p == pytest.approx(0.05, abs=5e-4)
    stat, p = chi_square_p({"a": 40, "b": 30, "c": 30}, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert stat == pytest.approx(2.0) and p == pytest.approx(0.367879, abs=1e-5)  # exp(-1) for df=2
    _, p = chi_square_p({"a": 10, "b": 5}, {"a": 1.0, "b": 0.0})
    assert p == 0.0


def test_no_sidecar_routes_means_no_drift_findings() -> None:
    snap = snapshot(routes={}, edges=[])
    assert run(snap, PRODUCT, prefixes=("config.weight", "config.policy")) == []


def test_gateway_only_virtualservice_is_not_a_sidecar_duplicate() -> None:
    gw_vs = vs("product-public", [split_route({"v1": 100})], hosts=["product-service"], gateways=["shop-gateway"])
    assert run(snapshot(config=[*healthy_config(), gw_vs], routes=FRONT_ROUTES), PRODUCT,
               prefixes=("config.duplicate",)) == []
