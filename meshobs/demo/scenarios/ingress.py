"""Ingress: a VirtualService bound to a Gateway that does not exist any more (404 NR)."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..traffic import LatencyProfile, Reported

MOVE_S = 1800.0  # the Gateway was renamed 30 minutes ago


def gateway_binding_404() -> Scenario:
    """Ticketing: the team moved its Gateway to istio-system as ticketing-gateway; VirtualService
    tickets/checkout still binds tickets/tickets-gw, so the ingress has no route for its host."""
    m = Mesh("gateway-binding-404",
             "Ticketing: VirtualService checkout binds a Gateway that no longer exists; ingress answers 404 NR",
             "Gateway tickets/tickets-gw was replaced 30 min ago by istio-system/ticketing-gateway "
             "(hosts checkout.tixwave.example and www.tixwave.example); VirtualService tickets/storefront "
             "was rebound, VirtualService tickets/checkout still says gateways: [tickets-gw], so the "
             "ingress gateway has no virtual host for checkout.tixwave.example and answers 404 NR "
             "(reported by the gateway only); checkout-api gets no traffic since",
             ingress_host="checkout.tixwave.example:8080")
    m.namespace("tickets")
    gw = m.ingress_gateway()
    store = m.workload("tickets", "storefront", "v14", replicas=2)
    checkout = m.workload("tickets", "checkout-api", "v6", replicas=2)
    seats = m.workload("tickets", "seat-map", "v3")
    m.call(gw, store, 64.0, 38.0, 160.0)
    m.call(gw, checkout, 0.0, 70.0, 300.0, onset_s_ago=MOVE_S,
           before=Reported(17.0, (("200", "-", 1.0),), LatencyProfile(70.0, 300.0)))
    m.external(gw, "checkout.tixwave.example", 17.0, 0.3, 1.1, ("404", "NR", 1.0), onset_s_ago=MOVE_S)
    m.call(store, seats, 30.0, 12.0, 55.0)
    m.call(checkout, seats, 0.0, 12.0, 55.0, onset_s_ago=MOVE_S,
           before=Reported(17.0, (("200", "-", 1.0),), LatencyProfile(12.0, 55.0)))
    m.apply(resource("Gateway", "istio-system", "ticketing-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"},
                     "hosts": ["tickets/checkout.tixwave.example", "tickets/www.tixwave.example"]}]}),
        created_s_ago=MOVE_S + 20)
    m.apply(resource("VirtualService", "tickets", "storefront", {
        "hosts": ["www.tixwave.example"], "gateways": ["istio-system/ticketing-gateway"],
        "http": [{"route": [{"destination": {"host": "storefront", "port": {"number": 8080}}}]}]}),
        changed_s_ago=MOVE_S, changed_fields=("gateways",))
    m.apply(resource("VirtualService", "tickets", "checkout", {
        "hosts": ["checkout.tixwave.example"], "gateways": ["tickets-gw"],
        "http": [{"route": [{"destination": {"host": "checkout-api", "port": {"number": 8080}}}],
                  "timeout": "12s"}]}))
    # Noise: the ingress also validates JWTs for checkout (unrelated to the 404s).
    m.apply(resource("RequestAuthentication", "istio-system", "checkout-jwt", {
        "selector": {"matchLabels": {"istio": "ingressgateway"}},
        "jwtRules": [{"issuer": "https://auth.tixwave.example", "jwksUri": "https://auth.tixwave.example/.well-known/jwks.json",
                      "forwardOriginalToken": True}]}))
    return m.build(Expectation("gateway-binding", target="istio-system/istio-ingressgateway",
                               subjects=("VirtualService tickets/checkout",),
                               mentions=("tickets-gw",)))
