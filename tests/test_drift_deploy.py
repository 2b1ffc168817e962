"""config/: the drift CronJob manifests (config/drift/), the crontab example and the IAM policy.

How the CronJob is validated without a cluster or network: every document is checked against
the Kubernetes OpenAPI models that ship with the ``kubernetes`` Python client (generated from the
API server's schema). ``ApiClient().deserialize`` builds the typed object (``V1CronJob`` ...),
whose setters reject missing required fields; as it silently drops unknown keys, a strict walk
first follows each key through the model's ``attribute_map``/``openapi_types`` and fails on any
key the schema does not have (a typo such as ``concurencyPolicy`` or a field at the wrong level).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from meshobs.collectors import kubernetes as kube
from meshobs.config import validate

REPO = Path(__file__).resolve().parents[1]
PRIMITIVE = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object,
             "datetime": str, "date": str}


def strict(data: Any, type_name: str, where: str) -> None:
    """Fail on any key the Kubernetes schema does not define (recursively)."""
    if type_name.startswith("list["):
        assert isinstance(data, list), f"{where}: expected a list"
        for i, item in enumerate(data):
            strict(item, type_name[5:-1], f"{where}[{i}]")
        return
    if type_name.startswith(("dict(", "dict[")):
        assert isinstance(data, dict), f"{where}: expected a mapping"
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, value in data.items():
            strict(value, inner, f"{where}.{key}")
        return
    if type_name in PRIMITIVE:
        assert isinstance(data, PRIMITIVE[type_name]), f"{where}: expected {type_name}, got {data!r}"
        return
    model = getattr(client.models, type_name)
    assert isinstance(data, dict), f"{where}: expected a {type_name} mapping"
    fields = {json_key: attr for attr, json_key in model.attribute_map.items()}
    for key, value in data.items():
        assert key in fields, f"{where}.{key}: not a field of {type_name}"
        strict(value, model.openapi_types[fields[key]], f"{where}.{key}")


class _Response:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.data = json.dumps(doc)


def _model_name(doc: dict[str, Any]) -> str:
    group_version = doc["apiVersion"]
    version = group_version.split("/")[-1]
    return f"{version.capitalize()}{doc['kind']}"


DRIFT = REPO / "config" / "drift"


def _docs(*, examples: bool = False) -> list[dict[str, Any]]:
    """The documents ``kubectl apply -k config/drift/`` applies (and the examples beside them)."""
    files = yaml.safe_load((DRIFT / "kustomization.yaml").read_text())["resources"]
    if examples:
        files += [p.name for p in sorted(DRIFT.glob("*.example.yaml"))]
    return [d for f in files for d in yaml.safe_load_all((DRIFT / f).read_text()) if d]


def test_every_document_validates_against_the_kubernetes_schema() -> None:
    docs = _docs(examples=True)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                            "ConfigMap", "PersistentVolumeClaim", "CronJob", "Secret"])
    api = client.ApiClient()
    for doc in docs:
        name = _model_name(doc)
        strict(doc, name, f"{doc['kind']}/{doc['metadata']['name']}")
        obj = api.deserialize(_Response(doc), name)
        assert type(obj).__name__ == name


def test_strict_check_catches_typos_and_missing_fields() -> None:
    [cron] = [d for d in _docs() if d["kind"] == "CronJob"]
    typo = json.loads(json.dumps(cron))
    typo["spec"]["concurencyPolicy"] = typo["spec"].pop("concurrencyPolicy")
    with pytest.raises(AssertionError):
        strict(typo, "V1CronJob", "cron")
    missing = json.loads(json.dumps(cron))
    del missing["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    with pytest.raises(ValueError):
        client.ApiClient().deserialize(_Response(missing), "V1CronJob")


def test_cron_schedule_and_job_settings() -> None:
    [cron] = [d for d in _docs() if d["kind"] == "CronJob"]
    assert re.fullmatch(r"(\S+ ){4}\S+", cron["spec"]["schedule"])
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "meshobs-drift"
    [container] = pod["containers"]
    assert container["args"][0] == "drift" and "--intended" in container["args"]


def test_cluster_role_is_read_only_and_limited_to_what_meshobs_reads() -> None:
    roles = {d["metadata"]["name"]: d for d in _docs() if d["kind"] == "ClusterRole"}
    read = roles["meshobs-drift-read"]["rules"]
    granted = {(g, r) for rule in read for g in rule["apiGroups"] for r in rule["resources"]}
    assert all(set(rule["verbs"]) <= {"get", "list"} for rule in read)
    wanted = {("", "pods"), ("", "services"), ("", "namespaces"), ("apps", "deployments")}
    wanted |= set(kube.ISTIO_CRDS) | {(kube.APPMESH_GROUP, p) for p in kube.APPMESH_CRDS}
    assert granted == wanted
    assert not any("secrets" in rule["resources"] or "*" in rule["resources"] for rule in read)
    bindings = {d["roleRef"]["name"] for d in _docs() if d["kind"] == "ClusterRoleBinding"}
    assert bindings == set(roles)


def test_no_cluster_role_grants_port_forward() -> None:
    """pods/portforward reaches any port of a pod (and Envoy admin takes POST /quitquitquit):
    it is granted per inspected namespace, never cluster-wide."""
    for doc in _docs(examples=True):
        if doc["kind"] == "ClusterRole":
            assert not any(r.startswith("pods/") or r == "*" for rule in doc["rules"] for r in rule["resources"])


def test_port_forward_is_bound_in_exactly_the_namespaces_envoy_inspects() -> None:
    docs = _docs()
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
    for role in roles.values():
        [rule] = role["rules"]
        assert rule["resources"] == ["pods/portforward"] and set(rule["verbs"]) <= {"get", "create"}
    bound = set()
    for b in (d for d in docs if d["kind"] == "RoleBinding"):
        assert (b["metadata"]["namespace"], b["roleRef"]["name"]) in roles and b["roleRef"]["kind"] == "Role"
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "meshobs-drift", "namespace": "meshobs"}]
        bound.add(b["metadata"]["namespace"])
    [cm] = [d for d in docs if d["kind"] == "ConfigMap"]
    config = validate(yaml.safe_load(cm["data"]["meshobs.yaml"]))
    assert bound and set(config.sources["envoy"]["namespaces"]) == bound


def test_git_sync_reads_its_credentials_from_the_example_secret() -> None:
    [secret] = [d for d in _docs(examples=True) if d["kind"] == "Secret"]
    assert not any(d["kind"] == "Secret" for d in _docs())  # filled in and applied by the user
    [cron] = [d for d in _docs() if d["kind"] == "CronJob"]
    [git_sync] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"]: e["valueFrom"]["secretKeyRef"]["key"]
            for e in git_sync["env"]}
    assert refs and set(refs) == {secret["metadata"]["name"]}
    assert {e["valueFrom"]["secretKeyRef"]["key"] for e in git_sync["env"]} <= set(secret["stringData"])


def test_embedded_meshobs_config_is_valid() -> None:
    [cm] = [d for d in _docs() if d["kind"] == "ConfigMap"]
    config = validate(yaml.safe_load(cm["data"]["meshobs.yaml"]))
    assert config.section("drift")["state_dir"] == "/var/lib/meshobs-drift"


def test_iam_policy_is_least_privilege() -> None:
    policy = json.loads((REPO / "config" / "iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert {"cloudwatch:GetMetricData", "cloudwatch:ListMetrics", "xray:GetServiceGraph",
            "xray:GetTraceSummaries", "xray:BatchGetTraces"} <= actions  # exactly: tests/test_iam_policy.py
    for action in actions:
        service, verb = action.split(":")
        assert service in {"cloudwatch", "xray", "appmesh"}
        assert re.match(r"(Get|List|Describe|BatchGet)", verb), action  # nothing that writes


def test_crontab_example_runs_drift() -> None:
    lines = [ln for ln in (REPO / "config" / "crontab.example").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#") and "=" not in ln.split()[0]]
    assert lines
    for line in lines:
        fields = line.split(None, 5)
        assert len(fields) == 6 and "meshobs drift" in fields[5] and "--state-dir" in fields[5]
