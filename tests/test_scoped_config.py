"""Analyzers on a partial view: ``diagnose SERVICE`` lists mesh configuration only in the
namespaces its question involves (plus the root namespace), while pods, Services, Deployments
and Namespaces stay cluster-wide. A resource that may live elsewhere (a Gateway vouching for a
service account, the root namespace's PeerAuthentication, a Gateway a route binds to, a
ServiceEntry exported to all) is missing for sure only where that namespace was listed; where it
was not, the analyzer says it could not check rather than report a finding.

The snapshots are built through the live Kubernetes normaliser from API-shaped lists, the way a
scoped collection's payloads arrive (``crd/GROUP/VERSION/PLURAL@NAMESPACE``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from meshobs.assemble import assemble
from meshobs.checks.base import Settings
from meshobs.collectors import kubernetes
from meshobs.collectors.base import NormalizeContext
from meshobs.engine.runner import analyze
from meshobs.model import MeshSnapshot
from meshobs.raw import Payload, RawSource
from tests.support.manifests import analyzers
from tests.test_analyzers import docs, vs
from tests.test_analyzers_sec import INJECTED, authz, namespace, peer_auth, principals, svc, workload

TIME = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
CORE = {"Pod": "pods", "Service": "services", "Namespace": "namespaces", "Deployment": "deployments"}
PLURALS = {"AuthorizationPolicy": "authorizationpolicies", "PeerAuthentication": "peerauthentications",
           "VirtualService": "virtualservices", "ServiceEntry": "serviceentries", "Gateway": "gateways"}
EVERYWHERE = None


def live(text: str, listed: tuple[str, ...] | None) -> MeshSnapshot:
    """The snapshot the live API gives for these objects when mesh configuration was listed in
    ``listed`` namespaces only (None: cluster-wide); the core lists are cluster-wide."""
    core: dict[str, list[Any]] = defaultdict(list)
    crds: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for doc in yaml.safe_load_all(text):
        kind, ns = doc["kind"], doc["metadata"].get("namespace", "")
        if kind in CORE:
            core[CORE[kind]].append(doc)
            continue
        group, version = doc["apiVersion"].split("/")
        if listed is EVERYWHERE or ns in listed:
            crds[(f"crd/{group}/{version}/{PLURALS[kind]}", ns, kind)].append(doc)
    raw = RawSource(name="kubernetes", kind="kubernetes")
    for key in CORE.values():
        raw.add(Payload(key=key, status=200, body=json.dumps({"kind": "List", "items": core[key]})))
    for ns in listed or ():  # a listed namespace answers even where it holds nothing
        crds.setdefault(("crd/security.istio.io/v1/authorizationpolicies", ns, "AuthorizationPolicy"), [])
    for (key, ns, kind), items in crds.items():
        at = "" if listed is EVERYWHERE else f"@{ns}"
        raw.add(Payload(key=key + at, status=200, body=json.dumps({"kind": f"{kind}List", "items": items})))
    part = kubernetes.normalize(raw, NormalizeContext(time=TIME, window_s=300.0))
    return assemble(part, time=TIME, window_s=300.0, origin="live")


def verdict(snapshot: MeshSnapshot, analyzer: str) -> tuple[set[str], str]:
    """(codes found, the analyzer's status) on the snapshot."""
    analysis = analyze(snapshot, Settings(), analyzers([analyzer]))
    found = {f.code for f in analysis.mesh_level} | {f.code for fs in analysis.by_service.values() for f in fs}
    return found, analysis.results[analyzer].status


def test_the_namespaces_listed_are_read_from_the_payload_keys() -> None:
    keys = ["pods", "crd/networking.istio.io/v1/virtualservices@shop", "crd/appmesh.k8s.aws/v1beta2/meshes",
            "crd/security.istio.io/v1/peerauthentications@istio-system"]
    assert kubernetes.listed_config_namespaces([Payload(key=k) for k in keys]) == ("istio-system", "shop")
    assert kubernetes.listed_config_namespaces([Payload(key=k) for k in
                                                ["pods", "crd/networking.istio.io/v1/virtualservices"]]) is None
    assert kubernetes.listed_config_namespaces([Payload(key="pods")]) == ()  # the graph phase lists none


GATEWAY_API = ("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: front, namespace: edge}\n"
               "spec:\n  gatewayClassName: istio\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n")

# Ledger admits the edge's gateway, which Istio deploys for Gateway edge/front as front-istio.
LEDGER_ADMITS_THE_EDGE = docs(
    namespace("payments", INJECTED), namespace("edge", INJECTED),
    workload("ledger-v1", "payments", "{app: ledger}", "ledger"), svc("ledger", "payments", "[{name: http, port: 80}]"),
    workload("web-v1", "edge", "{app: web}", "web"), GATEWAY_API,
    authz("callers", "payments", principals("cluster.local/ns/edge/sa/front-istio"), "{app: ledger}"))


@pytest.mark.parametrize(("listed", "expected"), [
    (EVERYWHERE, (set(), "pass")),  # the Gateway vouches for the account
    (("edge", "istio-system", "payments"), (set(), "pass")),
    # The edge's configuration was not listed: its Gateway is not known, so no verdict.
    (("istio-system", "payments"), (set(), "skipped")),
])
def test_a_gateway_vouching_for_a_principal_is_looked_for_only_where_it_was_listed(
        listed: tuple[str, ...] | None, expected: tuple[set[str], str]) -> None:
    assert verdict(live(LEDGER_ADMITS_THE_EDGE, listed), "config.authz_identity") == expected


def test_a_principal_nothing_runs_as_is_still_found_where_the_namespace_was_listed() -> None:
    typo = LEDGER_ADMITS_THE_EDGE.replace("front-istio", "frnt-istio")
    assert verdict(live(typo, ("edge", "istio-system", "payments")), "config.authz_identity") == ({"MSH0255"},
                                                                                                  "warn")
    # An account a pod of the unlisted namespace runs as needs no Gateway: judged, and found.
    web = LEDGER_ADMITS_THE_EDGE.replace("front-istio", "web")
    assert verdict(live(web, ("istio-system", "payments")), "config.authz_identity") == (set(), "pass")


# A DENY naming callers relies on mTLS; the root namespace's STRICT default provides it.
DENY_WITH_STRICT_ROOT = docs(
    namespace("payments", INJECTED), namespace("istio-system"),
    workload("ledger-v1", "payments", "{app: ledger}", "ledger"), svc("ledger", "payments", "[{name: http, port: 80}]"),
    peer_auth("default", "istio-system", "STRICT"),
    authz("no-batch", "payments", principals("cluster.local/ns/payments/sa/ledger"), "{app: ledger}", "DENY"))


def test_the_mesh_wide_mtls_default_is_judged_only_where_the_root_namespace_was_listed() -> None:
    assert verdict(live(DENY_WITH_STRICT_ROOT, ("istio-system", "payments")), "config.authz_requires_mtls") == \
        (set(), "pass")
    # sources.kubernetes.namespaces: [payments]: the root's STRICT default is not seen, not absent.
    assert verdict(live(DENY_WITH_STRICT_ROOT, ("payments",)), "config.authz_requires_mtls") == (set(), "skipped")
    # Listed, and absent: the DENY is bypassed by plaintext callers.
    permissive = DENY_WITH_STRICT_ROOT.replace("mode: STRICT", "mode: PERMISSIVE")
    assert verdict(live(permissive, ("istio-system", "payments")), "config.authz_requires_mtls") == \
        ({"MSH0257"}, "warn")


ROUTE = "  - route: [{destination: {host: ledger}}]\n"
BOUND_TO_THE_EDGE = docs(
    namespace("payments", INJECTED), namespace("edge", INJECTED),
    workload("ledger-v1", "payments", "{app: ledger}", "ledger"), svc("ledger", "payments", "[{name: http, port: 80}]"),
    workload("web-v1", "edge", "{app: web}", "web"), svc("web", "edge", "[{name: http, port: 80}]"),
    "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: public, namespace: edge}\n"
    "spec:\n  selector: {app: web}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]\n",
    vs("ledger", "payments", ROUTE, extra="  gateways: [edge/public]\n"))


def test_a_gateway_in_a_namespace_not_listed_is_not_called_missing() -> None:
    assert verdict(live(BOUND_TO_THE_EDGE, EVERYWHERE), "config.gateway_not_found") == (set(), "pass")
    assert verdict(live(BOUND_TO_THE_EDGE, ("istio-system", "payments")), "config.gateway_not_found") == \
        (set(), "skipped")
    gone = BOUND_TO_THE_EDGE.replace("edge/public]", "edge/publik]")
    assert verdict(live(gone, ("edge", "istio-system", "payments")), "config.gateway_not_found") == \
        ({"MSH0224"}, "fail")


EXTERNAL = docs(
    namespace("payments", INJECTED), namespace("egress", INJECTED),
    workload("ledger-v1", "payments", "{app: ledger}", "ledger"), svc("ledger", "payments", "[{name: http, port: 80}]"),
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: bank, namespace: egress}\n"
    "spec:\n  hosts: [api.bank.example]\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n"
    "  resolution: DNS\n  location: MESH_EXTERNAL\n",
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: mail, namespace: payments}\n"
    "spec:\n  hosts: [smtp.mail.example]\n  ports: [{number: 25, name: tcp, protocol: TCP}]\n  resolution: DNS\n",
    vs("bank", "payments", "  - route: [{destination: {host: api.bank.example}}]\n", hosts="[api.bank.example]"))


