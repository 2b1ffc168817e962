"""App Mesh -> Istio translation: every corpus file and demo translates, validates and round-trips;
each construct maps as documented; a lossy translation is caught by the round trip."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshobs.collectors import appmesh_config as ac
from meshobs.istio_schema import validate
from meshobs.migrate.ledger import CHANGED, NO_RULE, UNTRANSLATABLE
from meshobs.migrate.roundtrip import round_trip
from meshobs.migrate.source import from_documents, load
from meshobs.migrate.translate import Translation, translate
from tests.support.moto_server import cli_outputs

CORPUS_FILES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "shared/corpus/appmesh-config")
                      .glob("*/*"))


def _corpus_docs(corpus: Path, name: str) -> list[Any]:
    path = next((corpus / "appmesh-config").glob(f"*/{name}"))
    if path.suffix == ".rst":
        return cli_outputs(path)
    text = path.read_text(encoding="utf-8")
    text = ac.fill_template(text, {v: f"val-{v.lower().replace('_', '-')}" for v in ac.placeholders(text)})
    return [json.loads(text)] if name.endswith(".json") else [d for d in yaml.safe_load_all(text) if d]


def _checked(translation: Translation) -> None:
    """What every translation must satisfy: Istio's schemas, the round trip, no silent field."""
    for m in translation.manifests:
        if m.doc["apiVersion"] != "v1":
            assert [i for i in validate(m.doc) if i.severity == "error"] == [], m.filename
    assert round_trip(translation) == []
    assert translation.ledger.of_status(NO_RULE) == []


def _docs(translation: Translation, kind: str) -> dict[str, dict[str, Any]]:
    return {m.name: m.doc for m in translation.manifests if m.kind == kind}


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_file_translates(corpus: Path, name: str) -> None:
    resources = from_documents(_corpus_docs(corpus, name), name)
    assert resources
    translation = translate(resources)
    _checked(translation)
    # Every resource either produced Istio configuration or says why it could not.
    produced = {s for m in translation.manifests for s in m.sources}
    explained = {e.resource for e in translation.ledger.entries if e.status == UNTRANSLATABLE}
    for r in translation.resources:
        described = f"{r.kind} {r.namespace}/{r.name}" if r.namespace else f"{r.kind} {r.name}"
        assert described in produced | explained or translation.ledger.translated, described


def test_the_whole_corpus_at_once(corpus: Path) -> None:
    resources = [r for name in CORPUS_FILES for r in from_documents(_corpus_docs(corpus, name), name)]
    translation = translate(resources)
    _checked(translation)
    kinds = {m.kind for m in translation.manifests}
    assert {"VirtualService", "DestinationRule", "PeerAuthentication", "ServiceEntry", "Gateway", "Sidecar",
            "Namespace"} <= kinds


@pytest.mark.parametrize("demo", ["demo:ecommerce-appmesh", "demo:migration"])
def test_the_appmesh_demos_translate(demo: str) -> None:
    translation = translate(load(demo).resources)
    _checked(translation)
    assert _docs(translation, "VirtualService")


