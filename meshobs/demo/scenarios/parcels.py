"""A parcel-delivery dispatcher: couriers' apps reach dispatch-api through the ingress; dispatch
asks a gRPC routing engine for tours and an ETA service for promises; the routing engine reads a
geo cache (Redis behind it, over TCP) and a maps API outside the mesh (a ServiceEntry). A
manifest job bursts into the geo cache every ten minutes.

Three meshes share it: one healthy but noisy, one where a VirtualService edit left the ETA
service's old API without a route (404 NR on the caller's own sidecar: no pod ever sees those
requests), and one where the routing engine slows down and dispatch-api gives up on it (the
callers' own deadline: Envoy reports DC, downstream disconnect, on both sides, not a 5xx)."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario, WorkloadSpec
from ..state import PodState
from ..traffic import LatencyProfile, Reported

HOST = "api.parcelwise.example"
EDIT_S = 11 * 60.0 + 25.0  # the eta-service VirtualService edit
NR_ONSET_S = 11 * 60.0  # its first 404 NR, 25 s later (istiod's push)
SLOW_ONSET_S = 17 * 60.0  # the routing engine's slowdown


def _dispatch(m: Mesh) -> dict[str, WorkloadSpec]:
    """The mesh the three scenarios share, with its noise; not dispatch-api's edges to the
    routing engine and to the ETA service, which differ."""
    m.namespace("dispatch")
    m.namespace("routing")
    m.namespace("geo")
    gw = m.ingress_gateway(replicas=2)
    dispatch = m.workload("dispatch", "dispatch-api", "v22", replicas=3)
    sessions = m.workload("dispatch", "courier-session", "v3", replicas=2)
    engine = m.workload("routing", "routing-engine", "v7", replicas=3, port=9090)
    canary = m.workload("routing", "routing-engine", "v8", port=9090)
    eta = m.workload("routing", "eta-service", "v4", replicas=2)
    cache = m.workload("geo", "geo-cache", "v12", replicas=3)
    redis = m.workload("geo", "geo-redis", "v7", port=6379, kind="StatefulSet", name="geo-redis")
    job = m.workload("dispatch", "manifest-rebuild", "v2", kind="Job", name="manifest-rebuild")

    # Couriers' apps refresh their sessions: their own 401s and 404s (expired, logged out).
    m.call(gw, sessions, 6.0, 4.0, 20.0, ("401", "-", 0.03), ("404", "-", 0.02))
    # The routing engine's canary: 10 % of tours, as the VirtualService weighs them.
    m.call(dispatch, canary, 50.0 * 0.10, 95.0, 520.0, ("200", "-", 0.0), protocol="grpc",
           grpc_statuses=("0",))
    # The geo cache: every tour reads it; the cache's Redis over TCP.
    for reader, share in ((engine, 0.9), (canary, 0.1)):
        m.call(reader, cache, 180.0 * share, 2.5, 14.0, ("503", "-", 0.002))
    m.call(cache, redis, 30.0, 0.4, 2.0, protocol="tcp", tcp_bps=(520000.0, 2100000.0))
    # The maps API outside the mesh, over TLS through a ServiceEntry.
    m.external(engine, "tiles.mapvector.example", 12.0, 140.0, 700.0, namespace="routing",
               protocol="tcp", tcp_bps=(9100.0, 380000.0))
    # manifest-rebuild: a Job every 10 minutes, 3 minutes of bulk geo lookups (p99 260 ms then).
    m.job_calls(job, cache, 90.0, 9.0, 260.0, (130.0, 730.0, 1330.0, 1930.0, 2530.0, 3130.0), 420.0)
    m.pods(job, PodState(started_s_ago=140.0))

    m.apply(resource("Gateway", "dispatch", "parcel-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}]}))
    m.apply(resource("VirtualService", "dispatch", "dispatch-api", {
        "hosts": [HOST], "gateways": ["parcel-gateway"],
        "http": [{"route": [{"destination": {"host": "dispatch-api", "port": {"number": 8080}}}],
                  "retries": {"attempts": 2, "retryOn": "503,reset"}, "timeout": "5s"}]}))
    m.apply(resource("VirtualService", "routing", "routing-engine", {
        "hosts": ["routing-engine.routing.svc.cluster.local"],
        "http": [{"route": [{"destination": {"host": "routing-engine.routing.svc.cluster.local",
                                             "subset": "stable"}, "weight": 90},
                            {"destination": {"host": "routing-engine.routing.svc.cluster.local",
                                             "subset": "canary"}, "weight": 10}]}]}),
        changed_s_ago=3 * 3600.0)
    m.apply(resource("DestinationRule", "routing", "routing-engine", {
        "host": "routing-engine.routing.svc.cluster.local",
        "subsets": [{"name": "stable", "labels": {"version": "v7"}},
                    {"name": "canary", "labels": {"version": "v8"}}]}))
    m.apply(resource("ServiceEntry", "routing", "mapvector-tiles", {
        "hosts": ["tiles.mapvector.example"], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}))
    m.apply(resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}))
    return {"gw": gw, "dispatch": dispatch, "engine": engine, "eta": eta}


def _eta_routes(*, v1: bool) -> dict[str, object]:
    """eta-service's VirtualService: the v2 API by prefix, and (unless ``v1`` is False) the
    catch-all route the old API's calls take."""
    v2 = {"name": "v2", "match": [{"uri": {"prefix": "/v2/"}}],
          "route": [{"destination": {"host": "eta-service.routing.svc.cluster.local"}}], "timeout": "800ms"}
    rest = {"name": "default", "route": [{"destination": {"host": "eta-service.routing.svc.cluster.local"}}]}
    return {"hosts": ["eta-service.routing.svc.cluster.local"], "http": [v2, rest] if v1 else [v2]}


