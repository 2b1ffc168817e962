"""Failure classes where the cause is a policy or a resource, not a service: authorization,
egress scoping, REGISTRY_ONLY, and fault injection that must not be blamed."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario
from ..state import IstiodSpec, PodState
from ..traffic import LatencyProfile, Reported


def fault_injection_elsewhere() -> Scenario:
    """A media pipeline: a VirtualService injects 503s on purpose (a resilience test) while the
    object store really fails connections; only the latter is a cause."""
    m = Mesh("fault-injection-elsewhere",
             "Media pipeline: intended fault injection on thumbnailer, real 503 UF from object-store",
             "object-store (namespace storage) refuses 21% of transcoder's connections since 15 min "
             "ago (503 UF on transcoder's side, upstream_cx_connect_fail on its cluster); the 503 FI "
             "on upload-api -> thumbnailer are injected on purpose by VirtualService "
             "media/thumbnailer (fault.abort 8%) and must not be ranked as a cause",
             ingress_host="upload.lumenreel.example:8080")
    m.namespace("media")
    m.namespace("storage")
    gw = m.ingress_gateway()
    upload = m.workload("media", "upload-api", "v5", replicas=2)
    thumbs = m.workload("media", "thumbnailer", "v2", replicas=2)
    transcoder = m.workload("media", "transcoder", "v11", replicas=3)
    store = m.workload("storage", "object-store", "v1", replicas=3)
    m.call(gw, upload, 22.0, 180.0, 900.0, ("503", "-", 0.09), onset_s_ago=900.0)
    m.call(upload, thumbs, 22.0 * 0.92, 35.0, 160.0)
    m.unreached(upload, thumbs, 22.0 * 0.08, ("503", "FI", 1.0))  # aborted by the caller's fault filter
    m.call(upload, transcoder, 22.0, 140.0, 700.0, ("503", "-", 0.21), onset_s_ago=900.0)
    m.call(transcoder, store, 66.0 * 0.79, 18.0, 90.0)
    m.unreached(transcoder, store, 66.0 * 0.21, ("503", "UF", 1.0), onset_s_ago=900.0)
    m.apply(resource("VirtualService", "media", "thumbnailer", {
        "hosts": ["thumbnailer"],
        "http": [{"name": "resilience-test",
                  "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 8.0}}},
                  "route": [{"destination": {"host": "thumbnailer"}}]}]}), created_s_ago=5 * 86400)
    m.apply(resource("DestinationRule", "storage", "object-store", {
        "host": "object-store.storage.svc.cluster.local",
        "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 512, "connectTimeout": "250ms"}}}}))
    return m.build(Expectation("callee-failing", target="media/upload-api",
                               subjects=("Service storage/object-store", "Workload storage/object-store-v1",
                                         "Edge media/transcoder -> storage/object-store"),
                               quiet=("Service media/thumbnailer", "VirtualService media/thumbnailer",
                                      "Edge media/upload-api -> media/thumbnailer"),
                               symptom_ok=True))


def authz_deny_legacy() -> Scenario:
    """A payments platform denies the legacy settlement job by policy (403 on both sides)."""
    onset = 2100.0
    m = Mesh("authz-deny-legacy",
             "Payments: AuthorizationPolicy payments/deny-legacy denies batch-settlement (403, rbac denied)",
             "AuthorizationPolicy payments/deny-legacy (DENY, applied 35 min ago) matches the principal "
             "cluster.local/ns/legacy/sa/batch-settlement: every call from legacy/batch-settlement to "
             "card-vault answers 403 (rbac_access_denied_matched_policy), counted as "
             "http.inbound_0.0.0.0_8080.rbac.denied on card-vault's sidecars; other callers are allowed")
    m.namespace("payments")
    m.namespace("legacy")
    checkout = m.workload("payments", "checkout", "v9", replicas=2)
    vault = m.workload("payments", "card-vault", "v3", replicas=2)
    settle = m.workload("legacy", "batch-settlement", "v1", service_account="batch-settlement")
    reports = m.workload("legacy", "settlement-reports", "v1")
    m.call(checkout, vault, 31.0, 7.0, 28.0)
    m.denied_call(settle, vault, 4.5, onset_s_ago=onset)
    m.call(reports, settle, 1.2, 300.0, 950.0, ("500", "-", 0.8), onset_s_ago=onset)
    m.apply(resource("AuthorizationPolicy", "payments", "deny-legacy", {
        "selector": {"matchLabels": {"app": "card-vault"}}, "action": "DENY",
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/legacy/*"]}}],
                   "to": [{"operation": {"methods": ["POST"], "paths": ["/v1/tokens*"]}}]}]}),
        created_s_ago=onset + 12)
    m.apply(resource("AuthorizationPolicy", "payments", "card-vault-allow", {
        "selector": {"matchLabels": {"app": "card-vault"}}, "action": "ALLOW",
        "rules": [{"from": [{"source": {"namespaces": ["payments", "legacy"]}}]}]}))
    m.apply(resource("PeerAuthentication", "payments", "default", {"mtls": {"mode": "STRICT"}}))
    return m.build(Expectation("authorization-deny", target="legacy/batch-settlement",
                               subjects=("AuthorizationPolicy payments/deny-legacy",)))


def sidecar_egress_blackhole() -> Scenario:
    """Billing narrows its egress with a Sidecar; the tax engine in another namespace falls out
    of scope and calls land in BlackHoleCluster (REGISTRY_ONLY on that Sidecar)."""
    onset = 360.0
    m = Mesh("sidecar-egress-blackhole",
             "Billing: Sidecar billing/default narrows egress; calls to tax-engine hit BlackHoleCluster (502)",
             "Sidecar billing/default (applied 6 min ago) limits billing's egress to ./* and "
             "istio-system/* with outboundTrafficPolicy REGISTRY_ONLY: tax-engine.tax is no longer in "
             "invoice-api's registry, its calls hit the block_all route (502, destination "
             "BlackHoleCluster). istiod pushed the change only to billing's proxies (a scoped push), "
             "so their config is newer than the rest of the mesh, which is not stale")
    m.namespace("billing")
    m.namespace("tax")
    invoice = m.workload("billing", "invoice-api", "v2", replicas=2)
    ledger = m.workload("billing", "billing-ledger", "v1")
    tax = m.workload("tax", "tax-engine", "v4", replicas=2)
    portal = m.workload("tax", "tax-portal", "v1")
    m.call(invoice, ledger, 14.0, 5.0, 22.0)
    # Until the Sidecar, invoice-api reached tax-engine; since, nothing does.
    m.call(invoice, tax, 0.0, 24.0, 95.0, onset_s_ago=onset,
           before=Reported(13.0, (("200", "-", 1.0),), LatencyProfile(24.0, 95.0)))
    m.external(invoice, "BlackHoleCluster", 13.0, 0.4, 1.5, ("502", "-", 1.0), onset_s_ago=onset)
    m.call(portal, tax, 3.0, 22.0, 90.0)
    m.apply(resource("Sidecar", "billing", "default", {
        "egress": [{"hosts": ["./*", "istio-system/*"]}],
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}), created_s_ago=onset + 9)
    m.control_plane(IstiodSpec(scoped_push_to=(invoice.name, ledger.name), scoped_push_s_ago=onset + 4))
    return m.build(Expectation("egress-scoping", target="billing/invoice-api",
                               subjects=("Sidecar billing/default",)))


def registry_only_egress() -> Scenario:
    """Logistics runs REGISTRY_ONLY mesh-wide; a new partner API has no ServiceEntry."""
    onset = 1500.0
    m = Mesh("registry-only-egress",
             "Logistics: REGISTRY_ONLY and no ServiceEntry for maps.geoinfo-partner.example (502 BlackHole)",
             "the mesh config sets outboundTrafficPolicy REGISTRY_ONLY; route-planner v2 (rolled out "
             "25 min ago) calls maps.geoinfo-partner.example over HTTP and its TLS twin over 443, neither "
             "covered by a ServiceEntry: HTTP calls get 502 from the block_all route (destination "
             "BlackHoleCluster), TLS connections are reset by BlackHoleCluster. The weather feed, which "
             "has a ServiceEntry, works")
    m.namespace("logistics")
    planner = m.workload("logistics", "route-planner", "v2", replicas=2, port=80)
    depot = m.workload("logistics", "depot-api", "v3", replicas=2)
    m.call(depot, planner, 18.0, 60.0, 240.0, ("500", "-", 0.62), onset_s_ago=onset)
    m.external(planner, "BlackHoleCluster", 11.0, 0.3, 1.2, ("502", "-", 1.0), onset_s_ago=onset)
    m.external(planner, "BlackHoleCluster", 2.0, 0.2, 0.9, protocol="tcp", tcp_bps=(0.0, 0.0),
               onset_s_ago=onset)
    m.external(planner, "api.weather-feed.example", 4.0, 85.0, 310.0, namespace="logistics")
    m.count(planner, "cluster.BlackHoleCluster.upstream_cx_total", 1.0, onset)
    m.count(planner, "cluster.BlackHoleCluster.upstream_cx_none_healthy", 1.0, onset)
    m.mesh_config(outboundTrafficPolicy={"mode": "REGISTRY_ONLY"})
    m.apply(resource("ServiceEntry", "logistics", "weather-feed", {
        "hosts": ["api.weather-feed.example"], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}))
    m.pods(planner, PodState(started_s_ago=onset + 30))
    # The blocked host's name is in no signal (BlackHoleCluster replaces it in the metrics), so
    # the finding names the workload whose egress is blocked, or the mesh config that blocks it.
    return m.build(Expectation("registry-only", target="logistics/depot-api",
                               subjects=("Service logistics/route-planner", "Workload logistics/route-planner-v2",
                                         "Edge logistics/route-planner -> unknown/BlackHoleCluster",
                                         "ConfigMap istio-system/istio", "MeshConfig istio-system/istio")))