def test_mtls_walkthrough_header_routes_priorities_and_tls(corpus: Path) -> None:
    t = translate(from_documents(_corpus_docs(corpus, "howto-k8s-mtls-sds-based__manifest.yaml.template"), "x"))
    (vs,) = _docs(t, "VirtualService").values()
    http = vs["spec"]["http"]
    # Priorities 10, 20, 30 keep their order; each route matches its header value.
    assert [r["name"] for r in http] == ["color-route-blue", "color-route-green", "color-route-red"]
    assert http[0]["match"] == [{"headers": {"color_header": {"exact": "blue"}}}]
    assert http[0]["route"] == [{"destination": {"host": "color-blue.val-app-namespace.svc.cluster.local"}}]
    assert all(r["timeout"] == "15s" for r in http)  # App Mesh's default, written out
    peers = _docs(t, "PeerAuthentication")
    assert {n: p["spec"]["mtls"]["mode"] for n, p in peers.items()} == {"blue": "STRICT", "green": "STRICT",
                                                                       "red": "STRICT"}
    # front enforces client TLS to color: every host color routes to originates ISTIO_MUTUAL.
    rules = _docs(t, "DestinationRule")
    assert {r["spec"]["host"].split(".")[0]: r["spec"]["trafficPolicy"]["tls"]["mode"] for r in rules.values()} \
        == {"color-blue": "ISTIO_MUTUAL", "color-green": "ISTIO_MUTUAL", "color-red": "ISTIO_MUTUAL"}
    untranslatable = {(e.resource, e.path) for e in t.ledger.of_status(UNTRANSLATABLE)}
    assert ("VirtualNode val-app-namespace/blue", "spec.listeners[0].tls.certificate") in untranslatable
    assert ("VirtualNode val-app-namespace/front", "spec.backendDefaults.clientPolicy.tls.validation") \
        in untranslatable


def test_connection_pools_and_outlier_detection(corpus: Path) -> None:
    pools = translate(from_documents(_corpus_docs(corpus, "howto-k8s-connection-pools__manifest.yaml.template"),
                                     "x"))
    (rule,) = [r for r in _docs(pools, "DestinationRule").values() if "connectionPool" in str(r)]
    assert rule["spec"]["trafficPolicy"]["connectionPool"] == {"tcp": {"maxConnections": 10},
                                                               "http": {"http1MaxPendingRequests": 10}}
    assert any(e.path.endswith("connectionPool") for e in pools.ledger.of_status(CHANGED))
    outlier = translate(from_documents(_corpus_docs(corpus, "howto-k8s-outlier-detection__manifest.yaml.template"),
                                       "x"))
    (od,) = [r["spec"]["trafficPolicy"]["outlierDetection"] for r in _docs(outlier, "DestinationRule").values()]
    assert od == {"consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "10s", "maxEjectionPercent": 50}


def test_cloud_map_nodes_become_service_entries(corpus: Path) -> None:
    t = translate(from_documents(_corpus_docs(corpus, "ecs-yelb__yelb-app-vn.json"), "x"))
    (entry,) = _docs(t, "ServiceEntry").values()
    # An ECS task found through Cloud Map: outside Istio's pods, resolved by its DNS name.
    assert entry["spec"]["hosts"] == ["yelb-appserver.yelb.local"]
    assert (entry["spec"]["location"], entry["spec"]["resolution"]) == ("MESH_EXTERNAL", "DNS")
    assert entry["metadata"]["namespace"] == "yelb"


def _node(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
            "metadata": {"name": name, "namespace": "billing"},
            "spec": {"podSelector": {"matchLabels": {"app": "ledger", "track": name}},
                     "listeners": [{"portMapping": {"port": 7070, "protocol": "http"}}],
                     "serviceDiscovery": {"dns": {"hostname": "ledger.billing.svc.cluster.local"}}, **spec}}


def _router(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
             "metadata": {"name": "ledger-router", "namespace": "billing"},
             "spec": {"listeners": [{"portMapping": {"port": 7070, "protocol": "http"}}], "routes": routes}},
            {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualService",
             "metadata": {"name": "ledger", "namespace": "billing"},
             "spec": {"awsName": "ledger.billing.svc.cluster.local",
                      "provider": {"virtualRouter": {"virtualRouterRef": {"name": "ledger-router"}}}}}]


def _targets(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"weightedTargets": [{"virtualNodeRef": {"name": n}, "weight": w} for n, w in pairs]}


def _own_mesh(routes: list[dict[str, Any]], **node_spec: Any) -> Translation:
    docs = [_node("stable", **node_spec), _node("edge"), *_router(routes)]
    return translate(from_documents(docs, "test"))


