"""Whether a workload is a gateway is judged once (``meshobs.model.gateway``) from three inputs:
its pod labels, its proxies' Envoy node ids and an Istio Gateway's selector picking it. The
checklist's scope (``scope.gateway_role``: an ingress gateway's callers are not judged), the
port and policy analyzers (``dataplane.is_gateway_of``) and the xDS delivery check (EnvoyFilter's
GATEWAY context for a NACK's culprits) must agree on every one of them.

An analyzer judges configuration only (manifests alone give it the same verdict), so it reads
labels and selectors but never node ids: a gateway known by its node id alone is one for the
scope and the delivery check, and for the analyzers only once its labels or a Gateway say so.

Before, they did not agree even on the configuration inputs: the scope read labels (``istio``
naming an *ingress*gateway) and node ids but no Gateway selector, the analyzers read labels and
selectors, the delivery check node types only. A gateway
installed with Istio's Helm chart as ``istio-ingress`` (labelled ``istio: ingress``, selected by
its Gateway) whose proxy Envoy did not answer for was judged a gateway by the analyzers and an
ordinary service by the scope, which then ran the callers' checks on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from typing import Any

import pytest

from meshobs.checks.dataplane import is_gateway_of
from meshobs.checks.delivery import _gateway, proxy_views
from meshobs.checks.scope import gateway_role
from meshobs.collect import build_snapshot
from meshobs.demo.author import Mesh, resource
from meshobs.demo.build import render_bundle
from meshobs.demo.expect import Expectation
from meshobs.engine import diagnose
from meshobs.model import MeshSnapshot, ServiceRef, freeze
from meshobs.model.gateway import EGRESS, INGRESS, WAYPOINT, gateway_kind

GATEWAY = ServiceRef("istio-system", "istio-ingressgateway")


@pytest.mark.parametrize(("labels", "nodes", "selected", "kind"), [
    ({"app": "istio-ingressgateway", "istio": "ingressgateway"}, (), False, INGRESS),
    ({"app": "istio-egressgateway", "istio": "egressgateway"}, (), False, EGRESS),
    ({"app": "istio-egress", "istio": "egress"}, ("router~10.0.0.9~eg-1.istio-egress~x",), False, EGRESS),
    ({"gateway.networking.k8s.io/gateway-name": "kiosk", "gateway.istio.io/managed": "istio.io-gateway-controller"},
     (), False, INGRESS),
    ({"gateway.networking.k8s.io/gateway-name": "waypoint", "gateway.istio.io/managed": "istio.io-mesh-controller"},
     (), False, WAYPOINT),
    ({"app": "edge"}, ("router~10.0.0.7~edge-1.lobby~lobby.svc.cluster.local",), False, INGRESS),
    ({"app": "edge"}, ("mesh/lobby/virtualGateway/edge-gw",), False, INGRESS),
    ({"app": "istio-ingress", "istio": "ingress"}, (), True, INGRESS),
    ({"app": "istiod", "istio": "pilot"}, (), False, None),
    ({"app": "ledger"}, ("sidecar~10.0.0.8~ledger-1.vault~vault.svc.cluster.local",), False, None),
])
def test_one_judgement_from_labels_node_ids_and_selectors(
        labels: Mapping[str, Any], nodes: tuple[str, ...], selected: bool, kind: str | None) -> None:
    assert gateway_kind(labels, nodes, selected=selected) == kind


@cache
def _base() -> MeshSnapshot:
    m = Mesh("ropeway", "A mountain ropeway: its lift control and ticketing", "no fault")
    gw = m.ingress_gateway()
    lift = m.workload("summit", "lift-control", "v3", replicas=2)
    tickets = m.workload("valley", "ticket-desk", "v1")
    m.call(gw, lift, 8.0, 25.0, 90.0)
    m.call(gw, tickets, 5.0, 12.0, 50.0)
    m.call(lift, tickets, 2.0, 9.0, 30.0)
    m.apply(resource("Gateway", "istio-system", "ropeway-gateway", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}))
    return build_snapshot(render_bundle(m.build(Expectation("healthy", healthy=True))), origin="test")


def _variant(labels: Mapping[str, str] | None, proxies: bool, selector: Mapping[str, str] | None) -> MeshSnapshot:
    """The ropeway with its gateway's pods relabelled (None: as rendered), its proxies dropped
    (Envoy did not answer for them) and its Gateway's selector changed (None: as rendered)."""
    snap = _base()
    gw = snap.workloads_of(GATEWAY)[0].ref

    def relabel(obj: Any) -> Any:
        return replace(obj, labels=freeze(dict(labels))) if labels is not None else obj

    return replace(
        snap,
        workloads=tuple(relabel(w) if w.ref == gw else w for w in snap.workloads),
        pods=tuple(relabel(p) if p.workload == gw else p for p in snap.pods),
        proxies=tuple(p for p in snap.proxies if proxies or p.workload != gw),
        config=tuple(replace(c, spec=freeze({**c.spec, "selector": dict(selector)}))
                     if c.kind == "Gateway" and selector is not None else c for c in snap.config))


VARIANTS = {
    "chart labels, proxies": (None, True, None),
    "chart labels, no proxy": (None, False, None),
    "node id only": ({"app": "istio-ingressgateway"}, True, {"app": "not-this-one"}),
    "helm istio-ingress, selected, no proxy": ({"app": "istio-ingress", "istio": "ingress"}, False,
                                               {"istio": "ingress"}),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_scope_and_the_analyzers_agree(variant: str) -> None:
    snap = _variant(*VARIANTS[variant])
    [workload] = snap.workloads_of(GATEWAY)
    assert gateway_role(snap, GATEWAY) == INGRESS
    assert is_gateway_of(snap, workload.labels, workload.ref)  # a check, reading proxies
    assert is_gateway_of(snap, workload.labels) is (variant != "node id only")  # an analyzer: configuration
    # EnvoyFilter's GATEWAY context, for the proxies a NACK is traced on.
    views = list(proxy_views(snap, GATEWAY))
    assert views and all(_gateway(snap, v, dict(v.workload.labels)) for v in views)


def _not_judged(snap: MeshSnapshot) -> set[str]:
    return {c.id for c in diagnose(snap, GATEWAY).checks if c.status == "skipped" and "ingress gateway" in c.reason}


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "chart labels, proxies"])
def test_a_gateway_known_by_any_one_input_is_diagnosed_as_a_gateway(variant: str) -> None:
    """Its callers' checks are not applicable however it is known, as for the chart's gateway."""
    want = _not_judged(_variant(*VARIANTS["chart labels, proxies"]))
    assert want  # the ingress gateway's callers' checks are skipped
    assert _not_judged(_variant(*VARIANTS[variant])) == want


def test_an_ordinary_service_stays_one() -> None:
    snap = _base()
    lift = ServiceRef("summit", "lift-control")
    [workload] = snap.workloads_of(lift)
    assert gateway_role(snap, lift) is None and not is_gateway_of(snap, workload.labels, workload.ref)
    assert not any(_gateway(snap, v, dict(v.workload.labels)) for v in proxy_views(snap, lift))
