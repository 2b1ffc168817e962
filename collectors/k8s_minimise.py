"""What a bundle keeps of a Kubernetes object: the fields the normalisers read, nothing else.

The API server (and a ``kubectl get -o yaml`` dump) hands over whole objects: container
``env`` values, ``kubectl.kubernetes.io/last-applied-configuration`` (a full copy, Secret data
included when it was applied by hand), ``managedFields``' field sets, ``kind: Secret`` data. None
of it is read by meshobs, all of it ends up in bundles people attach to tickets. Of
``managedFields`` only who wrote, how and when is kept (for mesh resources: "what changed"
reads the times), with ``creationTimestamp`` and ``generation``; of a pod, its start time and
when and why its containers last ended. So the collectors keep,
per kind, only what :mod:`meshobs.collectors.k8s_objects` and the Envoy discovery read, and
drop kinds meshobs does not model (ConfigMaps but Istio's mesh config, RBAC...) entirely. A Secret keeps its public
facts only (type, key names, certificate subjects and validity: :mod:`k8s_secrets`), never its
data. Mesh resources keep their whole ``spec`` (drift compares all of it) with
credential-looking values masked.

Redaction by construction: a field is in a bundle because a reader needs it. A test replays the
real payloads both ways and checks the model is the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from meshobs.collectors.k8s_meshconfig import is_mesh_configmap
from meshobs.collectors.k8s_meshconfig import minimise as minimise_mesh_config
from meshobs.collectors.k8s_objects import WORKLOAD_KINDS, mesh_of_api_version
from meshobs.collectors.k8s_secrets import PUBLIC_FACTS, public_facts
from meshobs.redact import redact_text, redact_values, scrub_data, scrub_entry

# Annotations that are server bookkeeping or whole copies of the object (never kept).
DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration",
                                 "deployment.kubernetes.io/revision"})
# Pod-template annotations the readers use: sidecar injection and App Mesh settings.
_POD_ANNOTATION_MARKS = ("istio.io/", "appmesh.k8s.aws/")
# The one environment value a reader uses: App Mesh's Envoy admin port (discovery).
_KEPT_ENV = frozenset({"ENVOY_ADMIN_ACCESS_PORT"})

# The fields kept whole, per part of an object, in the order they are written. The typed page
# decoder (k8s_minimise_typed) declares its structs from these very tuples: one list per part.
METADATA_KEPT = ("name", "namespace", "generateName", "deletionTimestamp")
OWNER_KEPT = ("kind", "name", "controller")
POD_SPEC_KEPT = ("serviceAccountName", "serviceAccount", "nodeName")
CONTAINER_KEPT = ("name", "image", "restartPolicy")
CONTAINER_PORT_KEPT = ("name", "containerPort", "protocol")
CONTAINER_STATUS_KEPT = ("name", "ready", "restartCount")
STATE_KEPT = ("startedAt", "reason")  # of a container's running or waiting state
TERMINATED_KEPT = ("finishedAt", "reason", "exitCode")  # of its last run
POD_STATUS_KEPT = ("phase", "podIP", "startTime")
CONDITION_KEPT = ("type", "status")
WORKLOAD_SPEC_KEPT = ("replicas", "selector")
SERVICE_SPEC_KEPT = ("type", "clusterIP", "externalName", "ports")


def _map(value: Any) -> Mapping[str, Any]:
    return value if value.__class__ is dict or isinstance(value, Mapping) else {}  # a dict: no ABC check


def _list(value: Any) -> list[Any]:
    return list(value) if value.__class__ is list or isinstance(value, list | tuple) else []


def pick(obj: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: obj[k] for k in keys if k in obj}


def strings(value: Any) -> dict[str, str]:
    """Labels and selectors: string values, credentials inside them masked."""
    return redact_values(_map(value))


def terminated_kept(last: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of a container's last termination: when, why, with which exit code."""
    return pick(last, *TERMINATED_KEPT)


def kept_env(name: Any, value: Any) -> bool:
    """Is this container environment variable one a reader uses (with a port number)? (A name
    that is not a string is not one: it used to raise, costing the whole list.)"""
    return isinstance(name, str) and name in _KEPT_ENV and str(value).isdigit()


