"""What changed: a fault that starts 40 seconds after a DestinationRule edit."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..traffic import LatencyProfile, Reported

ONSET_S = 1200.0  # 503 UO since 20 minutes
CHANGE_S = ONSET_S + 40.0  # the DestinationRule edit, 40 s before


def dr_change_onset() -> Scenario:
    """Ride pricing: someone tightened surge-calculator's connection pool; 40 s later the circuit
    breaker started shedding a fifth of booking-api's calls (503 UO)."""
    m = Mesh("dr-change-onset",
             "Ride pricing: DestinationRule surge-calculator edited; 40 s later 18% 503 UO (circuit breaker)",
             "DestinationRule fares/surge-calculator was edited 20 min 40 s ago (generation 2, "
             "managedFields kubectl-edit): connectionPool.http.http2MaxRequests 1000 -> 40 and "
             "http1MaxPendingRequests 1024 -> 8; 40 s later booking-api's calls started overflowing the "
             "circuit breaker: 18% 503 UO (upstream_rq_pending_overflow on booking-api's cluster). "
             "Nothing else changed in the hour",
             ingress_host="book.zipride.example:8080")
    m.namespace("rides")
    m.namespace("fares")
    gw = m.ingress_gateway()
    booking = m.workload("rides", "booking-api", "v15", replicas=3)
    surge = m.workload("fares", "surge-calculator", "v4", replicas=3)
    geo = m.workload("rides", "geo-index", "v2", replicas=2)
    m.call(gw, booking, 90.0, 70.0, 300.0, ("503", "-", 0.18), onset_s_ago=ONSET_S)
    m.call(booking, surge, 90.0, 25.0, 120.0, ("503", "UO", 0.18), onset_s_ago=ONSET_S,
           before=Reported(90.0, (("200", "-", 1.0),), LatencyProfile(24.0, 115.0)),
           dest=Reported(90.0 * 0.82, (("200", "-", 1.0),), LatencyProfile(23.0, 110.0)),
           before_dest=Reported(90.0, (("200", "-", 1.0),), LatencyProfile(23.0, 110.0)))
    m.call(booking, geo, 90.0, 6.0, 24.0)
    m.apply(resource("DestinationRule", "fares", "surge-calculator", {
        "host": "surge-calculator.fares.svc.cluster.local",
        "trafficPolicy": {"connectionPool": {"http": {"http2MaxRequests": 40, "http1MaxPendingRequests": 8},
                                             "tcp": {"maxConnections": 200}},
                          "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s",
                                               "baseEjectionTime": "30s"}}}),
        created_s_ago=40 * 86400, changed_s_ago=CHANGE_S, changed_fields=("trafficPolicy",))
    m.apply(resource("VirtualService", "fares", "surge-calculator", {
        "hosts": ["surge-calculator.fares.svc.cluster.local"],
        "http": [{"route": [{"destination": {"host": "surge-calculator.fares.svc.cluster.local"}}],
                  "timeout": "2s"}]}), created_s_ago=40 * 86400)
    return m.build(Expectation("config-change", target="rides/booking-api",
                               subjects=("DestinationRule fares/surge-calculator",)))