def parcels_noisy() -> Scenario:
    """Healthy but noisy: retried 503s, client 4xx, a 10 % gRPC canary, a bursting Job, a TCP
    Redis and an external maps API, all as they should be."""
    m = Mesh("parcels-noisy",
             "Healthy: parcel dispatch with 0.5% retried 503s, a 10% gRPC canary, a bursting manifest job",
             "no fault: dispatch-api fails 0.5% of first attempts and the gateway's two retries hide it; "
             "couriers' apps get 401/404 on session refreshes (their own); routing-engine v8 takes 10% of "
             "tours as its VirtualService weighs it (slower, within SLO); manifest-rebuild bursts 90 req/s "
             "into geo-cache for 7 minutes every 10 (p99 260 ms then); geo-redis is Redis over TCP; the "
             "maps API is reached over TLS through a ServiceEntry",
             ingress_host=f"{HOST}:8080")
    w = _dispatch(m)
    # 0.5 % of dispatch-api's first attempts fail (a flaky pool behind it); the gateway's two
    # retries leave nearly none.
    m.retried_call(w["gw"], w["dispatch"], 75.0, first_attempt_failure=0.005, retries=2, p50=48.0,
                   p99=310.0, caller_p50=49.0, caller_p99=330.0)
    m.call(w["dispatch"], w["engine"], 50.0 * 0.9, 80.0, 450.0, protocol="grpc", grpc_statuses=("0",))
    m.call(w["dispatch"], w["eta"], 40.0, 6.0, 35.0)
    m.apply(resource("VirtualService", "routing", "eta-service", _eta_routes(v1=True)))
    return m.build(Expectation("healthy", healthy=True))