def annotations_kept(value: Any, *, pod: bool) -> dict[str, str]:
    out = {}
    for k, v in _map(value).items():
        key = str(k)
        if key in DROPPED_ANNOTATIONS or (pod and not any(m in key for m in _POD_ANNOTATION_MARKS)):
            continue
        out[key] = scrub_entry(key, str(v))
    return out


def _writes(value: Any) -> list[dict[str, Any]]:
    """managedFields without ``fieldsV1``: who wrote the object, how and when (the fields they
    own can carry values; the times are what "what changed" reads)."""
    return [pick(_map(e), "manager", "operation", "time") for e in _list(value) if _map(e).get("time")]


def _metadata(obj: Mapping[str, Any], *, pod: bool = False, dated: bool = False) -> dict[str, Any]:
    meta = _map(obj.get("metadata"))
    out = pick(meta, *METADATA_KEPT)
    if dated:
        out.update(pick(meta, "creationTimestamp", "generation"))
        writes = _writes(meta.get("managedFields"))
        if writes:
            out["managedFields"] = writes
    if "labels" in meta:
        out["labels"] = strings(meta["labels"])
    annotations = annotations_kept(meta.get("annotations"), pod=pod)
    if annotations:
        out["annotations"] = annotations
    owners = [pick(_map(o), *OWNER_KEPT) for o in _list(meta.get("ownerReferences"))]
    if owners:
        out["ownerReferences"] = owners
    return out


def _container(c: Any) -> dict[str, Any]:
    c = _map(c)
    out = pick(c, *CONTAINER_KEPT)
    ports = [pick(_map(p), *CONTAINER_PORT_KEPT) for p in _list(c.get("ports"))]
    if ports:
        out["ports"] = ports
    env = [{"name": e["name"], "value": e["value"]} for e in map(_map, _list(c.get("env")))
           if kept_env(e.get("name"), e.get("value", ""))]
    if env:
        out["env"] = env
    return out


def _pod_spec(spec: Any) -> dict[str, Any]:
    spec = _map(spec)
    out = pick(spec, *POD_SPEC_KEPT)
    for key in ("containers", "initContainers"):
        if key in spec:
            out[key] = [_container(c) for c in _list(spec[key])]
    return out


def _container_status(s: Any) -> dict[str, Any]:
    """Readiness and restarts, with when and how the last run ended (restarts are judged by
    how recent they are) and why a container waits (CrashLoopBackOff)."""
    s = _map(s)
    out = pick(s, *CONTAINER_STATUS_KEPT)
    state = _map(s.get("state"))
    kept_state = {k: pick(_map(state[k]), *STATE_KEPT) for k in ("running", "waiting") if k in state}
    if kept_state:
        out["state"] = kept_state
    last = _map(_map(s.get("lastState")).get("terminated"))
    if last:
        out["lastState"] = {"terminated": terminated_kept(last)}
    return out


def _pod_status(status: Any) -> dict[str, Any]:
    status = _map(status)
    out = pick(status, *POD_STATUS_KEPT)
    if "conditions" in status:
        out["conditions"] = [pick(_map(c), *CONDITION_KEPT) for c in _list(status["conditions"])]
    for key in ("containerStatuses", "initContainerStatuses"):
        if key in status:
            out[key] = [_container_status(s) for s in _list(status[key])]
    return out


INJECTOR = "sidecar-injector.istio.io"  # the webhook names meshobs.collectors.k8s_webhooks reads


def _webhook(w: Any) -> dict[str, Any]:
    w = _map(w)
    out = pick(w, "name", "failurePolicy", "namespaceSelector", "objectSelector")
    client = _map(w.get("clientConfig"))
    kept: dict[str, Any] = {}
    if "service" in client:
        kept["service"] = pick(_map(client["service"]), "name", "namespace", "path", "port")
    if "url" in client:
        kept["url"] = redact_text(str(client["url"]))
    if kept:
        out["clientConfig"] = kept
    return out


