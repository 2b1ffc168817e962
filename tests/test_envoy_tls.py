"""Cluster TLS from /config_dump: the transport socket shapes of real Istio, OSM and Envoy dumps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshobs.collectors.envoy.config_dump import parse_config_dump
from meshobs.collectors.envoy.tls import cluster_tls

SDS = {"sds_config": {"ads": {}, "resource_api_version": "V3"}}
TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def _istio_tls(sni: str = "outbound_.8080_._.db.shop.svc.cluster.local") -> dict[str, Any]:
    """Istio 1.2x's ISTIO_MUTUAL socket: SDS "default" certificate, SDS "ROOTCA" validation."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS_TYPE, "sni": sni, "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "default", **SDS}],
            "combined_validation_context": {"default_validation_context": {},
                                            "validation_context_sds_secret_config": {"name": "ROOTCA", **SDS}}}}}


RAW = {"name": "envoy.transport_sockets.raw_buffer",
       "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}


@pytest.mark.parametrize(("cluster", "mode"), [
    ({"name": "c"}, "disable"),
    ({"name": "c", "transport_socket": _istio_tls()}, "istio_mutual"),
    ({"name": "c", "transport_socket_matches": [
        {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": _istio_tls()},
        {"name": "tlsMode-disabled", "match": {}, "transport_socket": RAW}]}, "istio_mutual"),
    ({"name": "c", "transport_socket_matches": [{"name": "tlsMode-disabled", "match": {}, "transport_socket": RAW}]},
     "disable"),
    ({"name": "c", "transport_socket": RAW}, "disable"),
    ({"name": "c", "transportSocket": {"name": "envoy.transport_sockets.tls", "typedConfig": {
        "@type": TLS_TYPE, "commonTlsContext": {"tlsCertificateSdsSecretConfigs": [{"name": "file-cert:/c.pem"}]}}}},
     "mutual"),
    ({"name": "c", "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS_TYPE, "sni": "api.example.com"}}}, "simple"),
    ({"name": "c", "transport_socket": {"name": "envoy.transport_sockets.tap", "typed_config": {
        "transport_socket": _istio_tls()}}}, "istio_mutual"),
    ({"name": "c", "transport_socket": {"name": "vendor.unknown", "typed_config": {}}}, None),
])
def test_transport_socket_shapes(cluster: dict[str, Any], mode: str | None) -> None:
    assert cluster_tls(cluster) == mode


def _clusters(path: Path) -> dict[str, str | None]:
    return parse_config_dump(path.read_text(encoding="utf-8")).cluster_tls


def test_istio_1_3_v2_tls_context(corpus: Path) -> None:
    """Envoy 1.12 / Istio 1.3: ``tls_context`` on the cluster, file certificates, ALPN istio."""
    tls = _clusters(corpus / "envoy-config-dump/istio/describe__productpage-v1-7bbd79f8fd-k6j79.json")
    assert tls["outbound|9080|v1|reviews.default.svc.cluster.local"] == "istio_mutual"
    assert tls["outbound|9080||details.default.svc.cluster.local"] == "istio_mutual"
    assert tls["outbound|15004||istio-telemetry.istio-system.svc.cluster.local"] == "disable"
    assert sum(v == "istio_mutual" for v in tls.values()) == 16


def test_v3_tls_of_other_meshes(corpus: Path) -> None:
    osm = _clusters(corpus / "envoy-config-dump/osm/curl_egress.json")
    assert osm["httpbin/httpbin|14001"] == "mutual"  # OSM: SDS service cert, not Istio's "default"
    kuma = _clusters(corpus / "envoy-config-dump/kuma/full_config.json")
    assert kuma["ads_cluster"] == "simple"  # validates the control plane, presents no certificate
    waypoint = _clusters(corpus / "envoy-config-dump/istio/proxyconfig__config_dump.json")
    assert waypoint["inbound-vip|8000|http|httpbin.default.svc.cluster.local"] == "disable"  # internal raw_buffer


def test_proxy_cluster_carries_tls(corpus: Path) -> None:
    from meshobs.collectors.envoy.normalize import normalize_proxy
    from meshobs.raw import Payload, RawSource

    raw = RawSource(name="envoy:default/productpage", kind="envoy", meta={"pod": "productpage", "namespace": "default"})
    raw.add(Payload(key="ready", body="LIVE", status=200, url="http://x/ready"))
    body = (corpus / "envoy-config-dump/istio/describe__productpage-v1-7bbd79f8fd-k6j79.json").read_text()
    raw.add(Payload(key="config_dump", body=body, status=200, url="http://x/config_dump"))
    [proxy] = normalize_proxy(raw).proxies
    c = proxy.cluster("outbound|9080|v2|ratings.default.svc.cluster.local")
    assert c is not None and c.tls == "istio_mutual"


def test_demo_renders_real_shapes() -> None:
    """The mtls-mismatch demo: cart's rules say DISABLE, so its clusters hold no TLS socket."""
    from meshobs.collect import build_snapshot
    from meshobs.demo.catalog import load_demo

    snap = build_snapshot(load_demo("mtls-mismatch"))
    cart = next(p for p in snap.proxies if p.pod.startswith("cart-v1"))
    front = next(p for p in snap.proxies if p.pod.startswith("frontend-v1"))
    db = "outbound|8080||database-service.shop.svc.cluster.local"
    assert cart.cluster(db).tls == "disable"  # type: ignore[union-attr]
    assert front.cluster(db).tls == "istio_mutual"  # type: ignore[union-attr]