def parcels_eta_no_route() -> Scenario:
    """A VirtualService edit dropped the ETA service's catch-all route: the old API's calls
    (38 %) get 404 NR from dispatch-api's own sidecar and never reach an eta-service pod."""
    m = Mesh("parcels-eta-no-route",
             "Parcel dispatch: VirtualService eta-service edited, its default route gone: 38% 404 NR",
             "VirtualService routing/eta-service was edited 11 min 25 s ago (generation 2, kubectl-edit): "
             "the http route 'default' (no match: every path) was deleted with the v2 rollout, leaving "
             "only the /v2/ prefix; dispatch-api still calls /v1/eta for 38% of promises, which its own "
             "sidecar answers 404 with response flag NR (no route) since 11 min ago; eta-service's pods "
             "never see them (source-reported only); dispatch-api answers couriers 500 for those tours",
             ingress_host=f"{HOST}:8080")
    w = _dispatch(m)
    m.call(w["dispatch"], w["engine"], 50.0 * 0.9, 80.0, 450.0, protocol="grpc", grpc_statuses=("0",))
    m.call(w["dispatch"], w["eta"], 40.0 * 0.62, 6.0, 35.0, onset_s_ago=NR_ONSET_S,
           before=Reported(40.0, (("200", "-", 1.0),), LatencyProfile(6.0, 35.0)))
    m.unreached(w["dispatch"], w["eta"], 40.0 * 0.38, ("404", "NR", 1.0), onset_s_ago=NR_ONSET_S)
    # A tour without its promise fails whole: 15.2 of the couriers' 75 req/s.
    m.call(w["gw"], w["dispatch"], 75.0, 48.0, 310.0, ("500", "-", 15.2 / 75.0), onset_s_ago=NR_ONSET_S)
    m.apply(resource("VirtualService", "routing", "eta-service", _eta_routes(v1=False)),
            created_s_ago=60 * 86400, changed_s_ago=EDIT_S, changed_fields=("http",))
    return m.build(Expectation("config-change", target="dispatch/dispatch-api",
                               subjects=("VirtualService routing/eta-service",)))


def parcels_engine_disconnects() -> Scenario:
    """The routing engine slows down (p99 450 ms -> 2.6 s); dispatch-api's gRPC deadline of
    1.5 s cancels 14 % of its calls: both sidecars report DC (downstream disconnect, response
    code 0), not a 5xx, and dispatch-api answers couriers 504 for those tours."""
    m = Mesh("parcels-engine-disconnects",
             "Parcel dispatch: routing-engine slow since 17 min; dispatch-api's 1.5 s deadline cancels 14% (DC)",
             "routing-engine v7 (namespace routing) got slow 17 min ago (p50 80 -> 700 ms, p99 450 ms -> "
             "2.6 s: a tour solver regression); dispatch-api's own gRPC deadline of 1.5 s cancels 14% of "
             "its calls, which both sidecars report with response code 0 and flag DC (downstream "
             "disconnect: the caller hung up), not as a 5xx; dispatch-api answers couriers 504 for those "
             "tours. The canary v8 and everything below the engine are as fast as before",
             ingress_host=f"{HOST}:8080")
    w = _dispatch(m)
    normal = LatencyProfile(80.0, 450.0)
    calls = 50.0 * 0.9
    cancelled = (("200", "-", 0.86), ("0", "DC", 0.14))
    m.call(w["dispatch"], w["engine"], calls, 700.0, 1500.0, *cancelled[1:], protocol="grpc",
           grpc_statuses=("0", ""), onset_s_ago=SLOW_ONSET_S,
           before=Reported(calls, (("200", "-", 1.0),), normal, ("0",)),
           dest=Reported(calls, cancelled, LatencyProfile(700.0, 2600.0), ("0", "")),
           before_dest=Reported(calls, (("200", "-", 1.0),), normal, ("0",)))
    m.call(w["dispatch"], w["eta"], 40.0, 6.0, 35.0)
    m.call(w["gw"], w["dispatch"], 75.0, 760.0, 1560.0, ("504", "-", calls * 0.14 / 75.0),
           onset_s_ago=SLOW_ONSET_S, before=Reported(75.0, (("200", "-", 1.0),), LatencyProfile(110.0, 520.0)))
    m.apply(resource("VirtualService", "routing", "eta-service", _eta_routes(v1=True)))
    return m.build(Expectation("slow-hop", target="dispatch/dispatch-api",
                               subjects=("Service routing/routing-engine", "Workload routing/routing-engine-v7",
                                         "Edge dispatch/dispatch-api -> routing/routing-engine"),
                               symptom_ok=True))
