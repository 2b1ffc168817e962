"""What `istioctl proxy-config listeners|clusters` shows, read from real config dumps: listener
addresses, directions, filter-chain matches and destinations; cluster discovery types,
circuit-breaker thresholds, outlier detection and the Istio resource behind a cluster."""

from __future__ import annotations

from pathlib import Path

from meshobs.collect import build_snapshot
from meshobs.collectors.envoy.config_dump import parse_config_dump
from meshobs.demo.catalog import load_demo
from meshobs.model import thaw

PRODUCTPAGE = "envoy-config-dump/istio/describe__productpage-v1-7bbd79f8fd-k6j79.json"
OSM = "envoy-config-dump/osm/sample-envoy-config-dump-bookstore.json"
GATEWAY = "envoy-config-dump/envoy-gateway/in.all.json"


def dump(corpus: Path, path: str):  # type: ignore[no-untyped-def]
    return parse_config_dump((corpus / path).read_text())


def test_listeners_of_an_istio_1_3_sidecar(corpus: Path) -> None:
    d = dump(corpus, PRODUCTPAGE)
    by_name = {lst.name: lst for lst in d.listener_details}
    assert len(by_name) == len(d.listeners) == 52
    outbound = by_name["0.0.0.0_9080"]
    assert (outbound.address, outbound.port, outbound.direction, outbound.state) == \
        ("0.0.0.0", 9080, "OUTBOUND", "active")
    # The pod's own address goes to the black hole; everything else by route configuration 9080.
    assert [c.destination for c in outbound.chains] == ["Cluster: BlackHoleCluster", "Route: 9080"]
    assert thaw(outbound.chains[0].match)["prefix_ranges"][0] == {"address_prefix": "172.30.150.216",
                                                                 "prefix_len": 32}
    inbound = by_name["172.30.150.216_9080"]
    assert inbound.direction == "INBOUND"
    assert thaw(inbound.chains[0].match) == {"application_protocols": ["istio"]}
    assert inbound.chains[0].destination == "Inline Route: /*"
    kubernetes = by_name["172.21.0.1_443"].chains[0]
    assert kubernetes.destination == "Cluster: outbound|443||kubernetes.default.svc.cluster.local"
    assert by_name["0.0.0.0_15090"].state == "static"  # the bootstrap's Prometheus listener, named as Istio does


def test_listener_matches_and_rds_names_of_other_meshes(corpus: Path) -> None:
    osm = {lst.name: lst for lst in dump(corpus, OSM).listener_details}
    inbound = osm["inbound-listener"]
    match = thaw(inbound.chains[0].match)
    assert match["destination_port"] == 14001 and match["transport_protocol"] == "tls"
    assert osm["outbound-listener"].chains[0].destination == "Route: rds-outbound"
    gateway = dump(corpus, GATEWAY).listener_details
    # A listener with only a default filter chain still says where it sends.
    assert [(g.name, g.port, [c.destination for c in g.chains]) for g in gateway] == \
        [("default-eg-http", 10080, ["Route: default-eg-http"])]


def test_cluster_settings_of_an_istio_1_3_sidecar(corpus: Path) -> None:
    settings = dump(corpus, PRODUCTPAGE).cluster_settings
    telemetry = settings["outbound|15004||istio-telemetry.istio-system.svc.cluster.local"]
    assert telemetry["discovery"] == "EDS"
    assert dict(telemetry["thresholds"]) == {"max_requests": 10000, "max_retries": 1024}
    assert telemetry["config_source"] == "DestinationRule istio-system/istio-telemetry"
    kinds = {s["discovery"] for s in settings.values()}
    assert {"EDS", "ORIGINAL_DST", "STATIC", "STRICT_DNS"} <= kinds


def test_the_model_carries_them_through_normalisation() -> None:
    snapshot = build_snapshot(load_demo("ecommerce"))
    cart = next(p for p in snapshot.proxies if p.pod.startswith("cart-v1-"))
    db = cart.cluster("outbound|8080||database-service.shop.svc.cluster.local")
    assert db is not None and db.discovery == "EDS"
    # The demo's DestinationRule for the database ejects after 5 consecutive 5xx (outlierDetection).
    assert thaw(db.outlier_detection)["consecutive_5xx"] >= 1
    assert db.config_source is not None and db.config_source.startswith("DestinationRule shop/")
    assert {"max_connections", "max_pending_requests", "max_requests"} <= set(db.thresholds)
    assert cart.listener_details and len(cart.listener_details) == len(cart.listeners)
