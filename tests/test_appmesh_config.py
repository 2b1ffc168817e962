"""App Mesh configuration normalisation: every corpus file, three shapes, one layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshobs.collectors import appmesh_config as ac
from meshobs.model import ConfigResource, Layer, Mesh, thaw
from tests.support.moto_server import cli_outputs

FILES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "shared/corpus/appmesh-config")
               .glob("*/*"))


def _load(corpus: Path, name: str, env: dict[str, str] | None) -> list[ConfigResource]:
    path = next((corpus / "appmesh-config").glob(f"*/{name}"))
    if path.suffix == ".rst":
        docs: list[Any] = cli_outputs(path)
    else:
        text = path.read_text(encoding="utf-8")
        if ac.placeholders(text):
            text = ac.fill_template(text, env if env is not None else {}, str(path))
        docs = list(yaml.safe_load_all(text))
    return [r for d in docs for r in ac.from_document(d, Layer.INTENDED, str(path))]


def _layout(r: ConfigResource) -> dict[str, Any]:
    return thaw(r.spec["meshobs"])  # type: ignore[no-any-return]


def test_corpus_listing_is_complete(corpus: Path) -> None:
    assert len(list((corpus / "appmesh-config").glob("*/*"))) == len(FILES) == 12


@pytest.mark.parametrize("name", FILES)
def test_every_corpus_file_normalises(corpus: Path, name: str) -> None:
    text = next((corpus / "appmesh-config").glob(f"*/{name}")).read_text(encoding="utf-8")
    env = {v: f"val-{v.lower()}" for v in ac.placeholders(text)}
    resources = _load(corpus, name, env)
    assert resources, name
    for r in resources:
        assert r.mesh is Mesh.APPMESH and r.name and "meshobs" in r.spec
        assert "${" not in str(thaw(r.spec))


def test_template_without_environment_names_the_missing_variables(corpus: Path) -> None:
    with pytest.raises(ac.TemplateError) as info:
        _load(corpus, "howto-k8s-outlier-detection__manifest.yaml.template", {})
    assert {"APP_NAMESPACE", "MESH_NAME", "CLOUDMAP_NAMESPACE"} <= set(info.value.missing)


def test_template_filled_from_the_process_environment(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = next((corpus / "appmesh-config").glob("*/howto-k8s-mtls-sds-based__manifest.yaml.template"))
    text = path.read_text(encoding="utf-8")
    for v in ac.placeholders(text):
        monkeypatch.setenv(v, f"env-{v.lower()}")
    filled = ac.fill_template(text)
    resources = [r for d in yaml.safe_load_all(filled) for r in ac.from_document(d)]
    front = next(r for r in resources if r.kind == "VirtualNode" and r.name == "front")
    assert front.namespace == "env-app_namespace"
    layout = _layout(front)
    # front enforces STRICT client TLS towards its backends; blue/red/green listen with STRICT TLS.
    assert layout["client_tls_enforced"] is True
    assert layout["backend_defaults_client_tls"]["mode"] == "STRICT"
    assert layout["backends"] == [{"virtual_service": "color", "namespace": None, "client_tls": None}]
    blue = next(r for r in resources if r.kind == "VirtualNode" and r.name == "blue")
    assert _layout(blue)["listener_tls"] == "STRICT"
    router = next(r for r in resources if r.kind == "VirtualRouter")
    routes = _layout(router)["routes"]
    assert [(r["name"], r["priority"], r["targets"][0]["virtual_node"]) for r in routes] == [
        ("color-route-blue", 10, "blue"), ("color-route-green", 20, "green"), ("color-route-red", 30, "red")]
    assert routes[0]["match"]["headers"][0]["name"] == "color_header"


def test_describe_route_weights(corpus: Path) -> None:
    (route,) = _load(corpus, "describe-route.rst", None)
    assert (route.kind, route.namespace, route.name) == ("Route", "app1", "vrServiceB/toVnServiceB-weighted")
    layout = _layout(route)
    assert layout["virtual_router"] == "vrServiceB"
    targets = layout["routes"][0]["targets"]
    assert [(t["virtual_node"], t["weight"], t["weight_fraction"]) for t in targets] == [
        ("vnServiceBv1", 90, 0.9), ("vnServiceBv2", 10, 0.1)]
    assert route.annotations["appmesh.status"] == "ACTIVE"
    assert thaw(tuple(ac.routes_of_router([route], "app1", "vrServiceB"))) == layout["routes"]


def test_describe_node_and_service(corpus: Path) -> None:
    (node,) = _load(corpus, "describe-virtual-node.rst", None)
    layout = _layout(node)
    assert layout["listeners"][0]["port"] == 80 and layout["listener_tls"] is None
    assert layout["backends"] == [] and layout["client_tls_enforced"] is False
    assert layout["service_discovery"] == {"dns": "serviceBv1.svc.cluster.local"}
    (service,) = _load(corpus, "describe-virtual-service.rst", None)
    assert _layout(service)["provider"] == {"virtual_router": "vrServiceB"}


def test_create_input_json_backends_and_gateway_route(corpus: Path) -> None:
    (node,) = _load(corpus, "ecs-yelb__yelb-app-vn.json", None)
    assert [b["virtual_service"] for b in _layout(node)["backends"]] == ["yelb-db", "redis-server",
                                                                         "www.recipepuppy.com"]
    assert _layout(node)["service_discovery"] == {"cloud_map": {"namespace": "yelb.local",
                                                                "service": "yelb-appserver"}}
    (gr,) = _load(corpus, "ecs-yelb__yelb-ui-gateway-route.json", None)
    assert gr.name == "yelb-gateway/yelbui-gatewayroute"
    assert _layout(gr)["gateway_target"]["virtual_service"] == "yelb-ui"


def test_crd_health_checks_outlier_detection_and_weights(corpus: Path) -> None:
    resources = _load(corpus, "howto-k8s-multiple-listeners__manifest.yaml", None)
    node = next(r for r in resources if r.kind == "VirtualNode")
    checks = _layout(node)["health_checks"]
    assert [(c["port"], c["path"], c["timeout_ms"], c["interval_ms"]) for c in checks] == [
        (8080, "/ping", 2000.0, 5000.0), (8090, "/ping", 2000.0, 5000.0)]
    assert _layout(node)["aws_name"] == "multi-colors_colors"  # the controller's default
    router = next(r for r in resources if r.kind == "VirtualRouter")
    assert [t["port"] for r in _layout(router)["routes"] for t in r["targets"]] == [8080, 8090]
    text = next((corpus / "appmesh-config").glob("*/howto-k8s-outlier-detection*")).read_text()
    env = {v: "x" for v in ac.placeholders(text)}
    od = [r for d in yaml.safe_load_all(ac.fill_template(text, env)) for r in ac.from_document(d)
          if r.kind == "VirtualNode" and _layout(r)["outlier_detection"]]
    assert len(od) == 1
    detection = _layout(od[0])["outlier_detection"][0]
    assert detection["max_server_errors"] > 0 and detection["interval_ms"] > 0


def test_enrich_kubernetes_config_resource() -> None:
    resource = ConfigResource(kind="VirtualNode", namespace="shop", name="cart", mesh=Mesh.APPMESH,
                              spec=ac.freeze({"listeners": [{"portMapping": {"port": 80, "protocol": "http"},
                                                             "tls": {"mode": "PERMISSIVE"}}],
                                              "meshRef": {"name": "shop-mesh"}}))
    enriched = ac.enrich(resource)
    assert _layout(enriched)["mesh"] == "shop-mesh" and _layout(enriched)["listener_tls"] == "PERMISSIVE"
    assert ac.enrich(enriched) is enriched
    other = ConfigResource(kind="VirtualService", namespace="x", name="y", spec=ac.freeze({}), mesh=Mesh.ISTIO)
    assert ac.enrich(other) is other


def test_durations_and_unrelated_json() -> None:
    assert ac.duration_ms({"value": 2, "unit": "s"}) == 2000.0
    assert ac.duration_ms({"unit": "ms"}) is None
    assert ac.from_document({"virtualNodes": [{"virtualNodeName": "a"}]}) == []
    assert ac.from_document({"kind": "ConfigMap", "apiVersion": "v1"}) == []
    with pytest.raises(ValueError):
        ac.from_api_object("VirtualNode", {"meshName": "m", "spec": {}})
