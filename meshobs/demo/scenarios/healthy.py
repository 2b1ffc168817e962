"""Healthy but noisy meshes: each has something that looks alarming to a naive check and is in
fact fine. A warning or error finding on any of them is a false alarm."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..state import PodState, Restart
from ..traffic import Reported

HEALTHY = Expectation("healthy", healthy=True)


def canary_within_slo() -> Scenario:
    """Travel search: a 5% canary with slightly more errors and latency, all within the SLO."""
    m = Mesh("canary-within-slo",
             "Healthy: flights-search canary v2 at 5% with 0.4% errors and +20% p99, within SLO",
             "no fault: the canary (v2, 5% of traffic by VirtualService flights-search) answers 0.4% "
             "500 and its p99 is 20% above v1's; v1 has 0.1% 503; both are within the 1% error and "
             "1 s p99 objectives", ingress_host="trips.farecompass.example:8080")
    m.namespace("travel")
    gw = m.ingress_gateway()
    planner = m.workload("travel", "trip-planner", "v6", replicas=2)
    v1 = m.workload("travel", "flights-search", "v1", replicas=3)
    v2 = m.workload("travel", "flights-search", "v2")
    hotels = m.workload("travel", "hotel-search", "v4", replicas=2)
    m.call(gw, planner, 44.0, 120.0, 520.0, ("503", "-", 0.0012))
    m.call(planner, v1, 44.0 * 0.95, 60.0, 180.0, ("503", "-", 0.001))
    m.call(planner, v2, 44.0 * 0.05, 66.0, 216.0, ("500", "-", 0.004), onset_s_ago=2400.0,
           before=Reported(0.0))
    m.call(planner, hotels, 30.0, 70.0, 260.0)
    m.apply(resource("VirtualService", "travel", "flights-search", {
        "hosts": ["flights-search"],
        "http": [{"route": [{"destination": {"host": "flights-search", "subset": "v1"}, "weight": 95},
                            {"destination": {"host": "flights-search", "subset": "v2"}, "weight": 5}],
                  "retries": {"attempts": 2, "retryOn": "5xx,503"}}]}), changed_s_ago=2400.0)
    m.apply(resource("DestinationRule", "travel", "flights-search", {
        "host": "flights-search", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                              {"name": "v2", "labels": {"version": "v2"}}]}))
    return m.build(HEALTHY)


def mirror_shadow() -> Scenario:
    """Quotes: all traffic mirrored to a shadow version under test; the shadow's 6% errors are
    seen only by its own proxy and never reach a caller."""
    m = Mesh("mirror-shadow",
             "Healthy: pricing-engine v2 receives mirrored traffic (destination-side only), 6% 500 in the shadow",
             "no fault: VirtualService pricing-engine routes 100% to v1 and mirrors 100% to subset v2 "
             "(mirrorPercentage 100). Mirrored requests are fire-and-forget: only v2's proxy reports "
             "them (reporter=destination), its 6% 500s never reach quote-api; the observed split "
             "(v1 only, from quote-api's side) matches the route")
    m.namespace("quotes")
    api = m.workload("quotes", "quote-api", "v3", replicas=2)
    v1 = m.workload("quotes", "pricing-engine", "v1", replicas=2)
    v2 = m.workload("quotes", "pricing-engine", "v2")
    fx = m.workload("quotes", "fx-rates", "v1")
    m.call(api, v1, 26.0, 18.0, 75.0)
    m.mirror(api, v2, 26.0, 21.0, 95.0, ("500", "-", 0.06))
    m.call(v1, fx, 26.0, 2.0, 9.0)
    m.call(v2, fx, 26.0, 2.0, 9.0)
    m.apply(resource("VirtualService", "quotes", "pricing-engine", {
        "hosts": ["pricing-engine"],
        "http": [{"route": [{"destination": {"host": "pricing-engine", "subset": "v1"}, "weight": 100}],
                  "mirror": {"host": "pricing-engine", "subset": "v2"}, "mirrorPercentage": {"value": 100.0}}]}))
    m.apply(resource("DestinationRule", "quotes", "pricing-engine", {
        "host": "pricing-engine", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                              {"name": "v2", "labels": {"version": "v2"}}]}))
    return m.build(HEALTHY)


def chaos_fault_injection() -> Scenario:
    """Game backend: a chaos experiment injects 2% aborts and 5% delays on purpose."""
    m = Mesh("chaos-fault-injection",
             "Healthy: chaos test injects 2% 503 FI and 5% 300 ms delays (DI) on player-profile, on purpose",
             "no fault: VirtualService arena/player-profile carries a fault block (abort 2% 503, delay 5% "
             "300 ms) for a resilience experiment; lobby sees 503 FI and DI-flagged slow responses, "
             "injected by its own sidecar, never reaching player-profile",
             ingress_host="play.questforge.example:8080")
    m.namespace("arena")
    gw = m.ingress_gateway()
    lobby = m.workload("arena", "lobby", "v21", replicas=3)
    profile = m.workload("arena", "player-profile", "v5", replicas=2)
    match = m.workload("arena", "matchmaker", "v9", replicas=2)
    m.call(gw, lobby, 70.0, 40.0, 380.0)
    m.call(lobby, profile, 70.0 * 0.93, 9.0, 40.0)
    m.call(lobby, profile, 70.0 * 0.05, 305.0, 340.0, ("200", "DI", 1.0))
    m.unreached(lobby, profile, 70.0 * 0.02, ("503", "FI", 1.0))
    m.call(lobby, match, 35.0, 25.0, 110.0)
    m.apply(resource("VirtualService", "arena", "player-profile", {
        "hosts": ["player-profile"],
        "http": [{"name": "chaos-lobby-resilience",
                  "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 2.0}},
                            "delay": {"fixedDelay": "300ms", "percentage": {"value": 5.0}}},
                  "route": [{"destination": {"host": "player-profile"}}]}]}), created_s_ago=3 * 3600)
    return m.build(HEALTHY)


def ambient_namespace() -> Scenario:
    """Analytics runs in ambient mode: no sidecars by design, ztunnel for L4, a waypoint for L7."""
    m = Mesh("ambient-namespace",
             "Healthy: namespace analytics in ambient mode (no sidecars, ztunnel + waypoint), web with sidecars",
             "no fault: analytics is labelled istio.io/dataplane-mode=ambient, so its pods run without "
             "sidecars by design; ztunnel (a DaemonSet in istio-system) reports their L4 traffic and the "
             "waypoint reports L7 (reporter=waypoint)")
    m.namespace("web")
    m.namespace("analytics", ambient=True, labels={"istio.io/use-waypoint": "waypoint"})
    dash = m.workload("web", "dashboard", "v4", replicas=2)
    query = m.workload("analytics", "query-api", "v2", replicas=2)
    store = m.workload("analytics", "warehouse", "v1", replicas=2, port=5432)
    m.call(dash, query, 15.0, 85.0, 400.0, reporters=("source", "waypoint"))
    m.call(dash, query, 2.0, 85.0, 400.0, protocol="tcp", reporters=("destination",), tcp_bps=(4200.0, 91000.0))
    m.call(query, store, 6.0, 30.0, 140.0, protocol="tcp", reporters=("source", "destination"),
           tcp_bps=(2600.0, 380000.0))
    m.objects.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                      "metadata": {"name": "waypoint", "namespace": "analytics",
                                   "labels": {"istio.io/waypoint-for": "service"}},
                      "spec": {"gatewayClassName": "istio-waypoint",
                               "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})
    return m.build(HEALTHY)


def old_restart() -> Scenario:
    """Insurance claims: one container restarted once, three days ago, and has run fine since."""
    m = Mesh("old-restart",
             "Healthy: claims-api's container restarted once 2.9 days ago (OOMKilled), fine since",
             "no fault: restartCount 1 on one claims-api pod, lastState terminated (OOMKilled) 2.9 days "
             "ago; the pods have run 9 days and serve without errors")
    m.namespace("claims")
    api = m.workload("claims", "claims-api", "v3", replicas=2)
    docs = m.workload("claims", "document-store", "v2", replicas=2)
    fraud = m.workload("claims", "fraud-rules", "v6")
    m.call(api, docs, 19.0, 24.0, 110.0)
    m.call(api, fraud, 19.0, 7.0, 30.0)
    m.pods(api, PodState(started_s_ago=9 * 86400.0, replica=0,
                         restarts=(Restart("app", count=1, s_ago=2.9 * 86400, reason="OOMKilled", exit_code=137,
                                           ran_s=6.1 * 86400),)))
    return m.build(HEALTHY)


def batch_spiky_p99() -> Scenario:
    """Energy metering: a CronJob's run every 11 minutes hits the readings store hard; its p99
    jumps during runs, always under the 1 s objective."""
    m = Mesh("batch-spiky-p99",
             "Healthy: batch job meter-rollup runs in bursts; readings-store p99 spikes to 880 ms, within SLO",
             "no fault: the CronJob meter-rollup runs 4 minutes every 11 minutes; while it runs, "
             "readings-store's p99 rises to 880 ms (under the 1 s objective) and falls back after")
    m.namespace("metering")
    job = m.workload("metering", "meter-rollup", "v1", kind="Job", name="meter-rollup")
    store = m.workload("metering", "readings-store", "v5", replicas=3)
    ingest = m.workload("metering", "meter-ingest", "v2", replicas=2)
    m.call(ingest, store, 60.0, 6.0, 40.0)
    # A phase holds until its age: idle until each run started, running for 4 minutes before
    # the next idle stretch. The current run started 150 s ago.
    m.job_calls(job, store, 40.0, 45.0, 880.0, (150.0, 810.0, 1470.0, 2130.0, 2790.0, 3450.0), 420.0)
    m.pods(job, PodState(started_s_ago=160.0))
    return m.build(HEALTHY)


def background_errors() -> Scenario:
    """E-learning: a little of everything below threshold — 503s, 500s, resets, client 404s."""
    m = Mesh("background-errors",
             "Healthy: background 5xx of 0.05-0.4% and 2.5% client 404s across services, under thresholds",
             "no fault: every edge's 5xx share stays under 1% (0.4% 503 on enrollment, 0.2% 500 on "
             "video-catalog, 0.05% 503 UC resets on progress-tracker) and the 404s are clients asking "
             "for courses that do not exist", ingress_host="learn.brightpath.example:8080")
    m.namespace("courses")
    gw = m.ingress_gateway()
    api = m.workload("courses", "courses-api", "v7", replicas=3)
    enroll = m.workload("courses", "enrollment", "v3", replicas=2)
    video = m.workload("courses", "video-catalog", "v12", replicas=2)
    progress = m.workload("courses", "progress-tracker", "v2", replicas=2)
    m.call(gw, api, 85.0, 48.0, 260.0, ("404", "-", 0.025), ("503", "-", 0.003), ("500", "-", 0.0015))
    m.call(api, enroll, 30.0, 12.0, 55.0, ("503", "-", 0.004))
    m.call(api, video, 60.0, 20.0, 95.0, ("404", "-", 0.035), ("500", "-", 0.002))
    m.call(api, progress, 40.0, 6.0, 26.0, ("503", "UC", 0.0005))
    m.apply(resource("Telemetry", "courses", "access-logs", {
        "accessLogging": [{"providers": [{"name": "envoy"}],
                           "filter": {"expression": "response.code >= 400"}}]}))
    return m.build(HEALTHY)


def passthrough_egress() -> Scenario:
    """A newsroom calls outside the mesh: a registered wire-service API (ServiceEntry) and, under
    the default ALLOW_ANY, a CDN purge endpoint nobody registered (PassthroughCluster)."""
    m = Mesh("passthrough-egress",
             "Healthy: external calls through PassthroughCluster (ALLOW_ANY) and a ServiceEntry host",
             "no fault: outboundTrafficPolicy is ALLOW_ANY (the default), so article-api's calls to an "
             "unregistered CDN purge endpoint go through PassthroughCluster (destination workload "
             "unknown, as for every external call) and succeed but for 0.3% 503 from the CDN itself; the "
             "wire-service API has a ServiceEntry")
    m.namespace("newsroom")
    api = m.workload("newsroom", "article-api", "v9", replicas=2, port=80)
    editor = m.workload("newsroom", "editor-ui", "v3")
    m.call(editor, api, 6.0, 40.0, 210.0)
    m.external(api, "PassthroughCluster", 2.5, 60.0, 320.0, ("503", "-", 0.003))  # the CDN has bad moments
    m.external(api, "api.wirefeed.example", 4.0, 90.0, 400.0, namespace="newsroom")
    m.count(api, "cluster.PassthroughCluster.upstream_rq_total", 2.5 / api.replicas)
    m.count(api, "cluster.PassthroughCluster.upstream_cx_total", 0.2 / api.replicas)
    m.apply(resource("ServiceEntry", "newsroom", "wirefeed", {
        "hosts": ["api.wirefeed.example"], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}))
    return m.build(HEALTHY)


def cert_rotation() -> Scenario:
    """IoT telemetry: certificates at every point of a normal rotation, some with short lifetimes."""
    m = Mesh("cert-rotation",
             "Healthy: workload certificates mid-rotation (one 11.9h into 24h, a 1h-lifetime cert 34 min old)",
             "no fault: istio-agent rotates at half the lifetime; ingest-gateway's 24 h certificate is "
             "11.9 h old (about to rotate), device-registry's just rotated, rules-engine uses 1 h "
             "certificates (secretTTL 1h) and holds one issued 34 min ago, alert-router 6 h ones")
    m.namespace("devices")
    ingest = m.workload("devices", "ingest-gateway", "v3", replicas=2)
    registry = m.workload("devices", "device-registry", "v8")
    rules = m.workload("devices", "rules-engine", "v2", replicas=2)
    alerts = m.workload("devices", "alert-router", "v1")
    m.call(ingest, registry, 120.0, 3.0, 14.0)
    m.call(ingest, rules, 120.0, 5.0, 22.0)
    m.call(rules, alerts, 4.0, 9.0, 35.0)
    m.cert(ingest, 11.9)
    m.cert(registry, 0.05)
    m.cert(rules, 34 / 60, lifetime_h=1.0)
    m.cert(alerts, 2.2, lifetime_h=6.0)
    return m.build(HEALTHY)
