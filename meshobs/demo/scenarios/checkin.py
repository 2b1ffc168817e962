"""An airline's check-in: passengers' apps and kiosks reach checkin-api through the ingress;
check-in reads a gRPC seat map (an 8 % canary beside it), prints bag tags (PostgreSQL behind
them, over TCP), credits loyalty points, and verifies passports with an API outside the mesh
(a ServiceEntry). At every boarding wave a Job prints the wave's bag tags in bulk.

Two meshes share it: one healthy but noisy, and one whose DestinationRule for bag-tags keeps a
queue of 4 pending requests: the boarding wave running now fills it, and checkin-api's circuit
breaker sheds what does not fit (503 UO on checkin-api's side only; the DestinationRule has not
changed in a month, the load did)."""

from __future__ import annotations

from typing import Any

from ..author import Mesh, fqdn, resource
from ..expect import Expectation
from ..scenario import Scenario, WorkloadSpec
from ..state import PodState
from ..traffic import LatencyProfile, Reported

HOST = "checkin.skyloft.example"
WAVE_S = 240.0  # the current boarding wave began 4 minutes ago


def _checkin(m: Mesh, pending: int) -> dict[str, WorkloadSpec]:
    """The shared mesh and its noise; the DestinationRule of bag-tags queues ``pending``."""
    m.namespace("checkin")
    m.namespace("bags")
    m.namespace("loyalty")
    gw = m.ingress_gateway(replicas=2)
    api = m.workload("checkin", "checkin-api", "v41", replicas=4)
    seats = m.workload("checkin", "seat-map", "v4", replicas=2, port=9090)
    seats_canary = m.workload("checkin", "seat-map", "v5", port=9090)
    tags = m.workload("bags", "bag-tags", "v9", replicas=3)
    tag_db = m.workload("bags", "tag-db", "v14", port=5432, kind="StatefulSet", name="tag-db")
    points = m.workload("loyalty", "loyalty-points", "v6", replicas=2)
    wave = m.workload("bags", "wave-printer", "v2", kind="Job", name="wave-printer")

    m.call(api, seats, 60.0 * 0.92, 14.0, 80.0, protocol="grpc", grpc_statuses=("0",))
    m.call(api, seats_canary, 60.0 * 0.08, 16.0, 95.0, protocol="grpc", grpc_statuses=("0",))
    # Loyalty: passengers without an account get 404 (the app shows "join"); a slow partner sync.
    m.call(api, points, 45.0, 20.0, 140.0, ("404", "-", 0.07))
    m.call(tags, tag_db, 25.0, 0.8, 6.0, protocol="tcp", tcp_bps=(310000.0, 120000.0))
    m.external(api, "verify.passport-check.example", 9.0, 180.0, 900.0, namespace="checkin",
               protocol="tcp", tcp_bps=(4100.0, 2600.0))
    # wave-printer: one run per boarding wave (every 20 minutes, 6 minutes of bulk printing).
    m.job_calls(wave, tags, 70.0, 35.0, 240.0, (WAVE_S, WAVE_S + 1200.0, WAVE_S + 2400.0), 360.0)
    m.pods(wave, PodState(started_s_ago=WAVE_S + 10.0))

    m.apply(resource("Gateway", "checkin", "checkin-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}]}))
    m.apply(resource("VirtualService", "checkin", "checkin-api", {
        "hosts": [HOST], "gateways": ["checkin-gateway"],
        "http": [{"route": [{"destination": {"host": "checkin-api", "port": {"number": 8080}}}],
                  "retries": {"attempts": 2, "retryOn": "503,reset"}, "timeout": "6s"}]}))
    m.apply(resource("VirtualService", "checkin", "seat-map", {
        "hosts": ["seat-map"],
        "http": [{"route": [{"destination": {"host": "seat-map", "subset": "stable"}, "weight": 92},
                            {"destination": {"host": "seat-map", "subset": "canary"}, "weight": 8}]}]}),
        changed_s_ago=2 * 86400.0)
    m.apply(resource("DestinationRule", "checkin", "seat-map", {
        "host": "seat-map",
        "subsets": [{"name": "stable", "labels": {"version": "v4"}},
                    {"name": "canary", "labels": {"version": "v5"}}]}))
    pool: dict[str, Any] = {"http": {"http1MaxPendingRequests": pending, "maxRequestsPerConnection": 50},
                            "tcp": {"maxConnections": 64}}
    m.apply(resource("DestinationRule", "bags", "bag-tags", {
        "host": fqdn("bag-tags", "bags"), "trafficPolicy": {"connectionPool": pool}}),
        created_s_ago=31 * 86400.0)
    m.apply(resource("ServiceEntry", "checkin", "passport-check", {
        "hosts": ["verify.passport-check.example"], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}))
    m.apply(resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}))
    return {"gw": gw, "api": api, "tags": tags}


