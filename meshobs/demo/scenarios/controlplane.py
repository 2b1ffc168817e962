"""The control plane: istiod not ready with push errors, a proxy that never acknowledged a push,
and (healthy) several istiod replicas with scoped pushes."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..state import IstiodSpec, PodState
from ..traffic import Reported


def istiod_not_ready() -> Scenario:
    """Food delivery: istiod lost its API-server watch 14 min ago and is not ready; pushes fail,
    so when courier-tracker rolled out 9 min ago, orders-api kept the old pods' endpoints."""
    m = Mesh("istiod-not-ready",
             "Food delivery: istiod not ready and failing pushes; orders-api keeps dead endpoints (503 UF)",
             "istiod (one replica) is not ready since 14 min ago (/ready 503) and every push since "
             "fails (pilot_xds_pushes{type=~\".*_senderr\"}, push context errors); no proxy got config "
             "since. courier-tracker rolled out 9 min ago: its new pods' sidecars never got their first "
             "config (not ready), and orders-api's proxies still send to the old pods' addresses: 44% "
             "503 UF on orders-api -> courier-tracker",
             ingress_host="orders.munchmile.example:8080")
    m.namespace("orders")
    m.namespace("fleet")
    gw = m.ingress_gateway()
    orders = m.workload("orders", "orders-api", "v5", replicas=2)
    tracker = m.workload("fleet", "courier-tracker", "v9", replicas=2)
    menu = m.workload("orders", "menu-service", "v2")
    m.call(gw, orders, 40.0, 55.0, 240.0, ("503", "-", 0.44), onset_s_ago=540.0)
    m.call(orders, menu, 40.0, 8.0, 30.0)
    m.call(orders, tracker, 40.0 * 0.56, 14.0, 60.0, onset_s_ago=540.0)
    m.unreached(orders, tracker, 40.0 * 0.44, ("503", "UF", 1.0), onset_s_ago=540.0)
    m.control_plane(IstiodSpec(replicas=1, not_ready=(0,), push_errors_per_s=0.35, push_errors_since_s_ago=840.0,
                               push_context_errors_per_s=0.1))
    for w in (orders, menu, gw):
        m.proxy(w, pushed_s_ago={x: 860.0 for x in ("cds", "eds", "lds", "rds")})
    # orders-api's last endpoints push predates the rollout: it still targets the old pods.
    m.proxy(orders, stale_endpoints=("courier-tracker",))
    m.proxy(tracker, ready=False, connected=False, initialized=False)
    m.pods(tracker, PodState(started_s_ago=530.0, ready=False))
    m.apply(resource("DestinationRule", "fleet", "courier-tracker", {
        "host": "courier-tracker.fleet.svc.cluster.local",
        "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 7, "interval": "15s",
                                               "baseEjectionTime": "30s"}}}))
    return m.build(Expectation("control-plane", target="orders/orders-api",
                               subjects=("Deployment istio-system/istiod", "Pod istio-system/istiod",
                                         "Service istio-system/istiod", "Workload istio-system/istiod",
                                         "ControlPlane istio-system/istiod")))


def proxy_unacked() -> Scenario:
    """Warehouse inventory: one proxy has not acknowledged the cluster push that added stock-service
    v5 (its cluster is still warming), while its routes already send 10% there: 503 NC."""
    onset = 1200.0
    m = Mesh("proxy-unacked",
             "Warehouse: inventory-api's proxies never acked the CDS push adding stock-service v5 (503 NC)",
             "istiod pushed the clusters for stock-service's new v5 subset 20 min ago; inventory-api's "
             "proxies accepted the routes but their CDS push is sent and not acknowledged (syncz "
             "cluster_sent != cluster_acked; the v5 cluster still warming: "
             "cluster_manager.warming_clusters 1): their share to v5 fails with 503 NC (no cluster), "
             "while pick-planner's calls to v5 work",
             ingress_host="stock.palletpro.example:8080")
    m.namespace("warehouse")
    api = m.workload("warehouse", "inventory-api", "v2", replicas=2)
    v4 = m.workload("warehouse", "stock-service", "v4", replicas=2)
    v5 = m.workload("warehouse", "stock-service", "v5")
    picker = m.workload("warehouse", "pick-planner", "v1")
    m.call(picker, api, 36.0, 20.0, 85.0, ("503", "-", 0.1), onset_s_ago=onset)
    m.call(api, v4, 36.0 * 0.9, 9.0, 38.0)
    m.unreached(api, v5, 36.0 * 0.1, ("503", "NC", 1.0), onset_s_ago=onset)
    m.call(picker, v5, 1.5, 9.5, 40.0, onset_s_ago=onset, before=Reported(0.0))
    m.control_plane(IstiodSpec(replicas=2, unacked={api.name: ("cds",)}))
    m.proxy(api, warming_clusters=("outbound|8080|v5|stock-service.warehouse.svc.cluster.local",))
    m.apply(resource("VirtualService", "warehouse", "stock-service", {
        "hosts": ["stock-service"],
        "http": [{"route": [{"destination": {"host": "stock-service", "subset": "v4"}, "weight": 90},
                            {"destination": {"host": "stock-service", "subset": "v5"}, "weight": 10}]}]}),
        changed_s_ago=onset, changed_fields=("http",))
    m.apply(resource("DestinationRule", "warehouse", "stock-service", {
        "host": "stock-service", "subsets": [{"name": "v4", "labels": {"version": "v4"}},
                                             {"name": "v5", "labels": {"version": "v5"}}]}),
        changed_s_ago=onset + 5, changed_fields=("subsets",))
    return m.build(Expectation("control-plane", target="warehouse/inventory-api",
                               subjects=("Proxy inventory-api-v2", "Workload warehouse/inventory-api-v2")))


def scoped_push_replicas() -> Scenario:
    """Healthy: three istiod replicas (each numbering its own pushes) and a scoped push that
    reached only the proxies a Sidecar selects. Nothing is stale: each proxy acked what its
    istiod sent."""
    m = Mesh("scoped-push-replicas",
             "Healthy: three istiod replicas, a scoped push to one namespace; no proxy is stale",
             "no fault: versions differ between proxies only because each istiod replica counts its own "
             "pushes and the last push (a Sidecar change in namespace reporting) went only to the "
             "proxies it selects; every proxy acked what its istiod sent")
    m.namespace("sales")
    m.namespace("reporting")
    crm = m.workload("sales", "crm-api", "v3", replicas=3)
    leads = m.workload("sales", "lead-scorer", "v2", replicas=2)
    rep = m.workload("reporting", "report-builder", "v1", replicas=2)
    export = m.workload("reporting", "export-worker", "v1")
    m.call(crm, leads, 25.0, 11.0, 45.0)
    m.call(rep, crm, 6.0, 30.0, 120.0)
    m.call(rep, export, 2.0, 140.0, 600.0)
    m.apply(resource("Sidecar", "reporting", "default", {
        "egress": [{"hosts": ["./*", "sales/*", "istio-system/*"]}]}), created_s_ago=100.0)
    m.control_plane(IstiodSpec(replicas=3, scoped_push_to=(rep.name, export.name), scoped_push_s_ago=95.0))
    return m.build(Expectation("healthy", healthy=True))
