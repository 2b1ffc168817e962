"""Before/after pairs of a cut-over from App Mesh to Istio, for ``meshobs migrate verify``.

``before``: the healthy shop, every workload on App Mesh (CloudWatch, X-Ray, App Mesh's Envoy).
``after``: the same workloads on Istio (Prometheus, Jaeger, istio-proxy) configured by the
translation of the before side's CRDs (:func:`meshobs.migrate.translate.translate`), edited by
``edit`` to stage a faulty migration. Traffic follows the after side's configuration: a
service's calls are split across its versions by the translated route weights, and Istio's
auto mTLS secures every edge.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .scenario import GATEWAY, NAMESPACE, Scenario, WorkloadSpec, builtin_scenario
from .scenario_appmesh import APPMESH_GATEWAY, _regateway, appmesh_crds

Edit = Callable[[list[dict[str, Any]]], None]


def appmesh_before(*, tls: bool = False) -> Scenario:
    """The healthy shop with every workload on App Mesh."""
    base = builtin_scenario("healthy")
    gateway = WorkloadSpec(NAMESPACE, APPMESH_GATEWAY, APPMESH_GATEWAY, "v1", 1, APPMESH_GATEWAY, 8080,
                           gateway=True)
    workloads = [gateway if w.name == GATEWAY else w for w in base.workloads]
    scenario = replace(base, name="cutover-before", description="Healthy shop on App Mesh (before the cut-over)",
                       cause="no fault", workloads=workloads, edges=_regateway(base.edges, gateway), config=[],
                       intended=None, appmesh=frozenset(w.service for w in workloads))
    scenario.appmesh_config = appmesh_crds(scenario, tls=tls)
    return scenario


def translated_config(before: Scenario) -> list[dict[str, Any]]:
    """The Istio resources the translation makes of the before side's CRDs."""
    from meshobs.collectors.appmesh_config import from_document
    from meshobs.migrate.translate import translate

    resources = [r for doc in before.appmesh_config for r in from_document(doc)]
    return [copy.deepcopy(m.doc) for m in translate(resources).manifests if m.doc["apiVersion"] != "v1"]


def _weights(config: list[dict[str, Any]], service: str) -> dict[str, float] | None:
    """Version -> weight of the weighted route of ``service``'s VirtualService (None: unsplit)."""
    for r in config:
        if r["kind"] != "VirtualService" or r["spec"].get("gateways"):
            continue
        if not any(h.split(".")[0] == service for h in r["spec"].get("hosts", [])):
            continue
        for rule in r["spec"].get("http", []):
            if len(rule.get("route", [])) > 1:
                return {d["destination"].get("subset", ""): float(d.get("weight", 0)) for d in rule["route"]}
    return None


def after(before: Scenario, edit: Edit | None = None, name: str = "cutover-after") -> Scenario:
    """The mesh after the cut-over (see the module docstring)."""
    config = translated_config(before)
    if edit is not None:
        edit(config)
    edges = []
    for e in before.edges:
        weights = _weights(config, e.destination_service)
        if weights:
            total_rps = sum(x.rps for x in before.edges if x.source_workload == e.source_workload
                            and x.destination_service == e.destination_service)
            share = weights.get(e.destination_version, 0.0) / (sum(weights.values()) or 1.0)
            e = replace(e, rps=round(total_rps * share, 3))
        edges.append(replace(e, mtls=True, destination_istio=True))
    return replace(before, name=name, description="The shop after the cut-over to Istio",
                   cause="translated from the App Mesh configuration", edges=edges, config=config,
                   appmesh=frozenset(), appmesh_config=[])


def lose_retry_and_change_weight(config: list[dict[str, Any]]) -> None:
    """A careless hand edit of the translation: cart-service's retries dropped, product-service's
    canary moved from 90/10 to 80/20."""
    for r in config:
        if r["kind"] != "VirtualService":
            continue
        if r["metadata"]["name"] == "cart-service":
            for rule in r["spec"]["http"]:
                rule.pop("retries", None)
        if r["metadata"]["name"] == "product-service":
            for rule in r["spec"]["http"]:
                for d in rule["route"]:
                    if "weight" in d:
                        d["weight"] = 80 if d["destination"].get("subset") == "v1" else 20
