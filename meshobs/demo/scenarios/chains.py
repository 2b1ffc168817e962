"""Faults deep in a call chain, and two faults at once."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario, SlowSpan
from ..traffic import LatencyProfile, Reported


def deep_chain_timeout() -> Scenario:
    """A freight-pricing chain five hops deep: the tariff database at the bottom got slow; the
    rate engine above it times out (504 UT), the database's proxy sees the callers hang up (0 DC),
    and every hop above fails in turn. The root cause started first."""
    m = Mesh("deep-chain-timeout",
             "Freight: tariff-db (5th hop) slow; rate-engine times out (504 UT, upstream 0 DC)",
             "tariff-db (namespace freight) answers in 2.6 s median since 18 min ago (its SELECT on "
             "tariffs); rate-engine's VirtualService gives it 2 s, so 61% of rate-engine -> tariff-db "
             "calls end in 504 UT and tariff-db's proxy reports them as 0 DC; rate-engine answers 504, "
             "carrier-gateway 502, route-optimizer 503, shipment-api 500 — each starting a little later "
             "than the hop below",
             ingress_host="ship.cargoline.example:8080")
    for ns in ("logistics", "carriers", "pricing", "freight"):
        m.namespace(ns)
    gw = m.ingress_gateway()
    shipment = m.workload("logistics", "shipment-api", "v6", replicas=2)
    optimizer = m.workload("logistics", "route-optimizer", "v3", replicas=2)
    carrier = m.workload("carriers", "carrier-gateway", "v2", replicas=2)
    rates = m.workload("pricing", "rate-engine", "v8", replicas=2)
    tariff = m.workload("freight", "tariff-db", "v2", replicas=2)
    audit = m.workload("logistics", "shipment-audit", "v1")
    f = 0.61

    def ok(rps: float, p50: float, p99: float) -> Reported:
        return Reported(rps, (("200", "-", 1.0),), LatencyProfile(p50, p99))

    m.call(gw, shipment, 30.0, 2300.0, 4200.0, ("500", "-", f * 0.97), onset_s_ago=1050.0,
           before=ok(30.0, 95.0, 380.0))
    m.call(shipment, audit, 30.0, 4.0, 15.0)
    m.call(shipment, optimizer, 30.0, 2250.0, 4100.0, ("503", "-", f * 0.98), onset_s_ago=1060.0,
           before=ok(30.0, 80.0, 330.0))
    m.call(optimizer, carrier, 30.0, 2180.0, 4000.0, ("502", "-", f), onset_s_ago=1065.0,
           before=ok(30.0, 62.0, 280.0))
    m.call(carrier, rates, 30.0, 2100.0, 2300.0, ("504", "-", f), onset_s_ago=1070.0,
           before=ok(30.0, 45.0, 210.0))
    m.call(rates, tariff, 30.0, 1950.0, 2010.0, ("504", "UT", f), onset_s_ago=1080.0,
           before=ok(30.0, 30.0, 160.0),
           dest=Reported(30.0, (("200", "-", 1 - f), ("0", "DC", f)), LatencyProfile(2600.0, 6200.0)),
           before_dest=ok(30.0, 29.0, 158.0))
    m.app_spans["tariff-db"] = SlowSpan("SELECT tariffs", LatencyProfile(2550.0, 6100.0),
                                        (("db.system", "postgresql"),
                                         ("db.statement", "SELECT * FROM tariffs WHERE lane = $1")))
    m.apply(resource("VirtualService", "freight", "tariff-db", {
        "hosts": ["tariff-db.freight.svc.cluster.local"],
        "http": [{"route": [{"destination": {"host": "tariff-db.freight.svc.cluster.local"}}], "timeout": "2s"}]}))
    for svc, ns in (("rate-engine", "pricing"), ("carrier-gateway", "carriers"), ("route-optimizer", "logistics")):
        m.apply(resource("VirtualService", ns, svc, {
            "hosts": [f"{svc}.{ns}.svc.cluster.local"],
            "http": [{"route": [{"destination": {"host": f"{svc}.{ns}.svc.cluster.local"}}], "timeout": "10s"}]}))
    return m.build(Expectation("slow-hop", target="logistics/shipment-api",
                               subjects=("Service freight/tariff-db", "Workload freight/tariff-db-v2",
                                         "Hop tariff-db.freight"),
                               symptom_ok=True))


def loud_fault_and_cert() -> Scenario:
    """Streaming playback: a loud traffic fault (manifest-builder answers 500) and, quietly, the
    DRM licence service's workload certificate expires in under three hours."""
    m = Mesh("loud-fault-and-cert",
             "Streaming: manifest-builder fails 24% (loud); drm-license-v1's certificate expires in 2h40m",
             "two independent faults: manifest-builder answers 500 to 24% of requests since 9 min ago "
             "(its own errors); and drm-license-v1's workload certificate, issued 21h20m ago with a 24 h "
             "lifetime, was not rotated (istio-agent cannot reach the CA) and expires 2h40m after the "
             "scenario time: every playback call goes through drm-license, so it must be in the top "
             "findings even though traffic is fine today",
             ingress_host="play.streamhaven.example:8080")
    m.namespace("playback")
    m.namespace("drm")
    gw = m.ingress_gateway()
    api = m.workload("playback", "playback-api", "v12", replicas=3)
    manifest = m.workload("playback", "manifest-builder", "v7", replicas=2)
    drm = m.workload("drm", "drm-license", "v1", replicas=2)
    cdn = m.workload("playback", "cdn-selector", "v2")
    m.call(gw, api, 120.0, 60.0, 260.0, ("500", "-", 0.24), onset_s_ago=540.0)
    m.call(api, manifest, 120.0, 22.0, 110.0, ("500", "-", 0.24), onset_s_ago=540.0)
    m.call(api, drm, 120.0, 12.0, 48.0)
    m.call(api, cdn, 120.0, 3.0, 11.0)
    m.cert(drm, issued_h_ago=21.0 + 20 / 60)
    m.apply(resource("PeerAuthentication", "drm", "default", {"mtls": {"mode": "STRICT"}}))
    return m.build(Expectation("callee-failing", target="playback/playback-api",
                               subjects=("Service playback/manifest-builder", "Workload playback/manifest-builder-v7"),
                               also_top=(("Workload drm/drm-license-v1", 3),), symptom_ok=True))
