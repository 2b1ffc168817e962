"""Shared data for the drift tests (no tests here): Git manifests, live variants, Envoy proxies.

The intended layer is a small Istio setup in namespace ``shop``: VirtualService ``reviews``
(a 90/10 canary route with retries and a timeout, then a default route), DestinationRule
``reviews`` (subsets v1, v2, v3), VirtualService ``ratings``. ``live_docs()`` returns the same
resources the way the API server hands them back (FQDN hosts, defaults spelled out, keys and
lists reordered, server metadata added), optionally edited to create one kind of drift.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from meshobs.model import HttpRoute, Proxy, RouteDestination, UpstreamCluster, frozen_map

NS = "shop"
HOST = f"reviews.{NS}.svc.cluster.local"
NET = "networking.istio.io/v1"

INTENDED_YAML = """\
# Rendered by kustomize: several documents in one file, one of them a List.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
  labels: {app: reviews, team: books}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match:
    - headers: {canary: {exact: "true"}}
    - uri: {prefix: /beta}
    route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v2}
      weight: 10
    timeout: 5s
    retries: {attempts: 3, retryOn: "5xx,connect-failure", perTryTimeout: 2s}
  - name: default
    route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata: {name: ratings, namespace: shop}
  spec:
    hosts: [ratings]
    http:
    - route:
      - destination: {host: ratings}
"""


def write_intended(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "istio.yaml").write_text(INTENDED_YAML, encoding="utf-8")
    # A non-mesh object in the tree must not count as intended mesh configuration.
    (directory / "svc.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": NS},
        "spec": {"selector": {"app": "reviews"}, "ports": [{"port": 9080}]}}), encoding="utf-8")
    return directory


def _server_meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "4711", "generation": 7,
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"spec":{"old":true}}'}}


def live_docs(edit: str | None = None) -> list[dict[str, Any]]:
    """The intended resources as the API server returns them, semantically identical unless
    ``edit`` names a drift: weight, retries, timeout, removed-subset, live-only, intended-only,
    label."""
    vs_meta = _server_meta("reviews")
    vs_meta["labels"] = {"team": "books", "app": "reviews"}  # map order differs
    vs = {"apiVersion": NET, "kind": "VirtualService", "metadata": vs_meta, "status": {"observedGeneration": 7},
          "spec": {
              "gateways": ["mesh"],  # the default, spelled out
              "hosts": [HOST],  # FQDN instead of the short name
              "http": [
                  {"name": "canary",
                   "match": [{"uri": {"prefix": "/beta"}}, {"headers": {"canary": {"exact": "true"}}}],  # reordered
                   "route": [{"destination": {"host": HOST, "subset": "v2"}, "weight": 10},  # reordered
                             {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90}],
                   "timeout": "5000ms",
                   "retries": {"retryOn": "connect-failure,5xx", "attempts": 3, "perTryTimeout": "2.0s"}},
                  {"name": "default",
                   "route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 100}],
                   "retries": {"attempts": 2, "retryOn": "retriable-status-codes,connect-failure,"
                                                         "refused-stream,unavailable,cancelled"},
                   "timeout": "0s",
                   "corsPolicy": {}, "mirrorPercentage": None},  # proto3 zero values
              ]}}
    dr = {"apiVersion": NET, "kind": "DestinationRule", "metadata": _server_meta("reviews"),
          "spec": {"subsets": [{"labels": {"version": "v3"}, "name": "v3"},
                               {"name": "v1", "labels": {"version": "v1"}},
                               {"name": "v2", "labels": {"version": "v2"}}],
                   "host": HOST, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL", "sni": ""}}}}
    ratings = {"apiVersion": NET, "kind": "VirtualService", "metadata": _server_meta("ratings"),
               "spec": {"hosts": ["ratings"], "http": [{"route": [{"destination": {"host": "ratings"}}]}]}}
    docs = [vs, dr, ratings]
    docs = copy.deepcopy(docs)
    canary = docs[0]["spec"]["http"][0]
    if edit == "weight":
        canary["route"][0]["weight"], canary["route"][1]["weight"] = 50, 50
    elif edit == "retries":
        canary["retries"]["attempts"] = 5
    elif edit == "timeout":
        canary["timeout"] = "30s"
    elif edit == "removed-subset":
        docs[1]["spec"]["subsets"] = [s for s in docs[1]["spec"]["subsets"] if s["name"] != "v3"]
    elif edit == "live-only":
        docs.append({"apiVersion": NET, "kind": "VirtualService", "metadata": _server_meta("hotfix"),
                     "spec": {"hosts": ["details"], "http": [{"route": [{"destination": {"host": "details"}}]}]}})
    elif edit == "intended-only":
        docs = [d for d in docs if d["metadata"]["name"] != "ratings"]
    elif edit == "label":
        docs[0]["metadata"]["labels"]["team"] = "ops"
    elif edit is not None:
        raise ValueError(edit)
    return docs


def write_live(directory: Path, edit: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "live.yaml").write_text(yaml.safe_dump_all(live_docs(edit)), encoding="utf-8")
    return directory


# -- effective: Envoy proxies as the config_dump parser builds them -------------------------

def _cluster(subset: str, port: int = 9080, host: str = HOST) -> UpstreamCluster:
    return UpstreamCluster(name=f"outbound|{port}|{subset}|{host}", direction="outbound", service_host=host,
                           port=port, subset=subset or None)


def _route(name: str, weights: dict[str, int], *, timeout: float | None, attempts: int | None,
           retry_on: str | None, per_try: float | None, match: dict[str, Any]) -> HttpRoute:
    dests = tuple(RouteDestination(f"outbound|9080|{s}|{HOST}", w) for s, w in weights.items())
    return HttpRoute(route_config="9080", virtual_host=f"{HOST}:9080",
                     domains=(HOST, f"{HOST}:9080", "reviews", "reviews:9080"), name=name,
                     match=frozen_map(match), destinations=dests, timeout_s=timeout, retry_attempts=attempts,
                     retry_on=retry_on, per_try_timeout_s=per_try)


def proxy(pod: str, *, weights: dict[str, int] | None = None, attempts: int = 3, timeout: float = 5.0,
          subsets: tuple[str, ...] = ("", "v1", "v2", "v3")) -> Proxy:
    """A caller's sidecar holding what Istio generates from the live config (with overrides)."""
    weights = weights or {"v1": 90, "v2": 10}
    canary = [_route("canary", weights, timeout=timeout, attempts=attempts, retry_on="5xx,connect-failure",
                     per_try=2.0, match=m) for m in ({"prefix": "/", "headers": [{"name": "canary"}]},
                                                      {"prefix": "/beta"})]
    default = _route("default", {"v1": 100}, timeout=0.0, attempts=2,
                     retry_on="connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                     per_try=None, match={"prefix": "/"})
    other = HttpRoute(route_config="9080", virtual_host="allow_any", domains=("*",), name="allow_any",
                      match=frozen_map({"prefix": "/"}),
                      destinations=(RouteDestination("PassthroughCluster", 100),), timeout_s=0.0)
    return Proxy(id=f"{pod}.{NS}", pod=pod, namespace=NS, routes=(*canary, default, other),
                 clusters=tuple(_cluster(s) for s in subsets))
