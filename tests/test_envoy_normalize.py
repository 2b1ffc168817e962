"""Envoy normalisation over the real corpus payloads (no network)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.collectors.base import NormalizeContext
from meshobs.collectors.envoy import normalize
from meshobs.collectors.envoy.stats import parse_stats
from meshobs.model import CertRole, SnapshotPart, SourceState
from meshobs.raw import Payload, RawSource

_SHARED = Path(os.environ.get("MESHOBS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
_CORPUS = _SHARED / "corpus"
CTX = NormalizeContext(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300)
PRODUCTPAGE = "envoy-config-dump/istio/describe__productpage-v1-7bbd79f8fd-k6j79.json"
REVIEWS = "outbound|9080||reviews.default.svc.cluster.local"


def _listing(kind: str) -> list[str]:
    root = _CORPUS / kind
    return sorted(str(p.relative_to(_CORPUS)) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def proxy_raw(**bodies: str) -> RawSource:
    """A reachable proxy (``/ready`` LIVE) with the given payload bodies, all HTTP 200."""
    raw = RawSource("envoy:default/productpage-v1-7bbd79f8fd-k6j79", "envoy",
                    meta={"namespace": "default", "pod": "productpage-v1-7bbd79f8fd-k6j79",
                          "url": "http://127.0.0.1:15000"})
    raw.add(Payload("ready", body="LIVE\n", status=200, url="http://127.0.0.1:15000/ready"))
    for key, body in bodies.items():
        raw.add(Payload(key, body=body, status=200, url=f"http://127.0.0.1:15000/{key}"))
    return raw


def run(**bodies: str) -> SnapshotPart:
    return normalize(proxy_raw(**bodies), CTX)


@pytest.mark.parametrize("rel", _listing("envoy-config-dump"))
def test_every_config_dump_normalises(corpus: Path, rel: str) -> None:
    part = run(config_dump=(corpus / rel).read_text())
    assert len(part.proxies) == 1
    # Only the endpoints we did not serve are listed as missing; the dump itself parsed.
    assert "config_dump" not in part.sources[0].message


@pytest.mark.parametrize("rel", _listing("envoy-clusters"))
def test_every_clusters_file_normalises(corpus: Path, rel: str) -> None:
    part = run(clusters=(corpus / rel).read_text())
    assert part.proxies[0].clusters
    assert "clusters" not in part.sources[0].message.replace("clusters (", "")


@pytest.mark.parametrize("rel", _listing("envoy-stats"))
def test_every_stats_file_normalises(corpus: Path, rel: str) -> None:
    part = run(stats=(corpus / rel).read_text())
    assert part.proxies[0].clusters
    assert "stats:" not in part.sources[0].message


def test_corpus_listing_is_not_empty() -> None:
    assert len(_listing("envoy-config-dump")) >= 11 and _listing("envoy-clusters") and _listing("envoy-stats")


def test_istio_1_12_dump_versions_clusters_and_routes(corpus: Path) -> None:
    proxy = run(config_dump=(corpus / PRODUCTPAGE).read_text()).proxies[0]
    assert proxy.id == "productpage-v1-7bbd79f8fd-k6j79.default"
    assert str(proxy.workload) == "default/productpage-v1"
    assert proxy.envoy_version == "1.12.0-dev"
    assert proxy.xds_version("cds").version == "2019-09-10T20:22:19Z/15"
    assert proxy.xds_version("lds").version == "2019-09-11T17:00:00Z/20"
    rds = proxy.xds_version("rds")
    assert rds.version == "2019-09-11T17:00:00Z/20"
    assert rds.last_updated == datetime(2019, 9, 11, 17, 0, 0, 597000, tzinfo=UTC)
    reviews = proxy.cluster(REVIEWS)
    assert (reviews.direction, reviews.port, reviews.subset, reviews.service_host) == (
        "outbound", 9080, None, "reviews.default.svc.cluster.local")
    assert reviews.version == "2019-09-10T20:22:19Z/15"
    route = next(r for r in proxy.routes if r.route_config == "reviews.default.svc.cluster.local:9080"
                 and r.virtual_host == "reviews.default.svc.cluster.local:9080")
    assert [(d.cluster, d.weight) for d in route.destinations] == [(REVIEWS, 100)]
    assert route.timeout_s == 0.0  # Istio writes "0s": timeout disabled
    assert route.retry_attempts == 2
    assert route.retry_on is not None and "connect-failure" in route.retry_on.split(",")
    assert "reviews" in {r.match.get("prefix") and r.virtual_host.split(".")[0] for r in proxy.routes}
    assert len(proxy.listeners) == 52


def test_weighted_clusters_from_osm_dump(corpus: Path) -> None:
    proxy = run(config_dump=(corpus / "envoy-config-dump/osm/sample-envoy-config-dump-bookstore.json")
                .read_text()).proxies[0]
    split = [r for r in proxy.routes if len(r.destinations) == 2]
    assert split
    assert {(d.cluster, d.weight) for d in split[0].destinations} == {
        ("bookstore/bookstore-v1", 50), ("bookstore/bookstore-v2", 50)}


def test_weights_wrapped_in_value_objects_and_durations() -> None:
    action = {"timeout": {"seconds": 2, "nanos": 500000000},
              "weighted_clusters": {"clusters": [
                  {"name": "outbound|80|v1|cart", "weight": {"value": 90}},
                  {"name": "outbound|80|v2|cart", "weight": {"value": 10}}]}}
    vhost = {"name": "cart:80", "domains": ["cart"], "retry_policy": {"num_retries": {"value": 3}},
             "routes": [{"match": {"prefix": "/"}, "route": action}]}
    dump = {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                         "dynamic_route_configs": [{
                             "version_info": "7", "last_updated": "2024-01-01T00:00:00Z",
                             "route_config": {"name": "80", "virtual_hosts": [vhost]}}]}]}
    proxy = run(config_dump=json.dumps(dump)).proxies[0]
    route = proxy.routes[0]
    assert [(d.cluster, d.weight) for d in route.destinations] == [("outbound|80|v1|cart", 90),
                                                                   ("outbound|80|v2|cart", 10)]
    assert route.timeout_s == 2.5
    assert route.retry_attempts == 3  # inherited from the virtual host
    assert proxy.xds_version("rds").version == "7"


def test_old_v2alpha_section_types_and_listener_shape(corpus: Path) -> None:
    doc = json.loads((corpus / PRODUCTPAGE).read_text())
    for cfg in doc["configs"]:
        cfg["@type"] = cfg["@type"].replace("envoy.admin.v3", "envoy.admin.v2alpha")
        if cfg["@type"].endswith("ListenersConfigDump"):
            # Envoy 1.12's own shape: dynamic_active_listeners[] of {version_info, listener, last_updated}
            cfg["dynamic_active_listeners"] = [s["active_state"] for s in cfg.pop("dynamic_listeners")]
    proxy = run(config_dump=json.dumps(doc)).proxies[0]
    assert proxy.xds_version("cds").version == "2019-09-10T20:22:19Z/15"
    assert proxy.xds_version("lds").version == "2019-09-11T17:00:00Z/20"
    assert len(proxy.listeners) == 52
    assert proxy.cluster(REVIEWS) is not None


def _openssl_enddate(pem: bytes) -> datetime | None:
    if shutil.which("openssl") is None:
        return None
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem, capture_output=True,
                         check=True, timeout=10).stdout.decode()
    return datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)


def test_istio_sds_certs(corpus: Path) -> None:
    text = (corpus / "envoy-config-dump/istio/configdump-secret-istio__config_dump.json").read_text()
    part = run(config_dump=text)
    workload = [c for c in part.certs if c.role is CertRole.WORKLOAD]
    roots = [c for c in part.certs if c.role is CertRole.ROOT]
    assert len(workload) == 1 and len(roots) == 1
    leaf = workload[0]
    # Read by hand with `openssl x509 -noout -enddate -serial` on the first PEM of the "default" chain.
    assert leaf.not_after == datetime(2023, 5, 16, 1, 32, 52, tzinfo=UTC)
    assert leaf.serial == "6fbee254c22900615cb1f74e3d2f1713"
    assert leaf.spiffe_id == "spiffe://cluster.local/ns/ambient/sa/namespace-istio-waypoint"
    assert leaf.trust_domain == "cluster.local"
    assert leaf.issuer == "O=cluster.local" and leaf.secret_name == "default"
    assert leaf.lifetime_s == 24 * 3600 + 120
    assert roots[0].secret_name == "ROOTCA" and roots[0].subject == roots[0].issuer
    chain = json.loads(text)["configs"][0]["dynamic_active_secrets"][0]["secret"]
    pem = base64.b64decode(chain["tls_certificate"]["certificate_chain"]["inline_bytes"])
    checked = _openssl_enddate(pem)
    assert checked is None or checked == leaf.not_after
    # The warming secret carries no certificate and is not reported as one.
    assert all(c.secret_name != "configmap://some/thing" for c in part.certs)


def test_private_keys_never_reach_the_model(corpus: Path) -> None:
    part = run(config_dump=(corpus / "envoy-config-dump/consul-k8s/test_config_dump.json").read_text())
    assert part.certs
    assert "redacted" not in repr(part).lower() and "PRIVATE KEY" not in repr(part)


def test_certs_endpoint_fallback() -> None:
    certs_json = {"certificates": [{
        "ca_cert": [{"path": "<inline>", "serial_number": "9e1b...".replace(".", "0"),
                     "subject_alt_names": [], "days_until_expiration": "3600",
                     "valid_from": "2023-05-06T05:41:32Z", "expiration_time": "2033-05-03T05:41:32Z"}],
        "cert_chain": [{"path": "<inline>", "serial_number": "6FBEE254C22900615CB1F74E3D2F1713",
                        "subject_alt_names": [{"uri": "spiffe://cluster.local/ns/default/sa/cart"}],
                        "days_until_expiration": "0", "valid_from": "2023-05-15T01:30:52Z",
                        "expiration_time": "2023-05-16T01:32:52Z"}]}]}
    part = run(certs=json.dumps(certs_json))
    leaf = next(c for c in part.certs if c.role is CertRole.WORKLOAD)
    assert leaf.serial == "6fbee254c22900615cb1f74e3d2f1713"
    assert leaf.not_after == datetime(2023, 5, 16, 1, 32, 52, tzinfo=UTC)
    assert leaf.spiffe_id == "spiffe://cluster.local/ns/default/sa/cart"
    assert {c.role for c in part.certs} == {CertRole.WORKLOAD, CertRole.ROOT}


def test_istio_clusters_host_health_camel_case(corpus: Path) -> None:
    proxy = run(clusters=(corpus / "envoy-clusters/istio/clusters.json").read_text()).proxies[0]
    reviews = proxy.cluster(REVIEWS)
    ejected = [h for h in reviews.hosts if h.failed_outlier_check]
    assert [h.address for h in ejected] == ["172.17.0.27:9080"]
    assert not ejected[0].healthy and ejected[0].eds_health == "HEALTHY"
    assert reviews.healthy_hosts == 2 and reviews.membership_total == 3
    policy = proxy.cluster("outbound|15014||istio-policy.istio-system.svc.cluster.local")
    assert policy.hosts[0].eds_health == "UNHEALTHY" and not policy.hosts[0].healthy
    legacy = proxy.cluster("inbound_9092")
    assert (legacy.direction, legacy.port) == ("inbound", 9092)


def test_consul_clusters_snake_case(corpus: Path) -> None:
    proxy = run(clusters=(corpus / "envoy-clusters/consul-k8s/test_clusters.json").read_text()).proxies[0]
    local = proxy.cluster("local_app")
    assert local.direction == "other" and local.hosts and local.hosts[0].healthy
    client = proxy.cluster("client.default.dc1.internal.bc3815c2-1a0f-f3ff-a2e9-20d791f08d00.consul")
    assert client.hosts[0].address == "192.168.18.110:20000"


def test_kuma_circuit_breaker_gauges(corpus: Path) -> None:
    proxy = run(stats=(corpus / "envoy-stats/kuma/gauge.in").read_text()).proxies[0]
    cb = proxy.cluster("echo-server_kuma-test_svc_8080-369bce2d30623ffb").circuit_breaker_open
    assert cb["cx_open"] == 100 and cb["cx_pool_open"] == 200 and cb["rq_open"] == 300
    assert proxy.cluster("ads_cluster").circuit_breaker_open["cx_open"] == 2


def test_netdata_prometheus_counters(corpus: Path) -> None:
    proxy = run(stats=(corpus / "envoy-stats/netdata-go.d.plugin/envoy.txt").read_text()).proxies[0]
    c = proxy.cluster("service_envoyproxy_io")
    assert c.counter("update_attempt") == 1242
    assert "upstream_rq_pending_overflow" in c.counters and c.overflows == 0
    assert (c.membership_healthy, c.membership_total) == (1, 1)
    assert c.circuit_breaker_open["high.rq_pending_open"] == 0
    assert proxy.uptime_s == 6225 and proxy.warming_clusters == 0
    # Histogram families are not mistaken for clusters or counters.
    assert "upstream_cx_connect_ms_bucket" not in c.counters


def test_consul_dataplane_control_plane_state(corpus: Path) -> None:
    proxy = run(stats=(corpus / "envoy-stats/netdata-go.d.plugin/consul-dataplane.txt").read_text()).proxies[0]
    assert proxy.control_plane_connected is True
    assert proxy.update_rejected["cds"] == 0 and proxy.update_rejected["lds"] == 0
    assert {"local_app", "prometheus_backend"} <= {c.name for c in proxy.clusters}


def test_json_and_prometheus_stats_agree() -> None:
    name = "outbound|9080|v2|reviews.default.svc.cluster.local"
    as_json = json.dumps({"stats": [
        {"name": f"cluster.{name}.upstream_rq_pending_overflow", "value": 7},
        {"name": f"cluster.{name}.outlier_detection.ejections_active", "value": 1},
        {"name": f"cluster.{name}.circuit_breakers.default.rq_pending_open", "value": 1},
        {"name": f"cluster.{name}.upstream_rq_5xx", "value": 12},
        {"name": "cluster_manager.cds.update_rejected", "value": 3},
        {"name": "http.outbound_0.0.0.0_9080.rds.9080.update_rejected", "value": 2},
        {"name": "control_plane.connected_state", "value": 0},
        {"histograms": {"supported_quantiles": [50]}}]})
    as_text = "\n".join([
        "# TYPE envoy_cluster_upstream_rq_pending_overflow counter",
        f'envoy_cluster_upstream_rq_pending_overflow{{envoy_cluster_name="{name}"}} 7',
        f'envoy_cluster_outlier_detection_ejections_active{{envoy_cluster_name="{name}"}} 1',
        f'envoy_cluster_circuit_breakers_default_rq_pending_open{{envoy_cluster_name="{name}"}} 1',
        f'envoy_cluster_upstream_rq_xx{{envoy_response_code_class="5",envoy_cluster_name="{name}"}} 12',
        "envoy_cluster_manager_cds_update_rejected{} 3",
        'envoy_http_rds_update_rejected{envoy_http_conn_manager_prefix="outbound_0.0.0.0_9080",'
        'envoy_rds_route_config="9080"} 2',
        "envoy_control_plane_connected_state{} 0", ""])
    for body in (as_json, as_text):
        proxy = run(stats=body).proxies[0]
        c = proxy.cluster(name)
        assert (c.subset, c.counter("upstream_rq_pending_overflow"), c.counter("upstream_rq_5xx")) == ("v2", 7, 12)
        assert c.outlier_ejections_active == 1 and c.circuit_breaker_open["rq_pending_open"] == 1
        assert dict(proxy.update_rejected) == {"cds": 3, "rds": 2}
        assert proxy.control_plane_connected is False
    assert parse_stats(as_json).format == "json" and parse_stats(as_text).format == "prometheus"


def test_server_info_and_node_identity() -> None:
    info = {"version": "abc123/1.29.4/Clean/RELEASE/BoringSSL", "state": "DRAINING",
            "uptime_current_epoch": "3600s",
            "node": {"id": "sidecar~10.0.0.7~cart-v1-5d9f8c7b6d-x2x8q.shop~shop.svc.cluster.local"}}
    raw = RawSource("envoy:127.0.0.1:15000", "envoy", meta={"url": "http://127.0.0.1:15000",
                                                            "pod": "127.0.0.1:15000", "namespace": ""})
    raw.add(Payload("ready", body="DRAINING", status=503))
    raw.add(Payload("server_info", body=json.dumps(info), status=200))
    proxy = normalize(raw, CTX).proxies[0]
    assert (proxy.id, proxy.ready, proxy.state, proxy.envoy_version, proxy.uptime_s) == (
        "cart-v1-5d9f8c7b6d-x2x8q.shop", False, "DRAINING", "1.29.4", 3600.0)
    assert str(proxy.workload) == "shop/cart-v1"


def test_partial_data_keeps_the_proxy_and_lists_failures(corpus: Path) -> None:
    raw = proxy_raw(config_dump=(corpus / PRODUCTPAGE).read_text(), clusters="<html>oops</html>")
    raw.add(Payload("stats", body="boom", status=500, url="http://127.0.0.1:15000/stats"))
    part = normalize(raw, CTX)
    assert part.proxies and part.proxies[0].cluster(REVIEWS) is not None
    status = part.sources[0]
    assert status.state is SourceState.ERROR
    assert "clusters" in status.message and "stats" in status.message and "500" in status.message


def test_unreachable_proxy_is_an_error_without_a_proxy() -> None:
    raw = RawSource("envoy:default/cart-v1-abc", "envoy", meta={"namespace": "default", "pod": "cart-v1-abc"})
    raw.add(Payload("ready", error="cannot reach http://10.0.0.9:15000/ready (connection refused)"))
    part = normalize(raw, CTX)
    assert not part.proxies and part.sources[0].state is SourceState.ERROR
    assert "cart-v1-abc" in part.sources[0].message


def test_no_targets_is_no_data() -> None:
    part = normalize(RawSource("envoy", "envoy", meta={"note": "no Envoy proxies found"}), CTX)
    assert part.sources[0].state is SourceState.NO_DATA


@pytest.mark.parametrize(("http_filter", "ignored"), [("rbac", "istio_dry_run_allow_policy_not_found"),
                                                      ("jwt_authn", "jwt_cache_hit")])
def test_refusing_filters_verdicts_are_summed_over_listeners_in_both_stat_formats(http_filter: str,
                                                                                 ignored: str) -> None:
    """The RBAC filter's (403) and the JWT filter's (401) verdicts, per listener in Envoy, one
    number per proxy for the checks; stats the checks do not read are left out."""
    from meshobs.collectors.envoy.stats import parse_stats

    values = (("8080", "denied", 7), ("9090", "denied", 2), ("8080", "allowed", 40), ("8080", ignored, 1))
    as_json = json.dumps({"stats": [{"name": f"http.inbound_0.0.0.0_{port}.{http_filter}.{stat}", "value": n}
                                    for port, stat, n in values]})
    label = "envoy_http_conn_manager_prefix"
    as_prom = "\n".join(f'envoy_http_{http_filter}_{stat}{{{label}="inbound_0.0.0.0_{port}"}} {n}'
                        for port, stat, n in values)
    for text in (as_json, as_prom):
        server = parse_stats(text).server
        assert (server[f"{http_filter}.denied"], server[f"{http_filter}.allowed"]) == (9.0, 40.0)
        assert f"{http_filter}.{ignored}" not in server
