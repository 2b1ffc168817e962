"""A hospital's lab-results pipeline: the laboratory's analysers post HL7 results through the
ingress to hl7-ingest, which flags them against a gRPC reference-range service (a 6 % canary
beside it), stores them in PostgreSQL over TCP and reports notifiable results to a public-health
registry outside the mesh (a ServiceEntry over TLS). Clinicians read results through
results-api, which resolves patients with a master patient index; a Job renders the wards'
cumulative reports every quarter hour.

One mesh, healthy but noisy: every number below is how a hospital's mesh looks on a good day."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..state import PodState, Restart

PORTAL_HOST = "results.st-aldric-hospital.example"
HL7_HOST = "hl7.st-aldric-hospital.example"
REGISTRY_HOST = "ingest.notifiable-registry.example"
REPORT_RUN_S = 190.0  # the current cumulative-report run began 3 min 10 s ago


def labresults_noisy() -> Scenario:
    """Healthy but noisy: retried 503s from the patient index, clinicians' 404s and 401s, gRPC
    NOT_FOUND for unknown analytes and rare UNAVAILABLE, a 6 % canary, a report Job's bursts,
    PostgreSQL over TCP, a registry over TLS, and a restart four days old."""
    m = Mesh("labresults-noisy",
             "Healthy: hospital lab results with retried 503s, clinicians' 404/401, a 6% gRPC canary, a report Job",
             "no fault: patient-index fails 0.4% of first attempts and results-api's two retries hide it; "
             "results-api answers 404 to clinicians polling results not yet released (3.5%) and 401 to "
             "expired sessions (0.6%); hl7-ingest refuses 0.3% malformed HL7 messages (400); "
             "reference-ranges answers gRPC NOT_FOUND for analyte codes it does not know (0.8%, the "
             "instruments' business) and UNAVAILABLE to 0.05% (0.15% on its v4 canary, which takes 6% "
             "as its VirtualService weighs it, p99 48 ms against 40); cumulative-report renders the "
             "wards' reports at 65 req/s for 5 minutes every 15 (the run now included); results-db is "
             "PostgreSQL over TCP; notifiable results go to the public-health registry over TLS through "
             "a ServiceEntry; one hl7-ingest container restarted once 4.5 days ago (OOMKilled) and has "
             "run fine since",
             ingress_host=f"{PORTAL_HOST}:8080")
    m.namespace("portal")
    m.namespace("lab")
    m.namespace("mpi")
    gw = m.ingress_gateway(replicas=2)
    api = m.workload("portal", "results-api", "v12", replicas=4)
    reports = m.workload("portal", "cumulative-report", "v5", kind="Job", name="cumulative-report")
    ingest = m.workload("lab", "hl7-ingest", "v7", replicas=3)
    ranges = m.workload("lab", "reference-ranges", "v3", replicas=2, port=9090)
    ranges_canary = m.workload("lab", "reference-ranges", "v4", port=9090)
    db = m.workload("lab", "results-db", "v16", port=5432, kind="StatefulSet", name="results-db")
    mpi = m.workload("mpi", "patient-index", "v9", replicas=2)

    # Clinicians: results not yet released (404) and expired sessions (401) are theirs, not ours.
    m.call(gw, api, 48.0, 70.0, 480.0, ("404", "-", 0.035), ("401", "-", 0.006))
    # The patient index fails 0.4 % of first attempts; results-api's two retries hide nearly all.
    m.retried_call(api, mpi, 30.0, first_attempt_failure=0.004, retries=2, p50=6.0, p99=35.0,
                   caller_p50=6.3, caller_p99=41.0)
    # Analysers post results; 0.3 % are malformed HL7 the instrument must resend (400).
    m.call(gw, ingest, 26.0, 40.0, 310.0, ("400", "-", 0.003))
    # Reference ranges over gRPC: NOT_FOUND for unknown analyte codes, rare UNAVAILABLE, both
    # inside HTTP 200 as gRPC answers; the v4 canary a little slower and a little less available.
    m.call(ingest, ranges, 26.0 * 0.94, 7.0, 40.0, ("200", "-", 0.008), ("200", "-", 0.0005),
           protocol="grpc", grpc_statuses=("0", "5", "14"))
    m.call(ingest, ranges_canary, 26.0 * 0.06, 9.0, 48.0, ("200", "-", 0.008), ("200", "-", 0.0015),
           protocol="grpc", grpc_statuses=("0", "5", "14"))
    # results-db: PostgreSQL over TCP (connections and bytes, no requests).
    m.call(ingest, db, 14.0, 1.1, 7.0, protocol="tcp", tcp_bps=(520000.0, 140000.0))
    m.call(api, db, 22.0, 0.9, 6.0, protocol="tcp", tcp_bps=(260000.0, 910000.0))
    # Notifiable results (a few per minute) to the public-health registry, TLS through a ServiceEntry.
    m.external(ingest, REGISTRY_HOST, 1.5, 210.0, 950.0, namespace="lab", protocol="tcp",
               tcp_bps=(3800.0, 1200.0))
    # cumulative-report: a Job every 15 minutes, 5 minutes of rendering the wards' reports.
    m.job_calls(reports, api, 65.0, 55.0, 640.0,
                (REPORT_RUN_S, REPORT_RUN_S + 900.0, REPORT_RUN_S + 1800.0, REPORT_RUN_S + 2700.0), 600.0)
    m.pods(reports, PodState(started_s_ago=REPORT_RUN_S + 10.0))
    # One hl7-ingest container was OOMKilled once, 4.5 days ago, and has run fine since.
    m.pods(ingest, PodState(started_s_ago=16 * 86400.0, replica=1,
                            restarts=(Restart("app", count=1, s_ago=4.5 * 86400, reason="OOMKilled",
                                              exit_code=137, ran_s=11.5 * 86400),)))

    m.apply(resource("Gateway", "portal", "hospital-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                     "hosts": [PORTAL_HOST, HL7_HOST]}]}))
    m.apply(resource("VirtualService", "portal", "results-api", {
        "hosts": [PORTAL_HOST], "gateways": ["hospital-gateway"],
        "http": [{"route": [{"destination": {"host": "results-api", "port": {"number": 8080}}}],
                  "timeout": "10s"}]}))
    m.apply(resource("VirtualService", "lab", "hl7-ingest", {
        "hosts": [HL7_HOST], "gateways": ["portal/hospital-gateway"],
        "http": [{"route": [{"destination": {"host": "hl7-ingest", "port": {"number": 8080}}}],
                  "timeout": "15s"}]}))
    m.apply(resource("VirtualService", "mpi", "patient-index", {
        "hosts": ["patient-index"],
        "http": [{"route": [{"destination": {"host": "patient-index"}}],
                  "retries": {"attempts": 2, "perTryTimeout": "300ms", "retryOn": "5xx,reset"}}]}))
    m.apply(resource("VirtualService", "lab", "reference-ranges", {
        "hosts": ["reference-ranges"],
        "http": [{"route": [{"destination": {"host": "reference-ranges", "subset": "stable"}, "weight": 94},
                            {"destination": {"host": "reference-ranges", "subset": "canary"}, "weight": 6}]}]}),
        changed_s_ago=3 * 86400.0)
    m.apply(resource("DestinationRule", "lab", "reference-ranges", {
        "host": "reference-ranges",
        "subsets": [{"name": "stable", "labels": {"version": "v3"}},
                    {"name": "canary", "labels": {"version": "v4"}}]}))
    m.apply(resource("ServiceEntry", "lab", "notifiable-registry", {
        "hosts": [REGISTRY_HOST], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}))
    m.apply(resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}))
    return m.build(Expectation("healthy", healthy=True))
