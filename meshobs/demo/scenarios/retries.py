"""Retries that hide a failing callee: a payments platform whose ledger database fails 30 % of
first attempts while the caller's retry policy absorbs nearly all of it."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario

ONSET_S = 1260.0  # the ledger started failing 21 minutes ago


def retries_mask_ledger() -> Scenario:
    """payments-api retries ledger-db up to 3 times; ledger-db answers 503 to 30 % of attempts."""
    m = Mesh("retries-mask-ledger",
             "Payments: ledger-db fails 30% of attempts; payments-api's retries hide it (<1% 503 URX)",
             "ledger-db (namespace ledger) answers 503 to 30% of the attempts it receives since 21 min "
             "ago; payments-api's VirtualService retries up to 3 times, so callers see only 0.8% "
             "503 URX (under the 1% threshold) while payments-api's p99 to the ledger tripled "
             "(32 -> 110 ms) and its Envoy counts upstream_rq_retry / retry_success / "
             "retry_limit_exceeded on the ledger-db cluster",
             ingress_host="pay.northwind.example:8080")
    m.namespace("payments")
    m.namespace("ledger")
    m.namespace("risk")
    gw = m.ingress_gateway()
    api = m.workload("payments", "payments-api", replicas=2)
    fraud = m.workload("payments", "fraud-check", "v2", replicas=2)
    ledger = m.workload("ledger", "ledger-db", "v3", replicas=3)
    scorer = m.workload("risk", "risk-scorer", "v7")
    m.call(gw, api, 58.0, 41.0, 390.0, ("503", "-", 0.0081 * 0.69), onset_s_ago=ONSET_S,
           before=None)
    m.retried_call(api, ledger, 40.0, first_attempt_failure=0.3, retries=3, p50=9.0, p99=32.0,
                   caller_p50=11.0, caller_p99=110.0, onset_s_ago=ONSET_S)
    m.call(api, fraud, 58.0, 14.0, 60.0)
    m.call(fraud, scorer, 29.0, 6.0, 25.0, protocol="grpc")
    m.apply(resource("Gateway", "payments", "payments-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                     "hosts": ["pay.northwind.example"]}]}))
    m.apply(resource("VirtualService", "payments", "payments-api", {
        "hosts": ["pay.northwind.example"], "gateways": ["payments-gateway"],
        "http": [{"route": [{"destination": {"host": "payments-api", "port": {"number": 8080}}}],
                  "timeout": "8s"}]}))
    m.apply(resource("VirtualService", "ledger", "ledger-db", {
        "hosts": ["ledger-db.ledger.svc.cluster.local"],
        "http": [{"name": "ledger", "route": [{"destination": {"host": "ledger-db.ledger.svc.cluster.local"}}],
                  "timeout": "6s",
                  "retries": {"attempts": 3, "perTryTimeout": "1500ms", "retryOn": "5xx,reset,connect-failure"}}]}))
    m.apply(resource("DestinationRule", "ledger", "ledger-db", {
        "host": "ledger-db.ledger.svc.cluster.local",
        "trafficPolicy": {"connectionPool": {"http": {"http1MaxPendingRequests": 256, "maxRetries": 64}}}}))
    m.apply(resource("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}))
    return m.build(Expectation("retries-masking", target="payments/payments-api",
                               subjects=("Service ledger/ledger-db", "Workload ledger/ledger-db-v3",
                                         "Edge payments/payments-api -> ledger/ledger-db"),
                               # The callee's own errors alone are not the diagnosis: the finding
                               # must say retries hid them (a retry stat, the retry policy...).
                               mentions=("retr",), symptom_ok=True))