def test_an_external_host_is_missing_for_sure_only_when_every_namespace_was_listed() -> None:
    """The bank's ServiceEntry lives in egress, exported to all: a listing of payments alone
    (which holds another ServiceEntry) cannot say the host is undefined."""
    assert verdict(live(EXTERNAL, EVERYWHERE), "config.host_not_found") == (set(), "pass")
    assert verdict(live(EXTERNAL, ("istio-system", "payments")), "config.host_not_found") == (set(), "skipped")
    gone = EXTERNAL.replace("hosts: [api.bank.example]\n  ports", "hosts: [api.bank.test]\n  ports")
    assert verdict(live(gone, EVERYWHERE), "config.host_not_found")[0] == {"MSH0223"}


def test_live_secrets_are_never_listed_so_a_credential_is_not_called_missing() -> None:
    tls = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: public, namespace: edge}\n"
           "spec:\n  selector: {app: web}\n  servers: [{port: {number: 443, name: https, protocol: HTTPS}, "
           "hosts: ['*'], tls: {mode: SIMPLE, credentialName: public-cert}}]\n")
    text = docs(namespace("edge", INJECTED), workload("web-v1", "edge", "{app: web}", "web"),
                svc("web", "edge", "[{name: https, port: 443}]"), tls)
    found, _status = verdict(live(text, EVERYWHERE), "config.gateway_credential")
    assert "MSH0239" not in found
