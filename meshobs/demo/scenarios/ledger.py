"""A savings bank's ledger platform: branch and app traffic comes in through the ingress gateway
to accounts-api, which posts to ledger-api; the statements namespace runs in ambient mode (no
sidecars, a waypoint for L7), where a statement Job reads the ledger through statement-api.

Two healthy twins: by day the ingress carries the customers' requests; at night (the window is
02:00-02:05) nobody comes through the ingress, the statement run is the only traffic, and the
waypoint carries its calls. A gateway with no traffic is no healthy gateway: nothing judges its
requests (its one check of requests finds none, so it is "unknown"), and the waypoint's requests
are judged as those of the services it serves (it is "clean": nothing found in what was checked).
Neither is a fault."""

from __future__ import annotations

from datetime import UTC, datetime

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..state import PodState

HOST = "online.sparkasse-nord.example"
NIGHT = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)  # the statement run, nobody at the ingress
HEALTHY = Expectation("healthy", healthy=True)


def _ledger(m: Mesh, night: bool) -> None:
    m.namespace("banking")
    m.namespace("statements", ambient=True, labels={"istio.io/use-waypoint": "waypoint"})
    # The gateway in its own namespace, as Istio's docs advise.
    gw = m.ingress_gateway(namespace="istio-ingress", replicas=2)
    accounts = m.workload("banking", "accounts-api", "v31", replicas=3)
    ledger = m.workload("banking", "ledger-api", "v12", replicas=3)
    rates = m.workload("banking", "fx-rates", "v4")
    statements = m.workload("statements", "statement-api", "v7", replicas=2)
    run = m.workload("statements", "statement-run", "v7", kind="Job", name="statement-run")

    if not night:
        # Customers: the apps' and branches' requests, their own 401s (sessions expired) and 404s.
        m.call(gw, accounts, 140.0, 18.0, 95.0, ("401", "-", 0.012), ("404", "-", 0.004))
        m.call(accounts, ledger, 210.0, 6.0, 40.0, ("503", "-", 0.0004))
        m.call(accounts, rates, 35.0, 2.0, 9.0)
    else:
        # Night: a trickle of standing orders only; the ingress is silent.
        m.call(accounts, ledger, 3.0, 5.0, 30.0)
    # The statement run, every night and (month-end catch-up) by day too, through the waypoint.
    m.call(run, statements, 45.0, 22.0, 140.0, reporters=("source", "waypoint"))
    m.call(statements, ledger, 90.0, 7.0, 48.0, reporters=("waypoint", "destination"))
    m.pods(run, PodState(started_s_ago=1500.0))

    m.objects.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                      "metadata": {"name": "waypoint", "namespace": "statements",
                                   "labels": {"istio.io/waypoint-for": "service"}},
                      "spec": {"gatewayClassName": "istio-waypoint",
                               "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})
    m.apply(resource("Gateway", "banking", "online-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}]}))
    m.apply(resource("VirtualService", "banking", "accounts-api", {
        "hosts": [HOST], "gateways": ["online-gateway"],
        "http": [{"route": [{"destination": {"host": "accounts-api", "port": {"number": 8080}}}],
                  "timeout": "8s"}]}))


def ledger_day() -> Scenario:
    m = Mesh("ledger-day",
             "Healthy: a bank's ledger by day, customers through the ingress, a statement run through a waypoint",
             "no fault: the ingress carries the customers' requests (their own 401s and 404s), accounts-api "
             "posts to ledger-api (0.04 % 503), the statements namespace runs in ambient mode and its waypoint "
             "carries the statement run's calls", ingress_host=f"{HOST}:8080")
    _ledger(m, night=False)
    return m.build(HEALTHY)


def ledger_night() -> Scenario:
    m = Mesh("ledger-night",
             "Healthy: the same ledger at night: nobody at the ingress, the statement run through the waypoint",
             "no fault: between 02:00 and 02:05 nobody comes through the ingress gateway (it is idle, not "
             "failing: nothing can say whether its requests succeed), standing orders trickle into ledger-api, "
             "and the statement run reads the ledger through the ambient namespace's waypoint",
             time=NIGHT, ingress_host=f"{HOST}:8080")
    _ledger(m, night=True)
    return m.build(HEALTHY)
