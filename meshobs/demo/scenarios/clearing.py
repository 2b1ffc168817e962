"""A card-clearing house on gRPC: terminals post authorisations through an HTTP edge to a gRPC
clearing engine, which quotes FX over REST, posts to a gRPC journal (a 5 % canary beside it)
backed by a PostgreSQL journal store over TCP, and settles with an interbank switch outside the
mesh (a ServiceEntry). A statement job bursts into the journal every quarter hour.

Two meshes share it: one healthy but noisy, one whose journal fails in a way the HTTP layer does
not show (gRPC status 14 UNAVAILABLE inside HTTP 200 responses, as every gRPC server answers)."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario, WorkloadSpec
from ..state import PodState
from ..traffic import LatencyProfile, Reported

HOST = "clear.tidewater.example"
FAULT_ONSET_S = 540.0  # the journal started answering UNAVAILABLE 9 minutes ago


def _clearing_house(m: Mesh) -> dict[str, WorkloadSpec]:
    """The mesh both scenarios share, with its noise: everything but the journal's main edge."""
    m.namespace("acquirer")
    m.namespace("clearing")
    m.namespace("posting")
    gw = m.ingress_gateway(replicas=2)
    terminals = m.workload("acquirer", "terminal-api", "v14", replicas=3)
    engine = m.workload("clearing", "clearing-engine", "v31", replicas=3, port=9090)
    fx = m.workload("clearing", "fx-quotes", "v6", replicas=2)
    journal = m.workload("posting", "journal", "v8", replicas=3, port=9090)
    canary = m.workload("posting", "journal", "v9", port=9090)
    store = m.workload("posting", "journal-store", "v15", replicas=2, port=5432)
    batch = m.workload("posting", "statement-batch", "v3", kind="Job", name="statement-batch")

    # Terminals: 0.3 % 503 that the gateway's retries mostly absorb, and clients' own 4xx.
    m.call(gw, terminals, 140.0, 38.0, 240.0, ("400", "-", 0.004), ("503", "URX", 0.0004))
    m.call(terminals, engine, 140.0, 22.0, 160.0, ("503", "-", 0.0003), protocol="grpc")
    # FX quotes fail 0.3 % of first attempts; the engine's retries (2) hide nearly all of it.
    m.retried_call(engine, fx, 90.0, first_attempt_failure=0.003, retries=2, p50=4.0, p99=21.0,
                   caller_p50=4.2, caller_p99=24.0)
    # The journal's canary: 5 % of the engine's postings, as the VirtualService weighs them.
    m.call(engine, canary, 140.0 * 0.05, 12.0, 70.0, protocol="grpc")
    # The journal store: PostgreSQL over TCP (no requests, only connections and bytes).
    for writer in (journal, canary):
        share = 0.95 if writer is journal else 0.05
        m.call(writer, store, 20.0 * share, 3.0, 18.0, protocol="tcp",
               tcp_bps=(410000.0 * share, 95000.0 * share))
    # The interbank switch, outside the mesh: TLS passthrough to a ServiceEntry host.
    m.external(engine, "switch.interbank-net.example", 3.0, 120.0, 600.0, namespace="clearing",
               protocol="tcp", tcp_bps=(6200.0, 4100.0))
    # statement-batch: a Job run every 15 minutes, 5 minutes of bulk reads into the journal.
    m.job_calls(batch, journal, 110.0, 30.0, 420.0, (200.0, 1100.0, 2000.0, 2900.0), 600.0, protocol="grpc")
    m.pods(batch, PodState(started_s_ago=210.0))

    m.apply(resource("Gateway", "acquirer", "clearing-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}]}))
    m.apply(resource("VirtualService", "acquirer", "terminal-api", {
        "hosts": [HOST], "gateways": ["clearing-gateway"],
        "http": [{"route": [{"destination": {"host": "terminal-api", "port": {"number": 8080}}}],
                  "retries": {"attempts": 2, "retryOn": "503,reset"}, "timeout": "4s"}]}))
    m.apply(resource("VirtualService", "clearing", "fx-quotes", {
        "hosts": ["fx-quotes"],
        "http": [{"route": [{"destination": {"host": "fx-quotes"}}],
                  "retries": {"attempts": 2, "perTryTimeout": "250ms", "retryOn": "5xx,reset"}}]}))
    m.apply(resource("VirtualService", "posting", "journal", {
        "hosts": ["journal.posting.svc.cluster.local"],
        "http": [{"route": [{"destination": {"host": "journal.posting.svc.cluster.local", "subset": "stable"},
                             "weight": 95},
                            {"destination": {"host": "journal.posting.svc.cluster.local", "subset": "canary"},
                             "weight": 5}]}]}), changed_s_ago=5400.0)
    m.apply(resource("DestinationRule", "posting", "journal", {
        "host": "journal.posting.svc.cluster.local",
        "subsets": [{"name": "stable", "labels": {"version": "v8"}},
                    {"name": "canary", "labels": {"version": "v9"}}]}))
    m.apply(resource("ServiceEntry", "clearing", "interbank-switch", {
        "hosts": ["switch.interbank-net.example"], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}))
    m.apply(resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}))
    return {"engine": engine, "journal": journal}


def clearing_grpc_noisy() -> Scenario:
    """Healthy but noisy: background 503s under retries, a 5 % canary, a bursting batch job,
    a TCP database and an external switch, all as they should be."""
    m = Mesh("clearing-grpc-noisy",
             "Healthy: gRPC clearing house with 0.3% retried 503s, a 5% journal canary, a bursting batch job",
             "no fault: fx-quotes fails 0.3% of first attempts and clearing-engine's two retries hide it; "
             "journal v9 takes 5% of postings as its VirtualService weighs it; statement-batch bursts to "
             "110 req/s for 5 minutes every 15 (journal p99 420 ms then); journal-store is PostgreSQL over "
             "TCP; the interbank switch is reached over TLS through a ServiceEntry",
             ingress_host=f"{HOST}:8080")
    w = _clearing_house(m)
    m.call(w["engine"], w["journal"], 140.0 * 0.95, 11.0, 64.0, protocol="grpc")
    return m.build(Expectation("healthy", healthy=True))


def clearing_grpc_unavailable() -> Scenario:
    """The journal answers 12 % of postings with gRPC status 14 UNAVAILABLE, in HTTP 200
    responses: no 5xx anywhere, and the engine's postings fail."""
    m = Mesh("clearing-grpc-unavailable",
             "gRPC journal answers 12% UNAVAILABLE (status 14) inside HTTP 200 since 9 min",
             "journal v8 (namespace posting) lost half its connection pool to journal-store 9 minutes "
             "ago and answers 12% of clearing-engine's postings with grpc-status 14 UNAVAILABLE; gRPC "
             "carries its status in the trailers of an HTTP 200, so Istio reports response_code 200 "
             "with grpc_response_status 14 on both sides, and no HTTP error appears anywhere",
             ingress_host=f"{HOST}:8080")
    w = _clearing_house(m)
    m.call(w["engine"], w["journal"], 140.0 * 0.95, 11.0, 64.0, ("200", "-", 0.12), protocol="grpc",
           grpc_statuses=("0", "14"), onset_s_ago=FAULT_ONSET_S,
           before=Reported(140.0 * 0.95, (("200", "-", 1.0),), LatencyProfile(11.0, 64.0), ("0",)))
    return m.build(Expectation("callee-failing", target="clearing/clearing-engine",
                               subjects=("Service posting/journal", "Workload posting/journal-v8",
                                         "Edge clearing/clearing-engine -> posting/journal"),
                               symptom_ok=True))
