"""Misconfigurations an analyzer would find (issue 11) that are the root cause of a live
traffic symptom."""

from __future__ import annotations

from ..author import Mesh, resource
from ..expect import Expectation
from ..scenario import Scenario

CANARY_S = 900.0


def subset_without_pods() -> Scenario:
    """Music catalogue: the canary subset selects version v5 but the canary pods are labelled
    v5-rc1; the 10% the VirtualService sends there fail with 503 UH."""
    m = Mesh("subset-without-pods",
             "Music catalogue: DestinationRule subset canary selects no pods behind a 90/10 route (503 UH)",
             "DestinationRule catalog/track-metadata's subset canary selects version=v5, but the canary "
             "Deployment's pods are labelled version=v5-rc1, so the subset has no endpoints; since "
             "VirtualService track-metadata moved 10% to canary 15 min ago, search-api's share to it "
             "fails with 503 UH (upstream_cx_none_healthy on outbound|8080|canary|...)",
             ingress_host="search.tunevault.example:8080")
    m.namespace("catalog")
    gw = m.ingress_gateway()
    search = m.workload("catalog", "search-api", "v8", replicas=2)
    stable = m.workload("catalog", "track-metadata", "v4", replicas=3)
    canary = m.workload("catalog", "track-metadata", "v5-rc1", name="track-metadata-canary")
    art = m.workload("catalog", "artwork", "v2")
    m.call(gw, search, 50.0, 45.0, 190.0, ("503", "-", 0.1), onset_s_ago=CANARY_S)
    m.call(search, stable, 45.0, 11.0, 46.0)
    m.unreached(search, canary, 5.0, ("503", "UH", 1.0), onset_s_ago=CANARY_S, version="v5")
    m.call(search, art, 50.0, 4.0, 16.0)
    m.apply(resource("VirtualService", "catalog", "track-metadata", {
        "hosts": ["track-metadata"],
        "http": [{"route": [{"destination": {"host": "track-metadata", "subset": "stable"}, "weight": 90},
                            {"destination": {"host": "track-metadata", "subset": "canary"}, "weight": 10}]}]}),
        changed_s_ago=CANARY_S, changed_fields=("http",))
    m.apply(resource("DestinationRule", "catalog", "track-metadata", {
        "host": "track-metadata",
        "subsets": [{"name": "stable", "labels": {"version": "v4"}},
                    {"name": "canary", "labels": {"version": "v5"}}]}), changed_s_ago=CANARY_S + 60,
        changed_fields=("subsets",))
    return m.build(Expectation("subset-no-pods", target="catalog/search-api",
                               subjects=("DestinationRule catalog/track-metadata",), mentions=("canary",)))


def authz_unknown_principal() -> Scenario:
    """Health records: the ALLOW policy names service account frontdesk-portal; the front desk
    runs as frontdesk-web, so every call is denied (403)."""
    onset = 2700.0
    m = Mesh("authz-unknown-principal",
             "Health records: AuthorizationPolicy allows a principal no workload uses; front desk gets 403",
             "AuthorizationPolicy records/allow-frontdesk (ALLOW, applied 45 min ago) admits only "
             "cluster.local/ns/frontdesk/sa/frontdesk-portal, a service account no workload runs as; "
             "frontdesk-web runs as frontdesk-web, so all its calls to records-api are denied (403, "
             "rbac.denied on records-api's sidecars) while billing-sync, also allowed, works",
             ingress_host="desk.carepoint.example:8080")
    m.namespace("frontdesk")
    m.namespace("records")
    m.namespace("billing")
    gw = m.ingress_gateway()
    web = m.workload("frontdesk", "frontdesk-web", "v3", replicas=2)
    records = m.workload("records", "records-api", "v11", replicas=2)
    sync = m.workload("billing", "billing-sync", "v2")
    m.call(gw, web, 12.0, 80.0, 330.0, ("500", "-", 0.7), onset_s_ago=onset)
    m.denied_call(web, records, 8.4, onset_s_ago=onset)
    m.call(sync, records, 3.0, 14.0, 60.0)
    m.apply(resource("AuthorizationPolicy", "records", "allow-frontdesk", {
        "selector": {"matchLabels": {"app": "records-api"}}, "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/frontdesk/sa/frontdesk-portal",
                                                       "cluster.local/ns/billing/sa/billing-sync"]}}]}]}),
        created_s_ago=onset + 15)
    m.apply(resource("PeerAuthentication", "records", "default", {"mtls": {"mode": "STRICT"}}))
    return m.build(Expectation("authorization-unknown-principal", target="frontdesk/frontdesk-web",
                               subjects=("AuthorizationPolicy records/allow-frontdesk",),
                               mentions=("frontdesk-portal",)))