def test_matches_retries_timeouts_and_canary_subsets() -> None:
    t = _own_mesh([
        {"name": "fallback", "httpRoute": {"match": {"prefix": "/"}, "action": _targets(("stable", 1))}},
        {"name": "writes", "priority": 5, "httpRoute": {
            "match": {"prefix": "/entries", "method": "POST",
                      "headers": [{"name": "X-Tenant", "match": {"suffix": ".eu"}},
                                  {"name": "X-Debug", "invert": True, "match": {"exact": "1"}}],
                      "queryParameters": [{"name": "dry", "match": {"exact": "no"}}]},
            "action": _targets(("stable", 3), ("edge", 1)),
            "retryPolicy": {"maxRetries": 4, "perRetryTimeout": {"value": 250, "unit": "ms"},
                            "httpRetryEvents": ["server-error", "client-error", "stream-error"],
                            "tcpRetryEvents": ["connection-error"]},
            "timeout": {"perRequest": {"value": 0, "unit": "s"}, "idle": {"value": 30, "unit": "s"}}}},
    ])
    _checked(t)
    http = _docs(t, "VirtualService")["ledger"]["spec"]["http"]
    assert [r["name"] for r in http] == ["writes", "fallback"]  # priority first, the catch-all last
    writes = http[0]
    assert writes["match"] == [{"uri": {"prefix": "/entries"}, "method": {"exact": "POST"},
                                "queryParams": {"dry": {"exact": "no"}},
                                "headers": {"x-tenant": {"regex": ".*\\.eu"}},
                                "withoutHeaders": {"x-debug": {"exact": "1"}}}]
    assert [(d["destination"]["subset"], d["weight"]) for d in writes["route"]] == [("stable", 3), ("edge", 1)]
    assert writes["retries"] == {"attempts": 4, "perTryTimeout": "250ms",
                                 "retryOn": "5xx,connect-failure,refused-stream,retriable-4xx"}
    assert "timeout" not in writes  # perRequest 0 disables the timeout, as no timeout does in Istio
    assert http[1]["timeout"] == "15s" and "match" not in http[1]
    (rule,) = _docs(t, "DestinationRule").values()
    assert {s["name"]: s["labels"] for s in rule["spec"]["subsets"]} == {
        "stable": {"app": "ledger", "track": "stable"}, "edge": {"app": "ledger", "track": "edge"}}
    assert {(e.path, e.status) for e in t.ledger.entries} >= {
        ("spec.routes[1].httpRoute.timeout.idle", UNTRANSLATABLE),
        ("spec.routes[0].httpRoute.retryPolicy", CHANGED)}


def test_unmatchable_header_range_is_listed_not_guessed() -> None:
    t = _own_mesh([{"name": "r", "httpRoute": {
        "match": {"prefix": "/", "headers": [{"name": "x-version", "match": {"range": {"start": 1, "end": 5}}}]},
        "action": _targets(("stable", 1))}}])
    assert "headers" not in str(_docs(t, "VirtualService")["ledger"]["spec"]["http"][0].get("match"))
    assert [(e.path, e.status) for e in t.ledger.of_status(UNTRANSLATABLE)] == [
        ("spec.routes[0].httpRoute.match.headers[0].match.range", UNTRANSLATABLE)]


def test_grpc_and_tcp_routes() -> None:
    t = _own_mesh([
        {"name": "rpc", "grpcRoute": {"match": {"serviceName": "billing.Ledger", "methodName": "Post",
                                                "metadata": [{"name": "tenant", "match": {"prefix": "eu-"}}]},
                                      "action": _targets(("stable", 1)),
                                      "retryPolicy": {"maxRetries": 1, "perRetryTimeout": {"value": 2, "unit": "s"},
                                                      "grpcRetryEvents": ["unavailable", "deadline-exceeded"]}}},
        {"name": "raw", "tcpRoute": {"match": {"port": 7071}, "action": _targets(("edge", 1)),
                                     "timeout": {"idle": {"value": 600, "unit": "s"}}}},
    ])
    _checked(t)
    spec = _docs(t, "VirtualService")["ledger"]["spec"]
    assert spec["http"][0]["match"] == [{"uri": {"exact": "/billing.Ledger/Post"},
                                        "headers": {"tenant": {"prefix": "eu-"}}}]
    assert spec["http"][0]["retries"]["retryOn"] == "deadline-exceeded,unavailable"
    assert spec["tcp"] == [{"route": [{"destination": {"host": "ledger.billing.svc.cluster.local",
                                                       "subset": "edge"}}], "match": [{"port": 7071}]}]


