"""The demo's payloads are the real shapes, and each scenario's fault is where it should be."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from functools import cache
from typing import Any

from cryptography import x509

from meshobs.bundle import Bundle, read_bundle
from meshobs.demo.build import BUNDLES
from meshobs.raw import RawSource

ADMIN = "type.googleapis.com/envoy.admin.v3."
DB_CLUSTER = "outbound|8080||database-service.shop.svc.cluster.local"


@cache
def bundle(name: str) -> Bundle:
    return read_bundle(BUNDLES / f"{name}.tar.gz")


def body(raw: RawSource, key: str) -> Any:
    payload = raw.get(key)
    assert payload is not None, f"{raw.name}: no {key}"
    return payload.json()


def proxies(name: str, workload: str) -> list[RawSource]:
    found = [s for s in bundle(name).sources if s.kind == "envoy" and s.meta["workload"] == workload]
    assert found, workload
    return found


def stats(raw: RawSource) -> dict[str, int]:
    return {s["name"]: s["value"] for s in body(raw, "stats")["stats"]}


def config(raw: RawSource, kind: str) -> dict[str, Any]:
    return next(c for c in body(raw, "config_dump")["configs"] if c["@type"] == ADMIN + kind)


def kube(name: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body(bundle(name).sources[0], key)["items"]
    return items


def test_pod_list_has_the_real_shape() -> None:
    pods = kube("ecommerce", "pods")
    cart = next(p for p in pods if p["metadata"]["name"].startswith("cart-v1-"))
    owner = cart["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet" and owner["name"].startswith("cart-v1-")
    assert [c["name"] for c in cart["spec"]["containers"]] == ["cart-service", "istio-proxy"]
    assert cart["spec"]["serviceAccountName"] == "cart-service"
    assert cart["status"]["phase"] == "Running" and cart["status"]["podIP"].startswith("10.244.")
    assert all(s["ready"] and s["restartCount"] == 0 for s in cart["status"]["containerStatuses"])
    assert {"type": "Ready", "status": "True"}.items() <= next(
        c for c in cart["status"]["conditions"] if c["type"] == "Ready").items()
    deployments = {d["metadata"]["name"] for d in kube("ecommerce", "deployments")}
    assert {"frontend-v1", "product-v1", "product-v2", "cart-v1", "database-v1"} <= deployments


def test_envoy_payloads_have_the_real_shapes() -> None:
    raw = proxies("healthy", "frontend-v1")[0]
    assert raw.get("ready").body == "LIVE\n"  # type: ignore[union-attr]
    info = body(raw, "server_info")
    assert info["version"].split("/")[1].startswith("1.3") and info["state"] == "LIVE"
    assert info["node"]["id"].startswith("sidecar~10.244.") and info["node"]["id"].endswith(
        f"~{raw.meta['pod']}.shop~shop.svc.cluster.local")
    types = [c["@type"].removeprefix(ADMIN) for c in body(raw, "config_dump")["configs"]]
    assert types == ["BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump",
                     "ScopedRoutesConfigDump", "RoutesConfigDump", "SecretsConfigDump"]
    status = {c["name"]: c for c in body(raw, "clusters")["cluster_statuses"]}
    host = status[DB_CLUSTER]["host_statuses"][0]
    assert host["health_status"] == {"eds_health_status": "HEALTHY"}
    assert host["address"]["socket_address"]["port_value"] == 8080
    secrets = config(raw, "SecretsConfigDump")["dynamic_active_secrets"]
    assert [s["name"] for s in secrets] == ["default", "ROOTCA"]
    assert secrets[0]["secret"]["tls_certificate"]["private_key"] == {"inline_bytes": "W3JlZGFjdGVkXQ=="}


def test_healthy_has_no_fault_signals() -> None:
    b = bundle("healthy")
    for raw in (s for s in b.sources if s.kind == "envoy"):
        s = stats(raw)
        assert not any(v for k, v in s.items() if k.endswith(("ejections_active", "upstream_cx_none_healthy",
                                                              "upstream_rq_5xx", "upstream_rq_pending_overflow")))
        assert s["control_plane.connected_state"] == 1
    prom = next(s for s in b.sources if s.kind == "prometheus")
    for p in prom.payloads:
        for r in p.json()["result"]:
            assert not r["metric"].get("response_code", "200").startswith("5")


def test_ecommerce_database_ejected_on_cart_proxies_only() -> None:
    for raw in proxies("ecommerce", "cart-v1"):
        s = stats(raw)
        assert s[f"cluster.{DB_CLUSTER}.membership_healthy"] == 0
        assert s[f"cluster.{DB_CLUSTER}.membership_total"] == 2
        assert s[f"cluster.{DB_CLUSTER}.outlier_detection.ejections_active"] == 2
        assert s[f"cluster.{DB_CLUSTER}.upstream_cx_none_healthy"] > 0
        hosts = next(c for c in body(raw, "clusters")["cluster_statuses"] if c["name"] == DB_CLUSTER)
        assert all(h["health_status"]["failed_outlier_check"] for h in hosts["host_statuses"])
        cluster = next(c["cluster"] for c in config(raw, "ClustersConfigDump")["dynamic_active_clusters"]
                       if c["cluster"]["name"] == DB_CLUSTER)
        assert cluster["outlier_detection"]["consecutive_5xx"] == 5
    for raw in proxies("ecommerce", "product-v1"):
        assert stats(raw)[f"cluster.{DB_CLUSTER}.membership_healthy"] == 2


def _route(raw: RawSource, vhost_prefix: str, name: str) -> dict[str, Any]:
    for rc in config(raw, "RoutesConfigDump")["dynamic_route_configs"]:
        for vh in rc["route_config"]["virtual_hosts"]:
            if vh["name"].startswith(vhost_prefix):
                return next(r for r in vh["routes"] if r["name"] == name)
    raise AssertionError(name)


def test_weight_drift_frontend_routes_50_50_while_others_follow_the_virtual_service() -> None:
    for raw in proxies("weight-drift", "frontend-v1"):
        clusters = _route(raw, "product-service.", "canary-split")["route"]["weighted_clusters"]["clusters"]
        assert [c["weight"] for c in clusters] == [50, 50]
    gateway_view = _route(proxies("weight-drift", "cart-v1")[0], "product-service.", "canary-split")
    assert [c["weight"] for c in gateway_view["route"]["weighted_clusters"]["clusters"]] == [90, 10]
    header = _route(proxies("weight-drift", "frontend-v1")[0], "product-service.", "canary-header")
    assert header["match"]["headers"] == [{"name": "canary", "string_match": {"exact": "true"}}]
    retry = _route(proxies("weight-drift", "frontend-v1")[0], "cart-service.", "default")["route"]
    assert retry["retry_policy"]["num_retries"] == 10 and retry["timeout"] == "5s"


def test_mtls_mismatch_config() -> None:
    pas = {p["metadata"]["name"]: p for p in kube("mtls-mismatch", "crd/security.istio.io/v1/peerauthentications")}
    assert pas["database-service"]["spec"]["mtls"]["mode"] == "STRICT"
    drs = {d["metadata"]["name"]: d for d in kube("mtls-mismatch", "crd/networking.istio.io/v1/destinationrules")}
    assert drs["database-service-from-cart"]["spec"]["trafficPolicy"]["tls"]["mode"] == "DISABLE"
    cart = proxies("mtls-mismatch", "cart-v1")[0]
    cluster = next(c["cluster"] for c in config(cart, "ClustersConfigDump")["dynamic_active_clusters"]
                   if c["cluster"]["name"] == DB_CLUSTER)
    assert "transport_socket" not in cluster and "transport_socket_matches" not in cluster
    product = proxies("mtls-mismatch", "product-v1")[0]
    cluster = next(c["cluster"] for c in config(product, "ClustersConfigDump")["dynamic_active_clusters"]
                   if c["cluster"]["name"] == DB_CLUSTER)
    assert cluster["transport_socket"]["name"] == "envoy.transport_sockets.tls"


def _leaf(raw: RawSource) -> x509.Certificate:
    chain = config(raw, "SecretsConfigDump")["dynamic_active_secrets"][0]["secret"]["tls_certificate"]
    pem = base64.b64decode(chain["certificate_chain"]["inline_bytes"])
    return x509.load_pem_x509_certificates(pem)[0]


def test_cert_expiry_cart_cert_ends_two_hours_after_the_scenario_time() -> None:
    b = bundle("cert-expiry")
    for raw in (s for s in b.sources if s.kind == "envoy"):
        cert = _leaf(raw)
        remaining = cert.not_valid_after_utc - b.time
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert lifetime == timedelta(hours=24)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uri = san.get_values_for_type(x509.UniformResourceIdentifier)[0]
        if raw.meta["workload"] == "cart-v1":
            assert remaining == timedelta(hours=2)
            assert uri == "spiffe://cluster.local/ns/shop/sa/cart-service"
            listed = body(raw, "certs")["certificates"][0]["cert_chain"][0]
            assert listed["days_until_expiration"] == "0"
            assert listed["subject_alt_names"] == [{"uri": uri}]
        else:
            assert remaining > timedelta(hours=12)


def _spans(name: str, service: str) -> list[dict[str, Any]]:
    raw = next(s for s in bundle(name).sources if s.kind == "jaeger")
    doc = body(raw, f"traces/{service}")
    return [s for rs in doc["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
            if rs["resource"]["attributes"][0]["value"]["stringValue"] == service]


def _ms(span: dict[str, Any]) -> float:
    return (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6


def test_slow_db_traces_show_a_slow_select_span() -> None:
    slow = sorted(_ms(s) for s in _spans("slow-db", "database-service.shop") if s["name"] == "SELECT")
    fast = sorted(_ms(s) for s in _spans("healthy", "database-service.shop") if s["name"] == "SELECT")
    assert len(slow) >= 20 and len(fast) >= 20
    assert slow[len(slow) // 2] > 100 > 10 > fast[len(fast) // 2]


def test_traces_pair_client_and_server_spans_per_hop() -> None:
    spans = _spans("ecommerce", "cart-service.shop")
    server = [s for s in spans if s["kind"] == 2]
    client = [s for s in spans if s["kind"] == 3]
    assert server and client
    attrs = {a["key"]: a["value"]["stringValue"] for a in client[0]["attributes"]}
    assert attrs["node_id"].startswith("sidecar~") and attrs["upstream_cluster"].startswith("outbound|8080|")
    failed = [s for s in client if s["status"].get("code") == 2]
    flags = {a["value"]["stringValue"] for s in failed for a in s["attributes"] if a["key"] == "response_flags"}
    assert "UH" in flags  # cart -> database fails with no healthy upstream


def test_canary_errors_only_on_product_v2() -> None:
    prom = next(s for s in bundle("canary-errors").sources if s.kind == "prometheus")
    bad = {r["metric"].get("destination_workload") for p in prom.payloads for r in p.json()["result"]
           if r["metric"].get("response_code", "").startswith("5")}
    assert bad == {"product-v2"}


def test_jaeger_services_and_dependencies() -> None:
    raw = next(s for s in bundle("ecommerce").sources if s.kind == "jaeger")
    services = body(raw, "services")["services"]
    assert {"frontend.shop", "cart-service.shop", "database-service.shop"} <= set(services)
    deps = {(d["parent"], d["child"]) for d in body(raw, "dependencies")["data"]}
    assert ("cart-service.shop", "database-service.shop") in deps
    assert json.loads(raw.get("services").body) == {"services": services}  # type: ignore[union-attr]