def minimise_object(obj: Any) -> dict[str, Any] | None:
    """The readable part of one object, or None for a kind no reader uses.

    Raises ValueError for a mesh resource too large to scrub (an alias bomb).
    """
    if not isinstance(obj, Mapping):
        return None
    kind, api_version = str(obj.get("kind", "")), str(obj.get("apiVersion", ""))
    head: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind")}
    if kind == "Namespace" and api_version == "v1":
        return {**head, "metadata": _metadata(obj)}
    if kind == "Pod" and api_version == "v1":
        return {**head, "metadata": _metadata(obj, pod=True), "spec": _pod_spec(obj.get("spec")),
                "status": _pod_status(obj.get("status"))}
    if kind in WORKLOAD_KINDS and api_version.startswith("apps/"):
        spec = _map(obj.get("spec"))
        template = _map(spec.get("template"))
        kept_spec = pick(spec, *WORKLOAD_SPEC_KEPT)
        if "template" in spec:
            tmeta = _map(template.get("metadata"))
            kept_template: dict[str, Any] = {"metadata": {}}
            if "labels" in tmeta:
                kept_template["metadata"]["labels"] = strings(tmeta["labels"])
            annotations = annotations_kept(tmeta.get("annotations"), pod=True)
            if annotations:
                kept_template["metadata"]["annotations"] = annotations
            kept_template["spec"] = _pod_spec(template.get("spec"))
            kept_spec["template"] = kept_template
        return {**head, "metadata": _metadata(obj), "spec": kept_spec}
    if kind == "Service" and api_version == "v1":
        spec = _map(obj.get("spec"))
        kept = pick(spec, *SERVICE_SPEC_KEPT)
        if "selector" in spec:
            kept["selector"] = strings(spec["selector"])
        return {**head, "metadata": _metadata(obj), "spec": kept}
    if kind == "ConfigMap" and is_mesh_configmap(obj):
        # Istio's mesh config: only the fields the checks read (k8s_meshconfig.KEPT).
        return minimise_mesh_config(obj)
    if kind == "MutatingWebhookConfiguration" and api_version.startswith("admissionregistration.k8s.io/"):
        # Istio's sidecar injector webhooks: whom they serve and what they call, never the caBundle.
        return {**head, "metadata": _metadata(obj), "webhooks": [_webhook(w) for w in _list(obj.get("webhooks"))
                                                                 if str(_map(w).get("name", "")).endswith(INJECTOR)]}
    if kind == "Secret" and api_version == "v1":
        # Never its data: its type, key names and certificates' public facts, the form the
        # Secret reader (k8s_secrets) reads back to the same model.
        return {**head, "metadata": _metadata(obj), PUBLIC_FACTS: public_facts(obj)}
    if mesh_of_api_version(api_version) is not None:
        out = {**head, "metadata": _metadata(obj, dated=True)}
        if "spec" in obj:
            out["spec"] = scrub_data(obj["spec"])
        return out
    return None


def minimise_document(doc: Any) -> Any:
    """A list (``kind: List`` or a typed ``PodList``) or a single object, minimised.

    Typed lists omit kind/apiVersion on their items; the item kind comes from the list's.
    """
    if not isinstance(doc, Mapping):
        return doc
    kind = str(doc.get("kind", ""))
    if kind.endswith("List") and isinstance(doc.get("items"), list):
        item_kind = kind[:-4]
        items = []
        for item in doc["items"]:
            if not isinstance(item, Mapping):
                continue
            if item_kind and "kind" not in item:
                item = {**item, "kind": item_kind, "apiVersion": doc.get("apiVersion", "v1")}
            kept = minimise_document(item)
            if kept is not None:
                items.append(kept)
        return {"apiVersion": doc.get("apiVersion"), "kind": kind, "items": items}
    return minimise_object(doc)


def minimise_body(body: str) -> str:
    """An API list body as JSON, minimised; a body that is not JSON is returned unchanged (the
    normaliser reports it), one that is too large to scrub raises ValueError."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(doc, Mapping) or doc.get("kind") == "Status":
        return body  # an error Status: its message is what the person needs
    return json.dumps(minimise_document(doc), separators=(",", ":"))
