"""The typed page decoder (k8s_minimise_typed) is the generic minimiser, only faster.

Every page it accepts must come out byte for byte as ``minimise_document`` makes it (same
values, same key order, same continue token); a page it cannot read exactly must be refused
(None), never read differently. Real pages: every demo and scenario, a generated mesh as
``demo serve`` pages it, and the corpus's Pods, Services and Deployments. Then objects built
from every field either path knows, present, absent, null or of another type: a field kept by
one path and not the other fails here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from meshobs.collectors.k8s_minimise import minimise_document
from meshobs.collectors.k8s_minimise_typed import minimised_page
from meshobs.collectors.k8s_objects import flatten_objects
from meshobs.demo.catalog import list_demos, list_library, scenario_for
from meshobs.demo.kube_paging import ListPager
from meshobs.demo.render_kubernetes import payload_bodies
from meshobs.shape import loads

RESOURCES = ("services", "deployments", "pods")
LISTS = {"services": ("ServiceList", "v1"), "deployments": ("DeploymentList", "apps/v1"), "pods": ("PodList", "v1")}


def _generic(body: bytes) -> tuple[bytes, Any]:
    doc = loads(body)
    token = (doc.get("metadata") or {}).get("continue")
    return msgspec.json.encode(minimise_document(doc)), token


def _same(body: bytes, resource: str, *, accepted: bool = True) -> bool:
    """The typed page equals the generic one (when accepted, which ``accepted`` requires)."""
    typed = minimised_page(body, resource)
    if typed is None:
        assert not accepted, "a real page of the usual shape was refused"
        return False
    assert (msgspec.json.encode(typed[0]), typed[1]) == _generic(body)
    return True


def _scenario_pages(name: str) -> list[tuple[str, bytes]]:
    bodies = payload_bodies(scenario_for(name))
    return [(key, body.encode()) for key, body in bodies.items() if key in RESOURCES]


@pytest.mark.parametrize("name", [n for n, _ in list_demos()] + [n for n, _ in list_library()])
def test_the_pages_of_every_demo_and_scenario(name: str) -> None:
    pages = _scenario_pages(name)
    assert {key for key, _ in pages} >= {"services", "pods"}
    for key, body in pages:
        _same(body, key)


def test_a_generated_mesh_as_demo_serve_pages_it() -> None:
    pager = ListPager()
    seen = 0
    for key, body in _scenario_pages("generated-300"):
        doc = json.loads(body)
        query: dict[str, list[str]] = {"limit": ["37"]}
        while True:
            page = pager.page(doc, f"/{key}", query, selected=False)
            _same(msgspec.json.encode(page), key)
            seen += len(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                break
            query = {"limit": ["37"], "continue": [token]}
    assert seen > 900


def _corpus_objects(corpus: Path) -> dict[str, list[dict[str, Any]]]:
    wanted = {("Service", "v1"): "services", ("Pod", "v1"): "pods", ("Deployment", "apps/v1"): "deployments"}
    found: dict[str, list[dict[str, Any]]] = {r: [] for r in RESOURCES}
    files = sorted((corpus / "istio-config").rglob("*.yaml")) + sorted((corpus / "appmesh-config").rglob("*.y*ml*"))
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except yaml.YAMLError:
            continue
        for obj in (o for d in docs for o in flatten_objects(d)):
            resource = wanted.get((obj.get("kind"), obj.get("apiVersion")))  # type: ignore[arg-type]
            if resource:
                found[resource].append({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})
    # The corpus has no Pods: its Deployments' templates as the pods they make.
    for i, d in enumerate(found["deployments"]):
        template = (d.get("spec") or {}).get("template") or {}
        found["pods"].append({"metadata": {**(template.get("metadata") or {}), "name": f"pod-{i}"},
                              "spec": template.get("spec") or {}, "status": {"phase": "Running"}})
    return found


def _page(resource: str, items: list[Any], token: str | None = None) -> bytes:
    kind, api_version = LISTS[resource]
    meta = {"resourceVersion": "1", **({"continue": token} if token else {})}
    return json.dumps({"kind": kind, "apiVersion": api_version, "metadata": meta, "items": items},
                      default=str).encode()


def test_the_pods_services_and_deployments_of_the_corpus(corpus: Path) -> None:
    found = _corpus_objects(corpus)
    assert all(len(found[r]) >= 5 for r in RESOURCES), {r: len(v) for r, v in found.items()}
    for resource, objects in found.items():
        accepted = sum(_same(_page(resource, [o]), resource, accepted=False) for o in objects)
        assert accepted >= len(objects) * 0.8, (resource, accepted, len(objects))  # the usual shape is read typed
        _same(_page(resource, objects, token="abc"), resource, accepted=False)


# -- every field either path knows, in every form ---------------------------------------------------

_EXTRA = "zz-unknown"
_VALUES: list[Any] = ["v", "", "8080", 8080, 0, True, None, [], {}, ["x"], {"a": "b"}, 1.5,
                      "https://user:hunter2@db.example.test/x?token=s3cr3t", "Bearer abcdef123"]


def _leaf(rng: random.Random) -> Any:
    return rng.choice(_VALUES)


def _strings(rng: random.Random, keys: tuple[str, ...]) -> Any:
    if rng.random() < 0.1:
        return _leaf(rng)
    return {k: rng.choice(["v", "istio", "Bearer tok-1", "", "x" * 5]) if rng.random() < 0.9 else _leaf(rng)
            for k in rng.sample(keys, rng.randint(0, len(keys)))}


_LABELS = ("app", "version", "sidecar.istio.io/inject", "istio.io/rev", "pod-template-hash", "team")
_ANNOTATIONS = ("sidecar.istio.io/status", "kubectl.kubernetes.io/last-applied-configuration",
                "appmesh.k8s.aws/sidecarInjectorWebhook", "prometheus.io/port", "token", "note")


def _obj(rng: random.Random, shape: dict[str, Any], depth: int = 0) -> Any:
    """An object of ``shape`` (field -> sub-shape, "leaf", "strings:labels"...), each field
    present or not, sometimes of the wrong type, plus a field no reader knows."""
    if rng.random() < 0.04:
        return _leaf(rng)
    out: dict[str, Any] = {}
    for key, sub in rng.sample(list(shape.items()), len(shape)):
        if rng.random() < 0.3:
            continue
        if rng.random() < 0.05 or sub == "leaf":
            out[key] = _leaf(rng)
        elif sub == "labels":
            out[key] = _strings(rng, _LABELS)
        elif sub == "annotations":
            out[key] = _strings(rng, _ANNOTATIONS)
        elif isinstance(sub, list):
            out[key] = [_obj(rng, sub[0], depth + 1) for _ in range(rng.randint(0, 3))]
        else:
            out[key] = _obj(rng, sub, depth + 1)
    if rng.random() < 0.5:
        out[_EXTRA] = {"nested": "value"}
    return out


def _leaves(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, "leaf")


# Every field the generic minimiser reads (and more around them), as the API nests them.
_META = {**_leaves("name", "namespace", "generateName", "deletionTimestamp", "uid", "creationTimestamp",
                   "generation", "resourceVersion"),
         "labels": "labels", "annotations": "annotations",
         "ownerReferences": [_leaves("kind", "name", "controller", "uid", "apiVersion", "blockOwnerDeletion")],
         "managedFields": [_leaves("manager", "operation", "time", "fieldsV1")]}
_CONTAINER = {**_leaves("name", "image", "restartPolicy", "args", "command", "imagePullPolicy"),
              "ports": [_leaves("name", "containerPort", "protocol", "hostPort")],
              "env": [_leaves("name", "value", "valueFrom")]}
_POD_SPEC = {**_leaves("serviceAccountName", "serviceAccount", "nodeName", "restartPolicy", "volumes"),
             "containers": [_CONTAINER], "initContainers": [_CONTAINER]}
_STATE = _leaves("startedAt", "reason", "message", "finishedAt", "exitCode")
_STATUS = {**_leaves("phase", "podIP", "startTime", "hostIP", "qosClass", "podIPs"),
           "conditions": [_leaves("type", "status", "lastTransitionTime")],
           "containerStatuses": [{**_leaves("name", "ready", "restartCount", "image", "started"),
                                  "state": {"running": _STATE, "waiting": _STATE, "terminated": _STATE},
                                  "lastState": {"terminated": _STATE, "waiting": _STATE}}]}
_STATUS["initContainerStatuses"] = _STATUS["containerStatuses"]
SHAPES = {
    "services": {"metadata": _META, "spec": {**_leaves("type", "clusterIP", "externalName", "ports", "clusterIPs",
                                                       "sessionAffinity"), "selector": "labels"},
                 "status": _leaves("loadBalancer")},
    "deployments": {"metadata": _META, "spec": {**_leaves("replicas", "selector", "strategy"), "template": {
        "metadata": {"labels": "labels", "annotations": "annotations", "name": "leaf"}, "spec": _POD_SPEC}},
        "status": _leaves("replicas", "readyReplicas")},
    "pods": {"metadata": _META, "spec": _POD_SPEC, "status": _STATUS},
}


@pytest.mark.parametrize("resource", RESOURCES)
def test_objects_with_every_field_either_path_knows(resource: str) -> None:
    rng = random.Random(f"typed-{resource}")
    accepted = 0
    for _ in range(1500):
        items = [_obj(rng, SHAPES[resource]) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.05 and isinstance(items[0], dict):
            items[0] = {**items[0], "kind": LISTS[resource][0][:-4], "apiVersion": LISTS[resource][1]}
        accepted += _same(_page(resource, items, token=rng.choice([None, "tok"])), resource, accepted=False)
    assert accepted >= 150  # enough of them were read typed to compare


def test_pages_of_another_shape_are_refused() -> None:
    service = {"metadata": {"name": "s", "namespace": "n"}, "spec": {"ports": [{"port": 80}]}}
    assert minimised_page(_page("services", [service]), "services") is not None
    for body in (b"not json", b'{"kind":"Status","apiVersion":"v1","status":"Failure"}',
                 json.dumps({"kind": "PodList", "apiVersion": "v1", "items": [service]}).encode(),  # another list
                 _page("services", [{**service, "metadata": {"labels": {"app": 1}}}]),  # a label that is a number
                 _page("services", [{**service, "spec": None}]),
                 _page("services", ["not an object"]),
                 _page("services", [{**service, "kind": "Service", "apiVersion": "v1"}])):
        assert minimised_page(body, "services") is None, body
    assert minimised_page(_page("services", [service]), "configmaps") is None
