"""Manifests collector: every corpus istio-config / appmesh-config file, lists, templates, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.collectors import manifests
from meshobs.collectors.base import NormalizeContext
from meshobs.config import validate
from meshobs.model import ConfigResource, Layer, Mesh, SnapshotPart, SourceState, WorkloadRef
from tests.conftest import CORPUS

CTX = NormalizeContext(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), 300)
ISTIO_DIR = CORPUS / "istio-config"
APPMESH_DIR = CORPUS / "appmesh-config"
ISTIO_FILES = sorted(p.relative_to(ISTIO_DIR).as_posix() for p in ISTIO_DIR.rglob("*") if p.is_file()) \
    or ["<missing>"]
APPMESH_YAML = sorted(p.relative_to(APPMESH_DIR).as_posix() for p in APPMESH_DIR.rglob("*")
                      if p.is_file() and ".yaml" in p.name) or ["<missing>"]


def _load(paths: list[Path], layer: str = "intended") -> SnapshotPart:
    return manifests.normalize(manifests.read_manifest_tree([str(p) for p in paths], layer), CTX)


def _config(part: SnapshotPart) -> dict[tuple[str, str], ConfigResource]:
    return {(c.kind, c.name): c for c in part.config}


@pytest.mark.parametrize("rel", ISTIO_FILES)
def test_every_istio_config_file(corpus: Path, rel: str) -> None:
    assert len(ISTIO_FILES) >= 10, "istio-config corpus missing"
    part = _load([corpus / "istio-config" / rel])
    [st] = part.sources
    assert st.state is SourceState.OK and st.kind == "manifests", st.message
    # Namespace objects come along as kind Namespace (their labels say injection and data plane).
    mesh_config = [c for c in part.config if c.kind != "Namespace"]
    assert mesh_config and all(c.mesh is Mesh.ISTIO and c.layer is Layer.INTENDED for c in mesh_config)
    assert all(c.origin == str(corpus / "istio-config" / rel) and c.name and c.api_version for c in part.config)


def test_istio_values(corpus: Path) -> None:
    cfg = _config(_load([corpus / "istio-config"]))
    vs = cfg[("VirtualService", "reviews-vs")]
    assert vs.namespace == "bookinfo"
    assert [r["route"][0]["destination"]["subset"] for r in vs.spec["http"]] == ["not-v1", "not-v2"]
    assert [s["name"] for s in cfg[("DestinationRule", "testrule")].spec["subsets"]] == ["v1", "v2"]
    dr = cfg[("DestinationRule", "reviews")]
    assert dr.spec["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL" and dr.namespace == "default"
    assert cfg[("PeerAuthentication", "strict-namespace-mtls")].spec["mtls"]["mode"] == "STRICT"
    assert cfg[("PeerAuthentication", "disable-mesh-mtls")].namespace == "istio-system"
    with pytest.raises(TypeError):
        vs.spec["hosts"] = ["x"]  # frozen


def test_istio_tree_counts(corpus: Path) -> None:
    part = _load([corpus / "istio-config"])
    kinds = [c.kind for c in part.config]
    assert kinds.count("PeerAuthentication") == 7 and kinds.count("Gateway") == 2
    assert len(part.sources) == 1 and part.sources[0].ok


@pytest.mark.parametrize("rel", APPMESH_YAML)
def test_every_appmesh_yaml_file(corpus: Path, rel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("APP_NAMESPACE", "MESH_NAME"):
        monkeypatch.delenv(var, raising=False)
    part = _load([corpus / "appmesh-config" / rel])
    [st] = part.sources
    assert st.state is SourceState.OK, st.message
    assert part.config and all(c.mesh is Mesh.APPMESH for c in part.config if c.kind != "Namespace")
    assert {"Mesh", "VirtualService"} <= {c.kind for c in part.config}
    if rel.endswith(".template"):
        assert "${APP_NAMESPACE}" in st.message and "${MESH_NAME}" in st.message
    else:
        assert "$" not in st.message


def test_appmesh_template_substitutes_environment(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_NAMESPACE", "howto-pools")
    monkeypatch.setenv("MESH_NAME", "pools-mesh")
    monkeypatch.setenv("COLOR_APP_IMAGE", "example/color:1")
    path = corpus / "appmesh-config/aws-app-mesh-examples/howto-k8s-connection-pools__manifest.yaml.template"
    raw = manifests.read_manifest_tree([str(path)], "intended")
    # The objects are read (placeholders filled) when fetched; the values are not kept apart.
    assert raw.payloads[0].meta["format"] == "objects" and "env" not in raw.payloads[0].meta
    part = manifests.normalize(raw, CTX)
    assert part.sources[0].state is SourceState.OK and part.sources[0].message == ""
    mesh = next(c for c in part.config if c.kind == "Mesh")
    assert mesh.name == "pools-mesh" and mesh.namespace == ""  # cluster-scoped
    node = next(c for c in part.config if c.kind == "VirtualNode")
    assert node.namespace == "howto-pools"
    assert node.spec["serviceDiscovery"]["dns"]["hostname"] == "color-red.howto-pools.svc.cluster.local"
    pools = [c for c in part.config if any(lst.get("connectionPool") for lst in c.spec.get("listeners", ()))]
    assert pools


def test_secret_looking_environment_is_not_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "never-recorded")
    monkeypatch.setenv("MESH_NAME", "m1")
    (tmp_path / "m.yaml").write_text("apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\n"
                                     "metadata:\n  name: ${MESH_NAME}\n  annotations:\n    t: ${API_TOKEN}\nspec: {}\n")
    raw = manifests.read_manifest_tree([str(tmp_path)])
    assert "never-recorded" not in raw.payloads[0].body and "env" not in raw.payloads[0].meta
    part = manifests.normalize(raw, CTX)
    assert part.config[0].name == "m1" and "${API_TOKEN}" in part.sources[0].message


def test_appmesh_workloads_and_services(corpus: Path) -> None:
    part = _load([corpus / "appmesh-config/aws-app-mesh-examples/cert-manager-tls__yelb-base.yaml"], "live")
    wl = {w.ref: w for w in part.workloads}
    ui = wl[WorkloadRef("yelb", "yelb-ui")]
    assert ui.mesh is Mesh.APPMESH and ui.app == "yelb-ui"  # namespace has the App Mesh injector label
    assert {str(s) for s in ui.services} == {"yelb/yelb-ui"}
    nodes = [c for c in part.config if c.kind == "VirtualNode"]
    assert len(nodes) == 4 and all(c.layer is Layer.LIVE for c in nodes)


def test_lists_multi_docs_json_and_server_metadata(tmp_path: Path) -> None:
    vs_list = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "cart", "namespace": "shop", "resourceVersion": "5", "uid": "u",
                      "managedFields": [{"manager": "kubectl"}],
                      "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "team": "a"}},
         "spec": {"hosts": ["cart"]}, "status": {"observedGeneration": 2}}]}
    (tmp_path / "dump.json").write_text(json.dumps(vs_list))
    pods = {"apiVersion": "v1", "kind": "PodList", "items": [
        {"metadata": {"name": "cart-v1-5d9c7b8f4d-abcde", "namespace": "shop",
                      "labels": {"app": "cart", "version": "v1", "pod-template-hash": "5d9c7b8f4d"},
                      "ownerReferences": [{"kind": "ReplicaSet", "name": "cart-v1-5d9c7b8f4d"}]},
         "spec": {"containers": [{"name": "cart"}, {"name": "istio-proxy"}]},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}]}
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "pods.yml").write_text("---\n" + json.dumps(pods) + "\n---\n# empty doc\n")
    (sub / "notes.txt").write_text("ignored: not a manifest suffix")
    part = _load([tmp_path], "live")
    assert part.sources[0].state is SourceState.OK
    [vs] = part.config
    assert vs.namespace == "shop" and vs.annotations == {"team": "a"} and "status" not in vs.spec
    [pod] = part.pods
    assert pod.workload == WorkloadRef("shop", "cart-v1") and pod.has_sidecar and pod.ready


def test_missing_path_and_bad_yaml(tmp_path: Path) -> None:
    raw = manifests.read_manifest_tree([str(tmp_path / "nowhere")])
    assert raw.error and str(tmp_path / "nowhere") in raw.error
    (tmp_path / "bad.yaml").write_text("kind: VirtualService\nmetadata: {name: [unclosed\n")
    (tmp_path / "good.yaml").write_text("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                                        "metadata: {name: default, namespace: istio-system}\n"
                                        "spec: {mtls: {mode: STRICT}}\n")
    part = _load([tmp_path])
    [st] = part.sources
    assert st.state is SourceState.ERROR and "bad.yaml" in st.message and "line" in st.message
    assert [c.name for c in part.config] == ["default"]  # the good file still counts


def test_from_config() -> None:
    assert manifests.from_config(validate({"sources": {"kubernetes": {"context": "x"}}}), []) is None
    c = manifests.from_config(validate({"sources": {"kubernetes": {"manifests": ["a", "b"]}}}), [])
    assert c is not None and c.paths == ["a", "b"] and c.layer == "live"


def test_topology_from_manifests_keeps_what_the_workload_analyzers_read() -> None:
    """A gateway template's ``image: auto``, an ExternalName, a Namespace's labels, and the file
    and line of each Service, workload and Namespace (analyzer findings on them name it)."""
    from tests.support.manifests import manifests_snapshot

    text = ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: edge\n  labels: {istio.io/rev: 1-24}\n---\n"
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ingress, namespace: edge}\nspec:\n"
            "  selector: {matchLabels: {istio: ingress}}\n  template:\n"
            "    metadata: {labels: {istio: ingress, sidecar.istio.io/inject: 'true'}}\n"
            "    spec:\n      containers:\n      - {name: istio-proxy, image: auto}\n---\n"
            "apiVersion: v1\nkind: Service\nmetadata: {name: fx, namespace: edge}\n"
            "spec:\n  type: ExternalName\n  externalName: fx.example.com\n  ports: [{name: tcp, port: 443}]\n")
    snap = manifests_snapshot({"edge.yaml": text})
    [ns] = snap.config_of("Namespace")
    assert (ns.name, dict(ns.labels), ns.location and ns.location.line) == ("edge", {"istio.io/rev": "1-24"}, 1)
    [w] = snap.workloads
    assert (w.proxy_image, w.location and (w.location.file, w.location.line)) == ("auto", ("edge.yaml", 7))
    fx = next(s for s in snap.services if s.name == "fx")
    assert fx.external_name == "fx.example.com" and fx.location and fx.location.line_of("spec.ports[0]") == 24
