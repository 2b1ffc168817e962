"""Intended (Git manifests) vs live: manifests-as-live and the Kubernetes API (fake API server)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meshobs.assemble import assemble
from meshobs.collectors import kubernetes as kube
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.manifests import normalize as normalize_manifests
from meshobs.collectors.manifests import read_manifest_tree
from meshobs.config import Config
from meshobs.drift.compare import INTENDED_LIVE, Drift, Severity, compare_resources
from meshobs.drift.ignore import rules_from_config
from meshobs.drift.normalise import canonical
from meshobs.drift.run import check, intended_from_paths
from meshobs.model import ConfigResource, Layer, Mesh, MeshSnapshot, SnapshotPart, freeze
from tests.support.fake_kube import FakeKube, custom_list, k8s_list
from tests.test_drift_data import HOST, NS, live_docs, write_intended, write_live

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TOKEN = "drift-token"


def _resources(path: Path, layer: str) -> list[ConfigResource]:
    part = normalize_manifests(read_manifest_tree([str(path)], layer), NormalizeContext(T, 300))
    return part.config


def _manifest_snapshot(live_dir: Path) -> MeshSnapshot:
    part = normalize_manifests(read_manifest_tree([str(live_dir)], "live"), NormalizeContext(T, 300))
    return assemble(part, time=T, window_s=300)


def _pairs(drifts: list[Drift]) -> set[tuple[str, str, str]]:
    return {(d.resource.name, d.resource.kind, d.path) for d in drifts}


def _intended_live(tmp_path: Path, edit: str | None) -> list[Drift]:
    intended, state = intended_from_paths([str(write_intended(tmp_path / "git"))], T)
    assert state.available and state.count == 3
    run = check(intended, state, _manifest_snapshot(write_live(tmp_path / "live", edit)),
                rules=rules_from_config([]), now=T)
    assert run.checked == [INTENDED_LIVE] and run.complete
    return run.active


def test_no_drift_with_defaults_reordering_and_server_fields(tmp_path: Path) -> None:
    assert _intended_live(tmp_path, None) == []


def test_canonical_fills_istio_defaults(tmp_path: Path) -> None:
    [vs] = [r for r in _resources(write_intended(tmp_path), "intended")
            if r.name == "reviews" and r.kind == "VirtualService"]
    spec = canonical(vs)["spec"]
    assert spec["hosts"] == [HOST]
    assert spec["http"][1]["route"] == {f"{HOST}|v1": {"weight": 100}}
    assert spec["http"][1]["retries"]["attempts"] == 2 and "timeout" not in spec["http"][1]
    assert spec["http"][0]["timeout"] == 5.0 and spec["http"][0]["retries"]["perTryTimeout"] == 2.0
    assert spec["http"][0]["retries"]["retryOn"] == "5xx,connect-failure"


@pytest.mark.parametrize(("edit", "path", "left", "right", "severity"), [
    ("weight", f"spec.http[0].route[{HOST}|v1].weight", 90, 50, Severity.ERROR),
    ("retries", "spec.http[0].retries.attempts", 3, 5, Severity.WARNING),
    ("timeout", "spec.http[0].timeout", 5.0, 30.0, Severity.WARNING),
    ("removed-subset", "spec.subsets[v3]", {"labels": {"version": "v3"}}, None, Severity.ERROR),
    ("label", "labels.team", "books", "ops", Severity.WARNING),
])
def test_one_edit_is_one_difference(tmp_path: Path, edit: str, path: str, left: Any, right: Any,
                                    severity: Severity) -> None:
    drifts = _intended_live(tmp_path, edit)
    found = [d for d in drifts if d.path == path]
    assert len(found) == 1, [(d.resource, d.path) for d in drifts]
    [d] = found
    assert (d.left, d.right, d.severity, d.layers, d.resource.namespace) == (left, right, severity, INTENDED_LIVE, NS)
    # A weight edit moves both destinations; any other edit is exactly one difference.
    assert len(drifts) == (2 if edit == "weight" else 1)


def test_live_only_and_intended_only(tmp_path: Path) -> None:
    [live_only] = _intended_live(tmp_path / "a", "live-only")
    assert (live_only.resource.name, live_only.presence, live_only.severity) == ("hotfix", "live-only",
                                                                                 Severity.WARNING)
    [never_applied] = _intended_live(tmp_path / "b", "intended-only")
    assert (never_applied.resource.name, never_applied.presence, never_applied.severity) == (
        "ratings", "intended-only", Severity.ERROR)


def test_live_only_is_scoped_to_the_namespaces_of_the_intended_tree() -> None:
    other = ConfigResource("VirtualService", "payments", "x", freeze({"hosts": ["x"]}), Layer.LIVE,
                           mesh=Mesh.ISTIO)
    assert compare_resources([], [other], INTENDED_LIVE, right_scope={NS}) == []
    assert len(compare_resources([], [other], INTENDED_LIVE, right_scope=None)) == 1


def test_ignore_rule_marks_drift_with_its_reason(tmp_path: Path) -> None:
    intended, state = intended_from_paths([str(write_intended(tmp_path / "git"))], T)
    rules = rules_from_config([{"kind": "VirtualService", "path": "labels.team",
                                "reason": "the team label is set by the org controller"}])
    run = check(intended, state, _manifest_snapshot(write_live(tmp_path / "live", "label")), rules=rules, now=T)
    assert run.active == []
    [ignored] = run.ignored
    assert ignored.path == "labels.team" and ignored.ignored == "the team label is set by the org controller"


def test_ignore_rule_without_reason_is_a_config_error() -> None:
    from meshobs.config import ConfigError

    with pytest.raises(ConfigError):
        rules_from_config([{"path": "labels.team"}])
    with pytest.raises(ConfigError):
        rules_from_config([{"reason": "matches everything"}])


# -- the Kubernetes API path ------------------------------------------------------------------

def _serve(fk: FakeKube, docs: list[dict[str, Any]]) -> None:
    for path, kind in (("/api/v1/pods", "PodList"), ("/api/v1/services", "ServiceList"),
                       ("/api/v1/namespaces", "NamespaceList")):
        fk.serve(path, k8s_list(kind, []))
    fk.serve("/apis/apps/v1/deployments", k8s_list("DeploymentList", [], "apps/v1"))
    for kind, plural in (("VirtualService", "virtualservices"), ("DestinationRule", "destinationrules")):
        items = [d for d in docs if d["kind"] == kind]
        fk.serve(f"/apis/networking.istio.io/v1/{plural}", custom_list(items, kind, NET_V1))


NET_V1 = "networking.istio.io/v1"


def _api_snapshot(kubeconfig: Path) -> MeshSnapshot:
    collector = kube.KubernetesCollector(kubeconfig=str(kubeconfig), context="fake", timeout_s=3)
    [raw] = collector.fetch(FetchContext(T, 300, Config()))
    part = SnapshotPart.merge([kube.normalize(raw, NormalizeContext(T, 300))])
    return assemble(part, time=T, window_s=300)


@pytest.mark.parametrize("edit", [None, "weight", "removed-subset", "live-only", "intended-only"])
def test_intended_vs_kubernetes_api(tmp_path: Path, edit: str | None) -> None:
    with FakeKube(token=TOKEN) as fk:
        _serve(fk, live_docs(edit))
        snapshot = _api_snapshot(fk.write_kubeconfig(tmp_path))
    intended, state = intended_from_paths([str(write_intended(tmp_path / "git"))], T)
    run = check(intended, state, snapshot, rules=rules_from_config([]), now=T)
    assert run.layers["live"].available and run.layers["live"].count == (4 if edit == "live-only" else
                                                                         2 if edit == "intended-only" else 3)
    expected = {
        None: set(),
        "weight": {("reviews", "VirtualService", f"spec.http[0].route[{HOST}|v1].weight"),
                   ("reviews", "VirtualService", f"spec.http[0].route[{HOST}|v2].weight")},
        "removed-subset": {("reviews", "DestinationRule", "spec.subsets[v3]")},
        "live-only": {("hotfix", "VirtualService", "")},
        "intended-only": {("ratings", "VirtualService", "")},
    }[edit]
    assert _pairs(run.active) == expected


def test_unreachable_api_means_could_not_check(tmp_path: Path) -> None:
    fk = FakeKube(token=TOKEN)  # never started
    kubeconfig = fk.write_kubeconfig(tmp_path, server="http://127.0.0.1:9")
    snapshot = _api_snapshot(kubeconfig)
    intended, state = intended_from_paths([str(write_intended(tmp_path / "git"))], T)
    run = check(intended, state, snapshot, rules=rules_from_config([]), now=T)
    assert run.checked == [] and not run.complete and run.problems
    assert not run.layers["live"].available


def test_appmesh_crds_with_webhook_defaults_do_not_drift(corpus: Path, tmp_path: Path) -> None:
    """App Mesh CRDs (a real example manifest) against the same objects as the API returns them
    after the appmesh-controller's webhook: awsName and meshRef (with uid) filled in."""
    import copy

    import yaml

    src = corpus / "appmesh-config/aws-app-mesh-examples/djapp__meshed_app.yaml"
    docs = [d for d in yaml.safe_load_all(src.read_text()) if d]
    live = []
    for d in copy.deepcopy(docs):
        if d["apiVersion"].startswith("appmesh.k8s.aws/") and d["kind"] != "Mesh":
            ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
            d["spec"].setdefault("awsName", f"{name}_{ns}")
            d["spec"]["meshRef"] = {"name": "dj-app", "uid": "2f3c-uid"}
        d.setdefault("status", {"conditions": [{"type": "VirtualNodeActive", "status": "True"}]})
        d["metadata"]["resourceVersion"] = "99"
        live.append(d)
    (tmp_path / "git").mkdir()
    (tmp_path / "git" / "app.yaml").write_text(src.read_text())
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "live.yaml").write_text(yaml.safe_dump_all(live))
    intended, state = intended_from_paths([str(tmp_path / "git")], T)
    assert state.available and any(r.kind == "VirtualRouter" for r in intended)
    run = check(intended, state, _manifest_snapshot(tmp_path / "live"), rules=rules_from_config([]), now=T)
    assert run.active == []
    # ... and a weight edited by hand in a router shows up as exactly that.
    for d in live:
        if d["kind"] == "VirtualRouter" and d["metadata"]["name"] == "jazz-router":
            targets = d["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"]
            assert len(targets) >= 1
            targets[0]["weight"] = targets[0].get("weight", 1) + 7
            targets.append({"virtualNodeRef": {"name": "jazz-v9"}, "weight": 3})
    (tmp_path / "live" / "live.yaml").write_text(yaml.safe_dump_all(live))
    run = check(intended, state, _manifest_snapshot(tmp_path / "live"), rules=rules_from_config([]), now=T)
    assert run.active and {d.resource.name for d in run.active} == {"jazz-router"}
    assert all(d.category == "weight" and d.severity is Severity.ERROR for d in run.active)
