"""The scenario library's ground truth is in the payloads: each scenario renders the evidence its
cause names, in the shapes the real sources serve (these must pass today; the diagnosis grid in
test_scenarios.py is what checks still have to meet)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from meshobs.demo.build import render_bundle, scenario_timeline
from meshobs.demo.catalog import list_library, load_demo, scenario_for
from meshobs.demo.expect import CAUSE_KINDS, Expectation
from meshobs.demo.prom_timeline import Series, Timeline
from meshobs.demo.render_istiod import istiod_source, syncz
from meshobs.demo.scenarios import LIBRARY, library_scenario
from meshobs.raw import RawSource
from tests.support.scenarios import bundle, snapshot

ADMIN = "type.googleapis.com/envoy.admin.v3."


def source(name: str, kind: str) -> RawSource:
    return next(s for s in bundle(name).sources if s.kind == kind)


def body(raw: RawSource, key: str) -> Any:
    payload = raw.get(key)
    assert payload is not None, f"{raw.name}: no {key}"
    return payload.json()


def kube(name: str, key: str) -> Any:
    return body(source(name, "kubernetes"), key)


def proxies(name: str, workload: str) -> list[RawSource]:
    found = [s for s in bundle(name).sources if s.kind == "envoy" and s.meta["workload"] == workload]
    assert found, workload
    return found


def stats(raw: RawSource) -> dict[str, int]:
    return {s["name"]: s["value"] for s in body(raw, "stats")["stats"] if "name" in s}


def dump(raw: RawSource, kind: str) -> dict[str, Any]:
    return next(c for c in body(raw, "config_dump")["configs"] if c["@type"] == ADMIN + kind)


def requests_by(name: str, **labels: str) -> dict[tuple[str, str, str], float]:
    """(reporter, code, flags) -> req/s of the instant requests query, filtered by labels."""
    out: dict[tuple[str, str, str], float] = {}
    for r in body(source(name, "prometheus"), "query:requests")["result"]:
        m = r["metric"]
        if all(m.get(k) == v for k, v in labels.items()):
            key = (m["reporter"], m.get("response_code", ""), m.get("response_flags", ""))
            out[key] = out.get(key, 0.0) + float(r["value"][1])
    return out


def series(name: str, metric: str, **labels: str) -> list[Series]:
    return [s for s in scenario_timeline(library_scenario(name)).series
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())]


# -- the library as a whole ------------------------------------------------------------------

@pytest.mark.parametrize("name", list(LIBRARY))
def test_scenario_renders_reads_back_and_names_its_target(name: str) -> None:
    sc = library_scenario(name)
    assert sc.name == name and sc.cause and "\n" not in sc.description
    assert isinstance(sc.expect, Expectation) and sc.expect.kind in CAUSE_KINDS
    snap = snapshot(name)
    broken = {s.name: s.message for s in snap.sources if s.state != "ok"}
    assert broken == ({"prometheus": broken.get("prometheus")} if name == "empty-window" else {})
    if sc.expect.target:
        ns, svc = sc.expect.target.split("/")
        assert snap.find_services(svc, ns), f"{name}: target {sc.expect.target} not in the snapshot"


def test_library_is_listed_and_loads_like_any_demo() -> None:
    assert [n for n, _ in list_library()] == list(LIBRARY)
    assert load_demo("old-restart").name == "old-restart"
    assert scenario_for("mirror-shadow").expect == library_scenario("mirror-shadow").expect


def test_rendering_is_deterministic() -> None:
    again = render_bundle(library_scenario("authz-deny-legacy"))
    for new, old in zip(again.sources, bundle("authz-deny-legacy").sources, strict=True):
        assert [p.body for p in new.payloads] == [p.body for p in old.payloads], new.name


def test_healthy_meshes_and_faults_are_both_represented() -> None:
    kinds = [library_scenario(n).expect.kind for n in LIBRARY]  # type: ignore[union-attr]
    assert kinds.count("healthy") >= 8
    assert len(set(kinds)) >= 14


# -- failure classes -------------------------------------------------------------------------

def test_retries_hide_the_callee_from_the_caller_but_not_from_the_callee() -> None:
    seen = requests_by("retries-mask-ledger", destination_service_name="ledger-db")
    src_total = sum(v for (r, _, _), v in seen.items() if r == "source")
    dst_total = sum(v for (r, _, _), v in seen.items() if r == "destination")
    assert seen[("source", "503", "URX")] / src_total < 0.01
    assert seen[("destination", "503", "-")] / dst_total == pytest.approx(0.3, abs=0.01)
    assert dst_total / src_total == pytest.approx(1 + 0.3 + 0.09 + 0.027, rel=0.01)  # every attempt
    cluster = "cluster.outbound|8080||ledger-db.ledger.svc.cluster.local."
    for raw in proxies("retries-mask-ledger", "payments-api-v1"):
        s = stats(raw)
        assert s[cluster + "upstream_rq_retry"] > s[cluster + "upstream_rq_retry_success"] > 0
        assert 0 < s[cluster + "upstream_rq_retry_limit_exceeded"] < s[cluster + "upstream_rq_retry_success"]
    onset = [s for s in series("retries-mask-ledger", "istio_requests_total", reporter="destination",
                               destination_service_name="ledger-db", response_code="503")]
    assert onset and all(s.born_s_ago() == 1260.0 for s in onset)


def test_injected_faults_are_caller_side_only_and_configured() -> None:
    fi = requests_by("fault-injection-elsewhere", destination_service_name="thumbnailer", response_flags="FI")
    assert set(fi) == {("source", "503", "FI")}
    uf = requests_by("fault-injection-elsewhere", destination_service_name="object-store", response_flags="UF")
    assert set(uf) == {("source", "503", "UF")}
    routes = dump(proxies("fault-injection-elsewhere", "upload-api-v5")[0], "RoutesConfigDump")
    fault = [r["typed_per_filter_config"]["envoy.filters.http.fault"] for c in routes["dynamic_route_configs"]
             for vh in c["route_config"]["virtual_hosts"] for r in vh["routes"] if "typed_per_filter_config" in r]
    assert fault and fault[0]["abort"]["http_status"] == 503
    assert fault[0]["abort"]["percentage"] == {"numerator": 80000, "denominator": "MILLION"}
    for raw in proxies("fault-injection-elsewhere", "transcoder-v11"):
        assert stats(raw)["cluster.outbound|8080||object-store.storage.svc.cluster.local.upstream_cx_connect_fail"] > 0


def test_authorization_denials_on_both_sides_and_on_the_server_sidecar() -> None:
    seen = requests_by("authz-deny-legacy", source_workload="batch-settlement-v1",
                       destination_service_name="card-vault")
    assert set(seen) == {("source", "403", "-"), ("destination", "403", "-")}
    for raw in proxies("authz-deny-legacy", "card-vault-v3"):
        s = stats(raw)
        assert s["http.inbound_0.0.0.0_8080.rbac.denied"] > 0 and s["http.inbound_0.0.0.0_8080.rbac.allowed"] > 0
    policy = next(i for i in kube("authz-deny-legacy", "crd/security.istio.io/v1/authorizationpolicies")["items"]
                  if i["metadata"]["name"] == "deny-legacy")
    assert policy["spec"]["action"] == "DENY"
    assert policy["metadata"]["creationTimestamp"] == "2026-11-20T11:24:48Z"  # 35 min 12 s before


def test_jwt_refusals_on_both_sides_and_on_the_server_sidecar() -> None:
    seen = requests_by("jwt-wrong-issuer", source_workload="partner-sync-v8", destination_service_name="payout-api")
    assert set(seen) == {("source", "401", "-"), ("destination", "401", "-")}
    for raw in proxies("jwt-wrong-issuer", "payout-api-v5"):
        s = stats(raw)
        assert s["http.inbound_0.0.0.0_8080.jwt_authn.denied"] > 0
        assert s["http.inbound_0.0.0.0_8080.jwt_authn.allowed"] > 0
    ra = kube("jwt-wrong-issuer", "crd/security.istio.io/v1/requestauthentications")["items"]
    assert [(i["metadata"]["name"], i["spec"]["selector"]["matchLabels"]) for i in ra] == [("payout-jwt",
                                                                                           {"app": "payout-api"})]
    # The requestPrincipals scenario: 403 for the caller without a JWT, the JWT filter passing it.
    seen = requests_by("jwt-missing-token", source_workload="replay-worker-v2", destination_service_name="ingest-api")
    assert set(seen) == {("source", "403", "-"), ("destination", "403", "-")}
    for raw in proxies("jwt-missing-token", "ingest-api-v6"):
        s = stats(raw)
        assert s["http.inbound_0.0.0.0_8080.rbac.denied"] > 0 and s["http.inbound_0.0.0.0_8080.jwt_authn.allowed"] > 0
        assert "http.inbound_0.0.0.0_8080.jwt_authn.denied" not in s


def _clusters(raw: RawSource) -> set[str]:
    return {c["cluster"]["name"] for c in dump(raw, "ClustersConfigDump")["dynamic_active_clusters"]}


def _catch_all(raw: RawSource) -> set[str]:
    return {c["route_config"]["virtual_hosts"][-1]["name"]
            for c in dump(raw, "RoutesConfigDump")["dynamic_route_configs"]}


def test_sidecar_scoping_blackholes_the_other_namespace_and_is_a_scoped_push() -> None:
    tax = "outbound|8080||tax-engine.tax.svc.cluster.local"
    invoice = proxies("sidecar-egress-blackhole", "invoice-api-v2")
    assert all(tax not in _clusters(r) and _catch_all(r) == {"block_all"} for r in invoice)
    portal = proxies("sidecar-egress-blackhole", "tax-portal-v1")[0]
    assert tax in _clusters(portal) and _catch_all(portal) == {"allow_any"}
    seen = requests_by("sidecar-egress-blackhole", destination_service_name="BlackHoleCluster")
    assert set(seen) == {("source", "502", "-")}
    sc = library_scenario("sidecar-egress-blackhole")
    status = syncz(sc, 0)
    assert all(s["route_sent"] == s["route_acked"] for s in status)  # nothing is stale
    versions = {s["proxy"].split("-")[0]: s["cluster_acked"][:20] for s in status}
    assert versions["invoice"] != versions["tax"]  # the scoped push reached billing only


def test_registry_only_blocks_unregistered_hosts_and_keeps_the_service_entry() -> None:
    mesh = kube("registry-only-egress", "configmap/istio-system/istio")
    assert "mode: REGISTRY_ONLY" in mesh["data"]["mesh"]
    assert ("source", "502", "-") in requests_by("registry-only-egress", destination_service_name="BlackHoleCluster")
    planner = proxies("registry-only-egress", "route-planner-v2")[0]
    assert "outbound|80||api.weather-feed.example" in _clusters(planner)
    assert stats(planner)["cluster.BlackHoleCluster.upstream_cx_none_healthy"] > 0


def test_nack_keeps_routes_old_while_clusters_and_listeners_are_current() -> None:
    for raw in proxies("envoyfilter-nack", "dispatch-api-v4"):
        cds = dump(raw, "ClustersConfigDump")["version_info"]
        lds = dump(raw, "ListenersConfigDump")["version_info"]
        rds = {c["version_info"] for c in dump(raw, "RoutesConfigDump")["dynamic_route_configs"]}
        assert cds == lds and rds and cds not in rds and min(rds) < cds
        assert stats(raw)["http.outbound_0.0.0.0_8080.rds.8080.update_rejected"] == 7
    sc = library_scenario("envoyfilter-nack")
    for s in syncz(sc, 0):
        stuck = s["proxy"].startswith("dispatch-api-v4")
        assert (s["route_sent"] != s["route_acked"]) == stuck, s["proxy"]
        assert s["cluster_sent"] == s["cluster_acked"]
    rejects = series("envoyfilter-nack", "pilot_xds_rds_reject")
    assert len(rejects) == 3 and {r.labels["err"] for r in rejects} == {"Internal"}
    filters = kube("envoyfilter-nack", "crd/networking.istio.io/v1alpha3/envoyfilters")["items"]
    assert [f["metadata"]["name"] for f in filters] == ["lua-header-rewrite"]
    assert filters[0]["spec"]["workloadSelector"]["labels"] == {"app": "dispatch-api"}


def test_deep_chain_times_out_above_the_slow_hop_and_starts_at_the_bottom() -> None:
    seen = requests_by("deep-chain-timeout", destination_service_name="tariff-db")
    assert ("source", "504", "UT") in seen and ("destination", "0", "DC") in seen
    births = {s.labels["destination_service_name"]: s.born_s_ago()
              for s in series("deep-chain-timeout", "istio_requests_total", reporter="source")
              if s.labels["response_code"] in ("500", "502", "503", "504")}
    order = sorted(births, key=births.__getitem__, reverse=True)
    assert order == ["tariff-db", "rate-engine", "carrier-gateway", "route-optimizer", "shipment-api"]


def test_two_faults_the_quiet_one_is_a_certificate_near_its_end() -> None:
    sc = library_scenario("loud-fault-and-cert")
    snap = snapshot("loud-fault-and-cert")
    left = {c.spiffe_id: c.not_after - sc.time for c in snap.certs if c.spiffe_id}
    drm = left["spiffe://cluster.local/ns/drm/sa/drm-license"]
    assert timedelta(hours=2, minutes=39) <= drm <= timedelta(hours=2, minutes=41)
    assert all(v > timedelta(hours=10) for k, v in left.items() if "drm" not in k)


def test_gateway_binding_leaves_the_host_without_a_virtual_host() -> None:
    gw = proxies("gateway-binding-404", "istio-ingressgateway")[0]
    hosts = {d for c in dump(gw, "RoutesConfigDump")["dynamic_route_configs"]
             for vh in c["route_config"]["virtual_hosts"] for d in vh["domains"]}
    assert "www.tixwave.example" in hosts and "checkout.tixwave.example" not in hosts
    seen = requests_by("gateway-binding-404", destination_service_name="checkout.tixwave.example")
    assert set(seen) == {("source", "404", "NR")}


def test_control_plane_trouble_is_in_istiod_signals() -> None:
    sc = library_scenario("istiod-not-ready")
    pods = [p for p in kube("istiod-not-ready", "pods")["items"] if p["metadata"]["name"].startswith("istiod-")]
    assert len(pods) == 1 and {c["type"]: c["status"] for c in pods[0]["status"]["conditions"]}["Ready"] == "False"
    assert {p.status for p in istiod_source(sc).payloads if p.key.endswith("/ready")} == {503}
    assert series("istiod-not-ready", "pilot_xds_pushes", type="cds_senderr")
    # orders-api still targets the pods courier-tracker had before its rollout; the new ones
    # never got a configuration (or a certificate) from istiod.
    live_ips = {p["status"]["podIP"] for p in kube("istiod-not-ready", "pods")["items"]
                if p["metadata"]["name"].startswith("courier-tracker")}
    orders = body(proxies("istiod-not-ready", "orders-api-v5")[0], "clusters")["cluster_statuses"]
    held = {h["address"]["socket_address"]["address"] for c in orders if "courier-tracker" in c["name"]
            for h in c["host_statuses"]}
    assert held and not held & live_ips
    for raw in proxies("istiod-not-ready", "courier-tracker-v9"):
        assert raw.get("ready").status == 503  # type: ignore[union-attr]
        assert body(raw, "certs") == {"certificates": []}
        assert dump(raw, "ClustersConfigDump")["dynamic_active_clusters"] == []
    unacked = library_scenario("proxy-unacked")
    for s in syncz(unacked, 0) + syncz(unacked, 1):
        assert (s["cluster_sent"] != s["cluster_acked"]) == s["proxy"].startswith("inventory-api"), s["proxy"]
    raw = proxies("proxy-unacked", "inventory-api-v2")[0]
    warming = dump(raw, "ClustersConfigDump")["dynamic_warming_clusters"]
    assert [c["cluster"]["name"] for c in warming] == ["outbound|8080|v5|stock-service.warehouse.svc.cluster.local"]
    assert stats(raw)["cluster_manager.warming_clusters"] == 1


def test_the_change_precedes_the_onset_by_forty_seconds() -> None:
    sc = library_scenario("dr-change-onset")
    dr = next(i for i in kube("dr-change-onset", "crd/networking.istio.io/v1/destinationrules")["items"]
              if i["metadata"]["name"] == "surge-calculator")
    assert dr["metadata"]["generation"] == 2
    edited = max(f["time"] for f in dr["metadata"]["managedFields"])
    assert edited == (sc.time - timedelta(seconds=1240)).strftime("%Y-%m-%dT%H:%M:%SZ")
    uo = series("dr-change-onset", "istio_requests_total", response_flags="UO")
    assert uo and {s.born_s_ago() for s in uo} == {1200.0}


def test_an_empty_window_answers_nothing() -> None:
    prom = source("empty-window", "prometheus")
    assert all(p.json()["result"] == [] for p in prom.payloads if not p.key.startswith("history:"))
    # The hour of history still holds what was scraped before the scrapes stopped, and no later.
    scenario = library_scenario("empty-window")
    stopped = scenario.time.timestamp() - scenario.metrics_end_s_ago
    requests = prom.get("history:requests")
    assert requests is not None and requests.json()["result"]
    last = max(float(t) for s in requests.json()["result"] for t, _v in s["values"])
    assert last <= stopped + 60  # the rate window reaches a minute past the last scrape


def test_ambient_pods_have_no_sidecar_and_ztunnel_and_the_waypoint_report() -> None:
    envoy_pods = {s.meta["pod"] for s in bundle("ambient-namespace").sources if s.kind == "envoy"}
    pods = kube("ambient-namespace", "pods")["items"]
    analytics = [p for p in pods if p["metadata"]["namespace"] == "analytics"
                 and not p["metadata"]["name"].startswith("waypoint")]
    assert analytics and all(p["metadata"]["name"] not in envoy_pods for p in analytics)
    assert all("istio-proxy" not in [c["name"] for c in p["spec"]["containers"]] for p in analytics)
    assert sum(p["metadata"]["name"].startswith("ztunnel-") for p in pods) == 3
    ns = next(n for n in kube("ambient-namespace", "namespaces")["items"] if n["metadata"]["name"] == "analytics")
    assert ns["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"
    assert series("ambient-namespace", "istio_requests_total", reporter="waypoint")
    assert series("ambient-namespace", "istio_tcp_connections_opened_total", destination_service_name="warehouse")


def test_app_mesh_names_are_the_controllers() -> None:
    cw = source("appmesh-controller-names", "cloudwatch")
    text = "".join(p.body or "" for p in cw.payloads) + "".join(p.url + json.dumps(p.params) for p in cw.payloads)
    assert "catalog-v2_books" in text and "catalog.books.svc.cluster.local" in text and "bookstore-mesh" in text
    xray = "".join(p.body or "" for p in source("appmesh-controller-names", "xray").payloads)
    assert "bookstore-mesh/catalog-v2_books" in xray
    node = body(proxies("appmesh-controller-names", "frontend")[0], "server_info")["node"]["id"]
    assert node == "mesh/bookstore-mesh/virtualNode/frontend_books"


# -- healthy but noisy -----------------------------------------------------------------------

def test_mirrored_requests_are_reported_by_the_shadow_only() -> None:
    seen = requests_by("mirror-shadow", destination_workload="pricing-engine-v2")
    assert {r for r, _, _ in seen} == {"destination"} and ("destination", "500", "-") in seen
    routes = dump(proxies("mirror-shadow", "quote-api-v3")[0], "RoutesConfigDump")
    mirrors = [r["route"]["request_mirror_policies"] for c in routes["dynamic_route_configs"]
               for vh in c["route_config"]["virtual_hosts"] for r in vh["routes"]
               if "request_mirror_policies" in r.get("route", {})]
    assert mirrors and mirrors[0][0]["cluster"] == "outbound|8080|v2|pricing-engine.quotes.svc.cluster.local"


def test_old_restart_is_dated_three_days_back() -> None:
    sc = library_scenario("old-restart")
    pods = [p for p in kube("old-restart", "pods")["items"] if p["metadata"]["name"].startswith("claims-api")]
    restarted = [s for p in pods for s in p["status"]["containerStatuses"] if s["restartCount"]]
    assert len(restarted) == 1 and restarted[0]["lastState"]["terminated"]["reason"] == "OOMKilled"
    finished = restarted[0]["lastState"]["terminated"]["finishedAt"]
    assert finished == (sc.time - timedelta(days=2.9)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_batch_job_runs_in_bursts_within_slo() -> None:
    sc = library_scenario("batch-spiky-p99")
    edge = next(e for e in sc.edges if e.source_workload == "meter-rollup")
    rates = [edge.view("source", age).rps for age in range(0, 3600, 60)]
    assert max(rates) == 40.0 and min(rates) == 0.0 and edge.latency.p99_ms < 1000
    pod = next(p for p in kube("batch-spiky-p99", "pods")["items"] if p["metadata"]["name"].startswith("meter-rollup"))
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"


def test_grpc_unavailable_hides_in_http_200_on_both_sides() -> None:
    """The journal's failures are gRPC status 14 in HTTP 200s: the series carry it on both sides,
    born at the onset, and no 5xx comes with them (what a check has to read)."""
    for reporter in ("source", "destination"):
        failing = series("clearing-grpc-unavailable", "istio_requests_total", reporter=reporter,
                         destination_workload="journal-v8", source_workload="clearing-engine-v31",
                         grpc_response_status="14")
        assert failing and all(s.labels["response_code"] == "200" and s.born_s_ago() == 540.0 for s in failing)
    journal = series("clearing-grpc-unavailable", "istio_requests_total", destination_service_name="journal")
    assert not [s for s in journal if s.labels["response_code"].startswith("5")]
    assert not series("clearing-grpc-noisy", "istio_requests_total", grpc_response_status="14",
                      destination_service_name="journal")


def test_envoy_writes_route_durations_in_seconds() -> None:
    """Envoy's config dump writes a protobuf Duration (``0.250s``), whatever the VirtualService
    wrote (``250ms``): rendered otherwise, the proxies seemed to lack the retry timeout."""
    for name, workload, host, written in (("retries-mask-ledger", "payments-api-v1", "ledger-db", "1.500s"),
                                          ("clearing-grpc-noisy", "clearing-engine-v31", "fx-quotes", "0.250s")):
        (caller, *_rest) = proxies(name, workload)
        routes = dump(caller, "RoutesConfigDump")["dynamic_route_configs"]
        policies = [r["route"]["retry_policy"] for c in routes for vh in c["route_config"]["virtual_hosts"]
                    for r in vh["routes"] if host in vh["name"] and "retry_policy" in r.get("route", {})]
        assert policies and all(p["per_try_timeout"] == written for p in policies), name


def test_certificates_mid_rotation_are_all_comfortably_valid() -> None:
    sc = library_scenario("cert-rotation")
    snap = snapshot("cert-rotation")
    for c in snap.certs:
        if c.spiffe_id:
            life = (c.not_after - c.not_before).total_seconds()
            assert (c.not_after - sc.time).total_seconds() / life > 0.4, c.spiffe_id


# -- the Prometheus emulation ----------------------------------------------------------------

def test_rate_of_a_steady_counter_is_its_slope() -> None:
    tl = Timeline([Series("x_total", "x", "counter", {}, (), [2.5])], history_s=900)
    assert tl.rate(tl.series[0], 0.0, 300.0) == pytest.approx(2.5)


def test_rate_across_an_onset_follows_prometheus_extrapolation() -> None:
    # A series born 150 s ago at 4/s: 10 samples, 135 s apart first to last, first value 60.
    tl = Timeline([Series("y_total", "y", "counter", {}, (150.0,), [4.0, 0.0])], history_s=900)
    s = tl.series[0]
    points = tl.samples(s, 0.0, 300.0)
    assert [a for a, _ in points][:2] == [135.0, 120.0] and points[0][1] == pytest.approx(60.0)
    # delta 540 over 135 s; extrapolated to zero (15 s before the first sample) and no further.
    assert tl.rate(s, 0.0, 300.0) == pytest.approx(540.0 * (150.0 / 135.0) / 300.0)
    assert tl.rate(s, 200.0, 60.0) is None  # before the series existed


# -- the authoring API -----------------------------------------------------------------------

def test_responses_fill_the_rest_with_ok_and_refuse_more_than_all() -> None:
    from meshobs.demo.author import responses

    assert responses(("503", "UH", 0.25)) == (("200", "-", 0.75), ("503", "UH", 0.25))
    assert responses(("403", "-", 1.0)) == (("403", "-", 1.0),)
    with pytest.raises(ValueError):
        responses(("500", "-", 0.7), ("503", "-", 0.4))


def test_an_edge_reports_each_phase_and_each_side() -> None:
    edge = next(e for e in library_scenario("dr-change-onset").edges
                if e.destination_service == "surge-calculator")
    assert edge.view("source", 0.0).responses[-1] == ("503", "UO", 0.18)
    assert edge.view("source", 1300.0).responses == (("200", "-", 1.0),)
    assert edge.view("destination", 0.0).rps == pytest.approx(90 * 0.82)  # overflowed never arrive
    assert edge.view("destination", 1300.0).rps == 90.0