def test_listener_tls_per_port_and_an_external_backend_with_tls_origination() -> None:
    stable = _node("stable")
    stable["spec"]["listeners"] = [
        {"portMapping": {"port": 7070, "protocol": "http"}, "tls": {"mode": "STRICT", "certificate": {
            "file": {"certificateChain": "/c.pem", "privateKey": "/k.pem"}}}},
        {"portMapping": {"port": 9090, "protocol": "http"}, "tls": {"mode": "PERMISSIVE", "certificate": {
            "file": {"certificateChain": "/c.pem", "privateKey": "/k.pem"}}}}]
    stable["spec"]["backends"] = [{"virtualService": {"virtualServiceRef": {"name": "fx"}, "clientPolicy": {
        "tls": {"enforce": True, "validation": {"trust": {"file": {"certificateChain": "/ca.pem"}}}}}}}]
    fx_node = {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
               "metadata": {"name": "fx-rates", "namespace": "billing"},
               "spec": {"listeners": [{"portMapping": {"port": 443, "protocol": "tcp"}}],
                        "serviceDiscovery": {"dns": {"hostname": "rates.fx.example.net"}}}}
    fx = {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualService",
          "metadata": {"name": "fx", "namespace": "billing"},
          "spec": {"awsName": "rates.fx.example.net",
                   "provider": {"virtualNode": {"virtualNodeRef": {"name": "fx-rates"}}}}}
    t = translate(from_documents([stable, fx_node, fx], "test"))
    _checked(t)
    (peer,) = _docs(t, "PeerAuthentication").values()
    assert peer["spec"]["portLevelMtls"] == {"7070": {"mode": "STRICT"}, "9090": {"mode": "PERMISSIVE"}}
    (entry,) = _docs(t, "ServiceEntry").values()
    assert entry["spec"]["location"] == "MESH_EXTERNAL" and entry["spec"]["ports"][0]["protocol"] == "TCP"
    (rule,) = _docs(t, "DestinationRule").values()
    assert rule["spec"]["trafficPolicy"]["tls"] == {"mode": "SIMPLE", "sni": "rates.fx.example.net"}
    (sidecar,) = _docs(t, "Sidecar").values()
    assert sidecar["spec"]["egress"][0]["hosts"] == ["*/rates.fx.example.net", "istio-system/*"]


def test_gateway_routes_rewrite_like_app_mesh() -> None:
    docs = [_node("stable"), *_router([{"name": "r", "httpRoute": {"match": {"prefix": "/"},
                                                                   "action": _targets(("stable", 1))}}]),
            {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualGateway",
             "metadata": {"name": "edge-gw", "namespace": "billing"},
             "spec": {"podSelector": {"matchLabels": {"app": "edge-gw"}},
                      "listeners": [{"portMapping": {"port": 8443, "protocol": "http"}}]}},
            {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "GatewayRoute",
             "metadata": {"name": "ledger-api", "namespace": "billing"},
             "spec": {"priority": 2, "httpRoute": {
                 "match": {"prefix": "/ledger/", "hostname": {"suffix": ".corp.example"}},
                 "action": {"target": {"virtualService": {"virtualServiceRef": {"name": "ledger"}}}}}}},
            {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "GatewayRoute",
             "metadata": {"name": "ledger-raw", "namespace": "billing"},
             "spec": {"priority": 1, "httpRoute": {
                 "match": {"prefix": "/raw/"},
                 "action": {"target": {"virtualService": {"virtualServiceRef": {"name": "ledger"}}},
                            "rewrite": {"prefix": {"defaultPrefix": "DISABLED"},
                                        "hostname": {"defaultTargetHostname": "DISABLED"}}}}}}]
    t = translate(from_documents(docs, "test"))
    _checked(t)
    gw_vs = _docs(t, "VirtualService")["edge-gw-routes"]["spec"]
    assert gw_vs["gateways"] == ["billing/edge-gw"]
    raw, api = gw_vs["http"]
    assert raw["name"] == "ledger-raw" and "rewrite" not in raw  # priority 1 first; rewrites disabled
    assert api["rewrite"] == {"uri": "/", "authority": "ledger.billing.svc.cluster.local"}
    assert api["match"] == [{"uri": {"prefix": "/ledger/"}, "authority": {"regex": ".*\\.corp\\.example(:[0-9]+)?"}}]
    assert _docs(t, "Gateway")["edge-gw"]["spec"]["selector"] == {"app": "edge-gw"}