def checkin_noisy() -> Scenario:
    """Healthy but noisy: retried 503s, loyalty 404s, an 8 % gRPC canary, a boarding-wave
    burst into a bag-tag service whose queue is deep enough for it."""
    m = Mesh("checkin-noisy",
             "Healthy: airline check-in with retried 503s, loyalty 404s, an 8% gRPC canary, a boarding-wave burst",
             "no fault: checkin-api fails 0.3% of first attempts and the gateway's two retries hide it; "
             "loyalty-points answers 404 to passengers without an account (7%); seat-map v5 takes 8% as "
             "its VirtualService weighs it; wave-printer prints each boarding wave's bag tags at 70 req/s "
             "for 6 minutes every 20 (the wave running now included), within bag-tags' connection pool "
             "(1024 pending); tag-db is PostgreSQL over TCP; passports are verified over TLS through a "
             "ServiceEntry",
             ingress_host=f"{HOST}:8080")
    w = _checkin(m, pending=1024)
    # 0.3 % of checkin-api's first attempts fail; the gateway's retries hide nearly all.
    m.retried_call(w["gw"], w["api"], 60.0, first_attempt_failure=0.003, retries=2, p50=90.0, p99=620.0,
                   caller_p50=92.0, caller_p99=650.0)
    m.call(w["api"], w["tags"], 22.0, 30.0, 210.0)
    return m.build(Expectation("healthy", healthy=True))


def checkin_pending_overflow() -> Scenario:
    """bag-tags' DestinationRule queues 4 pending requests per caller proxy: with the boarding
    wave's load on bag-tags, checkin-api's breaker sheds 11 % of its calls (503 UO)."""
    m = Mesh("checkin-pending-overflow",
             "Airline check-in: bag-tags' connection pool (4 pending) overflows in a boarding wave: 11% 503 UO",
             "DestinationRule bags/bag-tags (unchanged for a month) allows 4 pending requests "
             "(connectionPool.http.http1MaxPendingRequests) per caller proxy; the boarding wave that began "
             "4 minutes ago (wave-printer, 70 req/s into bag-tags) slows bag-tags enough that "
             "checkin-api's queue overflows: its sidecars shed 11% of their calls to bag-tags with 503 UO "
             "(upstream_rq_pending_overflow, circuit_breakers.default.rq_pending_open), which bag-tags "
             "never sees; check-ins fail 500 for those passengers. Each earlier wave did the same",
             ingress_host=f"{HOST}:8080")
    w = _checkin(m, pending=4)
    shed = 22.0 * 0.11
    quiet = Reported(22.0, (("200", "-", 1.0),), LatencyProfile(30.0, 210.0))
    m.call(w["api"], w["tags"], 22.0 - shed, 30.0, 210.0, onset_s_ago=WAVE_S, before=quiet)
    m.unreached(w["api"], w["tags"], shed, ("503", "UO", 1.0), onset_s_ago=WAVE_S)
    cluster = f"cluster.outbound|8080||{fqdn('bag-tags', 'bags')}."
    m.count(w["api"], cluster + "upstream_rq_pending_overflow", shed / 4, WAVE_S)
    m.count(w["api"], cluster + "circuit_breakers.default.rq_pending_open", 0.0, WAVE_S)
    m.call(w["gw"], w["api"], 60.0, 95.0, 700.0, ("500", "-", shed / 60.0), onset_s_ago=WAVE_S)
    return m.build(Expectation("circuit-breaker", target="checkin/checkin-api",
                               subjects=("DestinationRule bags/bag-tags", "Service bags/bag-tags",
                                         "Edge checkin/checkin-api -> bags/bag-tags"),
                               symptom_ok=True))
