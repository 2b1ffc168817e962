"""A proxy that rejects (NACKs) route updates because of an EnvoyFilter."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..state import Rejection

FILTER_AGE_S = 1560.0  # the EnvoyFilter was applied 26 minutes ago
SPLIT_AGE_S = 1500.0  # the 80/20 split came a minute later, and never reached dispatch-api


def envoyfilter_nack() -> Scenario:
    """Ride-hailing dispatch: an EnvoyFilter patches dispatch-api's routes with a filter Envoy
    cannot load; every RDS push since is NACKed, so the new 80/20 split never takes effect."""
    m = Mesh("envoyfilter-nack",
             "Ride-hailing: dispatch-api's proxies NACK RDS since EnvoyFilter lua-header-rewrite; routes stuck",
             "EnvoyFilter dispatch/lua-header-rewrite (applied 26 min ago) patches HTTP_ROUTE for "
             "dispatch-api with a per-route config Envoy rejects; since then dispatch-api's three proxies "
             "NACK every RDS push (http.outbound_0.0.0.0_8080.rds.8080.update_rejected, istiod's "
             "pilot_xds_rds_reject / pilot_total_xds_rejects{type=rds}, syncz route_acked != route_sent): "
             "their routes stay at the version before (driver-locator 100% v1) while clusters and "
             "listeners are current, so VirtualService driver-locator's 80/20 canary split (changed 25 "
             "min ago) never reaches them",
             ingress_host="dispatch.swiftride.example:8080")
    m.namespace("dispatch")
    m.namespace("drivers")
    gw = m.ingress_gateway()
    api = m.workload("dispatch", "dispatch-api", "v4", replicas=3)
    v1 = m.workload("drivers", "driver-locator", "v1", replicas=3)
    v2 = m.workload("drivers", "driver-locator", "v2")
    surge = m.workload("drivers", "eta-estimator", "v3", replicas=2)
    m.call(gw, api, 75.0, 48.0, 210.0)
    m.call(api, v1, 75.0, 16.0, 70.0)  # stale routes: everything still goes to v1
    m.call(api, surge, 75.0, 9.0, 40.0, protocol="grpc")
    m.call(surge, v2, 6.0, 15.0, 62.0)  # the canary gets traffic from the proxies that took the update
    m.call(surge, v1, 24.0, 16.0, 70.0)
    m.apply(resource("VirtualService", "drivers", "driver-locator", {
        "hosts": ["driver-locator.drivers.svc.cluster.local"],
        "http": [{"name": "canary", "route": [
            {"destination": {"host": "driver-locator.drivers.svc.cluster.local", "subset": "v1"}, "weight": 80},
            {"destination": {"host": "driver-locator.drivers.svc.cluster.local", "subset": "v2"}, "weight": 20}],
            "timeout": "3s"}]}), changed_s_ago=SPLIT_AGE_S, changed_fields=("http",))
    m.apply(resource("DestinationRule", "drivers", "driver-locator", {
        "host": "driver-locator.drivers.svc.cluster.local",
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}))
    m.apply(resource("EnvoyFilter", "dispatch", "lua-header-rewrite", {
        "workloadSelector": {"labels": {"app": "dispatch-api"}},
        "configPatches": [{
            "applyTo": "HTTP_ROUTE",
            "match": {"context": "SIDECAR_OUTBOUND", "routeConfiguration": {"vhost": {
                "name": "driver-locator.drivers.svc.cluster.local:8080"}}},
            "patch": {"operation": "MERGE", "value": {"typed_per_filter_config": {"envoy.filters.http.lua": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                "source_code": {"inline_string": "function envoy_on_request(h) h:headers():add('x-zone' end"}}}}}}]}),
        created_s_ago=FILTER_AGE_S)
    # The route update after the filter carries the split; dispatch-api never accepted it.
    m.route_overrides[api.name] = {"driver-locator": [("v1", 100)]}
    m.proxy(api, rejections=(Rejection("rds", FILTER_AGE_S, attempts=7, route_config="8080",
                                       detail="Lua code compilation failure: [string \"function envoy_on_"
                                              "request(h) h:headers():add('x-zone' end\"]:1: ')' expected"),))
    return m.build(Expectation("config-rejected", target="dispatch/dispatch-api",
                               subjects=("EnvoyFilter dispatch/lua-header-rewrite", "Proxy dispatch-api-v4",
                                         "Workload dispatch/dispatch-api-v4"),
                               mentions=("lua-header-rewrite",)))