def test_template_variables_must_be_set(tmp_path: Path, corpus: Path) -> None:
    from meshobs.migrate.source import SourceError

    src = next((corpus / "appmesh-config").glob("*/howto-k8s-outlier-detection__manifest.yaml.template"))
    (tmp_path / "m.yaml.template").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(SourceError, match="APP_NAMESPACE"):
        load(str(tmp_path))


def _broken(translation: Translation, kind: str, name: str, edit: Any) -> Translation:
    manifests = copy.deepcopy(translation.manifests)
    for m in manifests:
        if m.kind == kind and m.name == name:
            edit(m.doc)
    return Translation(manifests, translation.ledger, translation.inventory, translation.notes)


def test_round_trip_catches_what_a_lossy_translation_drops() -> None:
    from meshobs.demo.scenario_appmesh import ecommerce_appmesh

    resources = [r for d in ecommerce_appmesh(tls=True).appmesh_config for r in ac.from_document(d)]
    good = translate(resources)
    assert round_trip(good) == []

    def lose(doc: dict[str, Any]) -> None:
        doc["spec"]["http"][0].pop("retries")
        doc["spec"]["http"][0]["route"][0]["weight"] = 50
        doc["spec"]["http"][0]["route"][1]["weight"] = 50
        doc["spec"]["http"][0]["timeout"] = "30s"

    found = {(str(d.resource), d.path, d.category) for d in round_trip(
        _broken(good, "VirtualService", "product-service", lose))}
    router = "VirtualRouter shop/product-service-router"
    base = "spec.routes[product-service-route].httpRoute"
    host = "product-service.shop.svc.cluster.local"
    assert found == {
        (router, f"{base}.action.weightedTargets[{host}|app=product-service,version=v1].weight", "weight"),
        (router, f"{base}.action.weightedTargets[{host}|app=product-service,version=v2].weight", "weight"),
        (router, f"{base}.retryPolicy.perRetryTimeout", "retries"),
        (router, f"{base}.retryPolicy.retryEvents", "retries"),
        (router, f"{base}.timeout.perRequest", "timeout")}

    def plaintext(doc: dict[str, Any]) -> None:
        doc["spec"]["mtls"]["mode"] = "PERMISSIVE"

    tls = round_trip(_broken(good, "PeerAuthentication", "database-v1", plaintext))
    assert [(str(d.resource), d.path, d.left, d.right) for d in tls] == [
        ("VirtualNode shop/database-v1", "spec.listeners[0].tls.mode", "STRICT", "PERMISSIVE")]

    def no_origination(doc: dict[str, Any]) -> None:
        doc["spec"]["trafficPolicy"].pop("tls")

    origination = round_trip(_broken(good, "DestinationRule", "database-service", no_origination))
    assert {(str(d.resource), d.path, d.category) for d in origination} == {
        (f"VirtualNode shop/{n}", "spec.backendDefaults.clientPolicy.tls.enforce", "tls")
        for n in ("cart-v1", "product-v1", "product-v2")}
