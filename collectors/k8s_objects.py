"""Kubernetes objects (as the API or a manifest file shows them) -> the meshobs model.

Shared by the Kubernetes collector (live lists) and the manifests collector (YAML files), so a
Pod, a Service or a VirtualService means the same thing whichever way it arrived.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

from meshobs.collectors.config_shapes import check_spec
from meshobs.collectors.k8s_meshconfig import is_mesh_configmap, mesh_config_resource
from meshobs.images import node_proxy_image
from meshobs.model import (
    ConfigResource,
    ContainerRestarts,
    Layer,
    Mesh,
    ObjectDates,
    Pod,
    Service,
    ServicePort,
    ServiceRef,
    SnapshotPart,
    SourceLocation,
    Workload,
    WorkloadRef,
    Write,
    freeze,
    frozen_map,
    frozen_strings,
)
from meshobs.model.frozen import EMPTY, FrozenDict
from meshobs.raw import parse_iso
from meshobs.shape import ITEM_ERRORS

ISTIO_SIDECAR = "istio-proxy"
APPMESH_SIDECAR = "envoy"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# Kinds without a namespace (a manifest may omit it; it must not become "default").
CLUSTER_SCOPED = {"Namespace", "Mesh", "ClusterRole", "ClusterRoleBinding", "Node",
                  "CustomResourceDefinition", "MutatingWebhookConfiguration",
                  "ValidatingWebhookConfiguration", "PersistentVolume", "StorageClass"}
# Labels the controllers add per pod/revision: they would make identical workloads differ.
_VOLATILE_LABELS = {"pod-template-hash", "controller-revision-hash", "pod-template-generation",
                    "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index"}
# Annotations that are server bookkeeping or whole copies of the object.
_DROP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration",
                     "deployment.kubernetes.io/revision"}
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
# Its Gateway shares a kind name with Istio's; the model calls it by Istio's internal name.
KUBERNETES_GATEWAY = "KubernetesGateway"
# Annotations of pods and pod templates the model keeps: the meshes' own.
_MESH_ANNOTATION_MARKS = ("istio.io/", "appmesh.k8s.aws/")
_APP_LABELS = ("app", "service.istio.io/canonical-name", "app.kubernetes.io/name")
_VERSION_LABELS = ("version", "service.istio.io/canonical-revision", "app.kubernetes.io/version")


# The origin of the Namespaces the live cluster-wide list returned (the checks read it without
# loading the HTTP half of the Kubernetes collector).
ALL_NAMESPACES = "kubernetes:all-namespaces"


def mesh_of_api_version(api_version: str) -> Mesh | None:
    """The mesh a custom resource belongs to, from its API group; None for other resources."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    if group.endswith("istio.io"):
        return Mesh.ISTIO
    if group == "appmesh.k8s.aws":
        return Mesh.APPMESH
    if group == GATEWAY_API_GROUP:
        return Mesh.ISTIO  # the Kubernetes Gateway API: Istio implements it (App Mesh does not)
    return None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if meta.__class__ is dict or isinstance(meta, Mapping) else {}


def _time(value: Any) -> datetime | None:
    """An RFC 3339 time as the API server writes it; None when absent or unreadable (dates are
    extra facts: a bad one costs the date, not the object)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def object_dates(obj: Mapping[str, Any]) -> ObjectDates | None:
    """``creationTimestamp``, ``generation`` and the managedFields' times, managers and
    operations (never their field values); None when the object carries none of them (a file
    written by hand)."""
    meta = _meta(obj)
    writes = []
    for entry in meta.get("managedFields") or ():
        if isinstance(entry, Mapping) and (t := _time(entry.get("time"))) is not None:
            writes.append(Write(t, str(entry.get("manager") or ""), str(entry.get("operation") or "")))
    generation = meta.get("generation")
    created = _time(meta.get("creationTimestamp"))
    gen = int(generation) if isinstance(generation, int) and not isinstance(generation, bool) else None
    if created is None and gen is None and not writes:
        return None
    return ObjectDates(created, gen, tuple(sorted(writes, key=lambda w: w.time)))


def _str_map(value: Any) -> dict[str, str]:
    if value is None:  # the usual absent field: not worth Mapping's slow instance check
        return {}
    if value.__class__ is not dict and not isinstance(value, Mapping):
        return {}
    return {k if k.__class__ is str else str(k): v if v.__class__ is str else str(v) for k, v in value.items()}


def namespace_of(obj: Mapping[str, Any], default: str = "default") -> str:
    if str(obj.get("kind", "")) in CLUSTER_SCOPED:
        return ""
    return str(_meta(obj).get("namespace") or default)


def kept_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in _str_map(_meta(obj).get("annotations")).items() if k not in _DROP_ANNOTATIONS}


def mesh_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """The mesh annotations (``sidecar.istio.io/inject``, ``appmesh.k8s.aws/...``) of a pod."""
    return {k: v for k, v in annotations.items() if any(m in k for m in _MESH_ANNOTATION_MARKS)}


def first_label(labels: Mapping[str, str], keys: Iterable[str]) -> str | None:
    for k in keys:
        if labels.get(k):
            return labels[k]
    return None


_SECOND = itemgetter(1)


def flatten_objects(doc: Any) -> Iterator[Mapping[str, Any]]:
    """The objects in one document: ``kind: List`` and typed ``*List`` documents hold theirs
    under ``items`` (the API's typed lists omit kind/apiVersion on the items)."""
    return map(_SECOND, _flatten(doc, None))  # no Python frame per object


def flatten_with_paths(doc: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """:func:`flatten_objects` with each object's path in the document (``""``, ``items[3]``),
    so a manifest reader can find its line."""
    for where, obj in _flatten(doc, path):
        yield where or "", obj


def _flatten(doc: Any, path: str | None) -> Iterator[tuple[str | None, Mapping[str, Any]]]:
    """The one walk of both: (path, object), the path None when not asked for (no string made
    per item). An item that is no List itself is yielded here, without a generator of its own:
    a live list's items (12,400 Services and Deployments at 5,000 services) rarely are."""
    if doc.__class__ is not dict and not isinstance(doc, Mapping):
        return
    kind = str(doc.get("kind", ""))
    items = doc.get("items")
    if not (kind.endswith("List") and isinstance(items, list)):
        yield path, doc
        return
    item_kind = kind[:-4]
    for i, item in enumerate(items):
        if item.__class__ is not dict and not isinstance(item, Mapping):
            continue
        if item_kind and "kind" not in item:
            item = {**item, "kind": item_kind, "apiVersion": doc.get("apiVersion", "v1")}
        where = None if path is None else f"{path}.items[{i}]" if path else f"items[{i}]"
        inner = item.get("kind", "")
        if inner.__class__ is str and not inner.endswith("List"):
            yield where, item
        else:
            yield from _flatten(item, where)


# -- pods ------------------------------------------------------------------------------------

def _is_appmesh(annotations: Mapping[str, str], containers: Iterable[Mapping[str, Any]]) -> bool:
    if any(k.startswith("appmesh.k8s.aws/") for k in annotations):
        return True
    return any(c.get("name") == APPMESH_SIDECAR and "appmesh" in str(c.get("image", "")) for c in containers)


def sidecar_of(spec: Mapping[str, Any], annotations: Mapping[str, str]) -> tuple[str | None, Mesh, bool]:
    """The sidecar container name of a pod spec, the mesh it implies, and whether the pod is
    ambient's node proxy instead (no sidecar, Istio's data plane: :func:`node_proxy_image`).

    Istio's native-sidecar mode puts ``istio-proxy`` among the init containers with
    ``restartPolicy: Always``; App Mesh injects a container called ``envoy``.
    """
    containers = [c for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    inits = [c for c in spec.get("initContainers") or [] if isinstance(c, Mapping)]
    names = {c.get("name") for c in containers}
    if ISTIO_SIDECAR in names:
        for c in containers:  # a loop, not next(generator): every sidecar pod of the mesh comes here
            if c.get("name") == ISTIO_SIDECAR:
                if node_proxy_image(c.get("image")):
                    return None, Mesh.ISTIO, True
                break
        return ISTIO_SIDECAR, Mesh.ISTIO, False
    if any(c.get("name") == ISTIO_SIDECAR and c.get("restartPolicy") == "Always" for c in inits):
        return ISTIO_SIDECAR, Mesh.ISTIO, False
    if APPMESH_SIDECAR in names and _is_appmesh(annotations, containers):
        return APPMESH_SIDECAR, Mesh.APPMESH, False
    return None, Mesh.UNKNOWN, False


def proxy_image_of(spec: Mapping[str, Any], container: str | None) -> str | None:
    """The image of the proxy container (the sidecar's, or the node proxy's own ``istio-proxy``;
    ``auto`` in a gateway template: the injector fills it in); None without one."""
    if container is None:
        return None
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if isinstance(c, Mapping) and c.get("name") == container and c.get("image"):
            return str(c["image"])
    return None


def _owner_workload(meta: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        if kind == "ReplicaSet" and name:
            hash_ = labels.get("pod-template-hash")
            if hash_ and name.endswith("-" + hash_):
                return name[: -len(hash_) - 1]
            return name.rsplit("-", 1)[0] if "-" in name else name
        if kind in ("StatefulSet", "DaemonSet", "Job", "Deployment") and name:
            return name
    return first_label(labels, _APP_LABELS)


def injection_expected(ns_labels: Mapping[str, str], pod_labels: Mapping[str, str],
                       annotations: Mapping[str, str]) -> bool | None:
    """Whether Istio's injector should have added a sidecar (None when nothing says)."""
    pod_flag = pod_labels.get("sidecar.istio.io/inject") or annotations.get("sidecar.istio.io/inject")
    if pod_flag is not None:
        return pod_flag.lower() == "true"
    if ns_labels.get("istio-injection") is not None:
        return ns_labels["istio-injection"] == "enabled"
    if ns_labels.get("istio.io/rev") or pod_labels.get("istio.io/rev"):
        return True
    return None


DATAPLANE_MODE = "istio.io/dataplane-mode"


def ambient_mode(ns_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
    """Does Istio put a pod without a sidecar on the ambient data plane? The pod's own
    ``istio.io/dataplane-mode`` decides (``none`` opts out), else its namespace's."""
    mode = pod_labels.get(DATAPLANE_MODE) or ns_labels.get(DATAPLANE_MODE)
    return mode == "ambient"


def _appmesh_namespace(ns_labels: Mapping[str, str]) -> bool:
    return ns_labels.get("appmesh.k8s.aws/sidecarInjectorWebhook") == "enabled"


def restart_history(statuses: Iterable[Mapping[str, Any]], sidecar: str | None) -> tuple[ContainerRestarts, ...]:
    """The containers that restarted or wait to (CrashLoopBackOff), with when: the previous
    run's ``lastState.terminated.finishedAt``, else the current run's ``startedAt`` (the
    restart that began it)."""
    out: list[ContainerRestarts] = []
    for s in statuses:
        count = int(s.get("restartCount") or 0)
        state, last = s.get("state") or {}, (s.get("lastState") or {}).get("terminated") or {}
        waiting = (state.get("waiting") or {}).get("reason") if isinstance(state, Mapping) else None
        if count <= 0 and not waiting:
            continue
        running = (state.get("running") or {}) if isinstance(state, Mapping) else {}
        exit_code = last.get("exitCode")
        out.append(ContainerRestarts(
            container=str(s.get("name") or ""), count=count,
            last_at=_time(last.get("finishedAt")) or _time(running.get("startedAt")),
            reason=str(last["reason"]) if last.get("reason") else None,
            exit_code=int(exit_code) if isinstance(exit_code, int) else None,
            waiting=str(waiting) if waiting else None, sidecar=s.get("name") == sidecar))
    return tuple(out)


def pod_from_object(obj: Mapping[str, Any], ns_labels: Mapping[str, Mapping[str, str]],
                    location: SourceLocation | None = None) -> tuple[Pod, Mesh]:
    """One Pod object -> (Pod, the mesh its sidecar or injection labels point to)."""
    meta, spec = _meta(obj), obj.get("spec") or {}
    status = obj.get("status") or {}
    ns = str(meta.get("namespace") or "default")
    labels, annotations = _str_map(meta.get("labels")), _str_map(meta.get("annotations"))
    sidecar, mesh, node_proxy = sidecar_of(spec, annotations)
    expected = injection_expected(ns_labels.get(ns, {}), labels, annotations)
    if mesh is Mesh.UNKNOWN and expected:
        mesh = Mesh.ISTIO
    elif mesh is Mesh.UNKNOWN and _appmesh_namespace(ns_labels.get(ns, {})):
        mesh = Mesh.APPMESH
    statuses = [s for s in (status.get("containerStatuses") or []) if isinstance(s, Mapping)]
    init_statuses = [s for s in (status.get("initContainerStatuses") or []) if isinstance(s, Mapping)]
    sidecar_status = next((s for s in statuses + init_statuses if s.get("name") == sidecar), None)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [] if isinstance(c, Mapping))
    workload = _owner_workload(meta, labels)
    pod = Pod(
        namespace=ns, name=str(meta.get("name", "")),
        workload=WorkloadRef(ns, workload) if workload else None,
        labels=frozen_strings(labels), has_sidecar=sidecar is not None,
        sidecar_injection_expected=expected, ready=ready,
        sidecar_ready=bool(sidecar_status.get("ready")) if sidecar_status else None,
        phase=str(status.get("phase") or "Unknown"),
        restarts=sum(int(s.get("restartCount") or 0) for s in statuses + init_statuses),
        sidecar_restarts=int(sidecar_status.get("restartCount") or 0) if sidecar_status else 0,
        service_account=spec.get("serviceAccountName") or spec.get("serviceAccount"),
        ip=status.get("podIP"), node=spec.get("nodeName"),
        containers=tuple(str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, Mapping)),
        annotations=frozen_strings(mesh_annotations(annotations)),
        proxy_image=proxy_image_of(spec, ISTIO_SIDECAR if node_proxy else sidecar), location=location,
        started=_time(status.get("startTime")), restart_history=restart_history(statuses + init_statuses, sidecar),
        ambient=sidecar is None and not node_proxy and not expected and ambient_mode(ns_labels.get(ns, {}), labels),
        node_proxy=node_proxy,
    )
    return pod, mesh


# -- workloads and services -----------------------------------------------------------------

# A namespace's labels when it has none listed (read, never written).
_NO_LABELS: Mapping[str, str] = EMPTY


def _stable_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in _VOLATILE_LABELS}


def _workload(ref: WorkloadRef, labels: Mapping[str, str], service_account: str | None,
              meshed: bool | None, mesh: Mesh, annotations: Mapping[str, str] | None = None,
              proxy_image: str | None = None, location: SourceLocation | None = None) -> Workload:
    return Workload(**_workload_fields(ref, labels, service_account, meshed, mesh, annotations, proxy_image,
                                       location))


def _workload_fields(ref: WorkloadRef, labels: Mapping[str, str], service_account: str | None,
                     meshed: bool | None, mesh: Mesh, annotations: Mapping[str, str] | None = None,
                     proxy_image: str | None = None, location: SourceLocation | None = None) -> dict[str, Any]:
    """The fields of :func:`_workload`'s Workload, its services empty (objects_to_part makes each
    controller's Workload once, when the Services selecting it are known), in the Workload's
    field order: its values are the Workload's positional arguments (cheaper than keywords,
    12,400 times at 5,000 services; tests/test_k8s_objects_read.py holds the order)."""
    return {"ref": ref, "mesh": mesh, "services": (), "app": first_label(labels, _APP_LABELS),
            "version": first_label(labels, _VERSION_LABELS),
            # A template's labels seldom hold a controller's volatile one: copied once, not twice.
            "labels": FrozenDict(labels if _VOLATILE_LABELS.isdisjoint(labels) else _stable_labels(labels)),
            "service_account": service_account, "meshed": meshed,
            "annotations": frozen_strings(mesh_annotations(annotations)) if annotations else EMPTY,
            "proxy_image": proxy_image, "location": location}


def workloads_from_pods(pods: Iterable[tuple[Pod, Mesh]]) -> dict[WorkloadRef, Workload]:
    """Group pods by owner workload; ``meshed`` is True only when every pod has its sidecar."""
    groups: dict[WorkloadRef, list[tuple[Pod, Mesh]]] = defaultdict(list)
    for pod, mesh in pods:
        if pod.workload is not None:
            groups[pod.workload].append((pod, mesh))
    out: dict[WorkloadRef, Workload] = {}
    for ref, members in groups.items():
        meshes = [m for _, m in members if m is not Mesh.UNKNOWN]
        first = members[0][0]
        out[ref] = _workload(ref, first.labels, first.service_account,
                             all(p.has_sidecar for p, _ in members), meshes[0] if meshes else Mesh.UNKNOWN,
                             first.annotations, next((p.proxy_image for p, _ in members if p.proxy_image), None))
    return out


def workload_from_controller(obj: Mapping[str, Any], ns_labels: Mapping[str, Mapping[str, str]],
                             location: SourceLocation | None = None) -> Workload:
    """A Deployment/StatefulSet/DaemonSet (from a manifest) -> Workload, from its pod template."""
    return Workload(**controller_fields(obj, ns_labels, location))


def controller_fields(obj: Mapping[str, Any], ns_labels: Mapping[str, Mapping[str, str]],
                      location: SourceLocation | None = None) -> dict[str, Any]:
    """The fields of :func:`workload_from_controller`'s Workload (its ``services`` empty), in
    its field order."""
    meta = _meta(obj)
    ns = "" if str(obj.get("kind", "")) in CLUSTER_SCOPED else str(meta.get("namespace") or "default")  # namespace_of
    template = (obj.get("spec") or {}).get("template") or {}
    tmeta, tspec = template.get("metadata") or {}, template.get("spec") or {}
    labels = _str_map(tmeta.get("labels"))
    annotations = _str_map(tmeta.get("annotations"))
    sidecar, mesh, node_proxy = sidecar_of(tspec, annotations)
    namespace_labels = ns_labels.get(ns, _NO_LABELS)
    expected = injection_expected(namespace_labels, labels, annotations)
    if mesh is Mesh.UNKNOWN and expected:
        mesh = Mesh.ISTIO
    elif mesh is Mesh.UNKNOWN and (_appmesh_namespace(namespace_labels)
                                   or any(k.startswith("appmesh.k8s.aws/") for k in annotations)):
        mesh = Mesh.APPMESH
    # Injection happens at admission: a template without a sidecar says nothing about the pods.
    meshed = True if sidecar else (False if expected is False else None)
    return _workload_fields(WorkloadRef(ns, str(meta.get("name", ""))), labels,
                            tspec.get("serviceAccountName"), meshed, mesh, annotations,
                            proxy_image_of(tspec, ISTIO_SIDECAR if node_proxy else sidecar), location)


Member = tuple[WorkloadRef, Mapping[str, Any], "Mesh | None"]  # a workload, its pods' labels, its mesh


def _member_ref(member: Member) -> WorkloadRef:
    return member[0]


def label_index(members: Iterable[Member]) -> dict[tuple[str, Any], list[Member]]:
    """``(label, value) -> members`` carrying it: a selector's first pair names the only
    workloads it can match, so a namespace of thousands of Services and workloads is not
    matched every Service against every workload."""
    index: dict[tuple[str, Any], list[Member]] = defaultdict(list)
    for member in members:
        for item in member[1].items():
            try:
                index[item].append(member)
            except TypeError:  # an unhashable value equals no selector string anyway
                continue
    return index


def service_from_object(obj: Mapping[str, Any], members: Iterable[Member], origin: str = "kubernetes",
                        location: SourceLocation | None = None,
                        index: Mapping[tuple[str, Any], Iterable[Member]] | None = None) -> Service:
    """A Service object -> Service; ``members`` are the workloads it may select, each with its
    pods' labels and its mesh, and ``origin`` says where the object was read ("kubernetes", a
    manifest path). ``index`` is :func:`label_index` of ``members`` when the caller has it (the
    same answer, faster)."""
    meta, spec = _meta(obj), obj.get("spec") or {}
    ns = "" if str(obj.get("kind", "")) in CLUSTER_SCOPED else str(meta.get("namespace") or "default")  # namespace_of
    name = str(meta.get("name", ""))
    selector = _str_map(spec.get("selector"))
    matched: list[Member] = []
    if selector:  # an empty selector selects nothing (the Endpoints are written by hand)
        wanted = selector.items()
        pool = members if index is None else index.get(next(iter(wanted)), ())
        # Every (label, value) of the selector among the labels: the items views compare in C
        # (selector values are strings, never a missing label's None).
        matched = [m for m in pool if m[0].namespace == ns and wanted <= m[1].items()]
        if len(matched) > 1:
            matched.sort(key=_member_ref)
    mesh = Mesh.UNKNOWN
    for m in matched:
        if m[2] is not None and m[2] is not Mesh.UNKNOWN:
            mesh = m[2]
            break
    specs = tuple([service_port(p) for p in spec.get("ports") or []
                   if (p.__class__ is dict or isinstance(p, Mapping)) and str(p.get("port", "")).isdigit()])
    external = spec.get("externalName") if spec.get("type") == "ExternalName" else None
    # Positional, in the Service's field order (SERVICE_FIELDS, held by a test): cheaper than
    # keywords, 5,000 times at 5,000 services.
    return Service(ServiceRef(ns, name), mesh, (f"{name}.{ns}.svc.cluster.local",), tuple([p.port for p in specs]),
                   frozen_strings(selector), tuple([m[0] for m in matched]), origin or "kubernetes", specs,
                   str(external) if external else None, location)


# The order service_from_object passes a Service's fields in.
SERVICE_FIELDS = ("ref", "mesh", "hosts", "ports", "selector", "workloads", "origin", "port_specs", "external_name",
                  "location")


def service_port(p: Mapping[str, Any]) -> ServicePort:
    """One entry of a Service's ``ports`` (its ``port`` already known to be a number)."""
    # Most Services of a mesh write the same few ports: one ServicePort (frozen) for each way of
    # writing one. The key holds each value's type, so 8080 and 8080.0 (equal) stay apart.
    name, target, protocol, app = p.get("name"), p.get("targetPort"), p.get("protocol"), p.get("appProtocol")
    port = p["port"]
    key = (port, port.__class__, name, name.__class__, target, target.__class__, protocol, protocol.__class__,
           app, app.__class__)
    try:
        known = _PORTS.get(key)
    except TypeError:  # an unhashable value (a list): read, not remembered
        return _service_port(p)
    if known is None:
        if len(_PORTS) >= _PORTS_MAX:
            _PORTS.clear()
        known = _PORTS[key] = _service_port(p)
    return known


_PORTS: dict[tuple[Any, ...], ServicePort] = {}
_PORTS_MAX = 4096


def _service_port(p: Mapping[str, Any]) -> ServicePort:
    target = p.get("targetPort")
    text = str(target) if target is not None and target != "" else None
    return ServicePort(port=int(p["port"]), name=str(p.get("name") or ""),
                       target_port=int(text) if text is not None and text.isdigit() else text,
                       protocol=str(p.get("protocol") or "TCP").upper(),
                       app_protocol=str(p["appProtocol"]) if p.get("appProtocol") else None)


# -- mesh configuration ---------------------------------------------------------------------

def config_from_object(obj: Mapping[str, Any], layer: Layer, origin: str,
                       location: SourceLocation | None = None) -> ConfigResource | None:
    """An Istio or App Mesh custom resource -> ConfigResource (None for any other object).

    Only ``spec``, labels and the meaningful annotations are kept: ``status``, resourceVersion,
    uid and last-applied copies change without the intent changing. When it was created and
    written (``dates``) is kept beside, out of the resource's identity.
    """
    api_version = str(obj.get("apiVersion", ""))
    mesh = mesh_of_api_version(api_version)
    if mesh is None:
        return None
    meta = _meta(obj)
    spec = obj.get("spec")
    kind = str(obj.get("kind", ""))
    if kind == "Gateway" and api_version.startswith(GATEWAY_API_GROUP + "/"):
        kind = KUBERNETES_GATEWAY
    check_spec(kind, spec, item_name(obj, origin), appmesh=mesh is Mesh.APPMESH,
               line_of=location.at if location is not None else None)
    resource = ConfigResource(
        kind=kind, namespace=namespace_of(obj), name=str(meta.get("name", "")),
        spec=freeze(spec if isinstance(spec, Mapping) else {}), layer=layer, api_version=api_version,
        mesh=mesh, labels=frozen_map(_str_map(meta.get("labels"))),
        annotations=frozen_map(kept_annotations(obj)), origin=origin, location=location,
        dates=object_dates(obj),
    )
    if mesh is Mesh.APPMESH:
        # The App Mesh checks read the common layout (spec["meshobs"]), whatever the shape.
        from meshobs.collectors.appmesh_config import enrich

        resource = enrich(resource)
    return resource


def namespace_resource(obj: Mapping[str, Any], layer: Layer, origin: str,
                       location: SourceLocation | None = None) -> ConfigResource:
    """A Namespace -> a ConfigResource of kind ``Namespace`` (cluster-scoped: namespace ``""``)
    carrying its labels: injection (``istio-injection``, ``istio.io/rev``), the ambient data
    plane (``istio.io/dataplane-mode``) and waypoints (``istio.io/use-waypoint``) are read
    from them."""
    meta = _meta(obj)
    return ConfigResource(kind="Namespace", namespace="", name=str(meta.get("name", "")), spec=freeze({}),
                          layer=layer, api_version=str(obj.get("apiVersion", "v1")),
                          labels=frozen_map(_str_map(meta.get("labels"))), origin=origin, location=location)


def item_name(obj: Mapping[str, Any], origin: str = "") -> str:
    """``VirtualService shop/cart (deploy/vs.yaml)``: how a problem names one object."""
    meta = _meta(obj)
    ns = meta.get("namespace")
    where = f"{ns}/{meta.get('name', '?')}" if ns else str(meta.get("name", "?"))
    source = f" ({origin})" if origin and origin != "kubernetes" else ""
    return f"{obj.get('kind', '?')} {where}{source}"


def _item_failed(obj: Mapping[str, Any], origin: str, problems: list[str] | None, exc: BaseException) -> None:
    """One object had a wrong shape (one of ITEM_ERRORS): it costs that object, named in
    ``problems`` (raised as ValueError when it is None). Called from an ``except``, not a
    ``with`` per object: entering and leaving a context manager 12,400 times (the Services and
    Deployments of a 5,000-service mesh) cost more than the try that is free until it fails."""
    name = item_name(obj, origin)
    why = str(exc) if isinstance(exc, ValueError) else f"unexpected shape ({exc!r})"
    message = why if why.startswith(name) else f"{name}: {why}"
    if problems is None:
        raise ValueError(message) from None
    problems.append(message)


Sourced = tuple[Mapping[str, Any], str] | tuple[Mapping[str, Any], str, SourceLocation | None]


def objects_to_part(objects: Iterable[Sourced], layer: Layer, problems: list[str] | None = None) -> SnapshotPart:
    """(object, origin[, location]) of any kind -> pods, workloads, services and mesh
    configuration; a manifest reader passes each object's file and line as its location.

    Namespace objects among them contribute their injection labels; MutatingWebhookConfigurations
    their sidecar injector webhooks; Istio's mesh config (ConfigMap ``istio``) becomes a
    MeshConfig resource; kinds meshobs does not model (other ConfigMaps, RBAC ...) are ignored.
    An object whose fields have the wrong shape is left out and named in ``problems`` (raised
    as ValueError when it is None): one malformed VirtualService costs that VirtualService, not
    the source.
    """
    items: list[tuple[Mapping[str, Any], str]] = []
    where: dict[int, SourceLocation] = {}
    for entry in objects:
        obj = entry[0]
        if len(entry) > 2 and entry[2] is not None:  # type: ignore[misc]
            where[id(obj)] = entry[2]  # type: ignore[misc]
        if obj.__class__ is dict or isinstance(obj, Mapping):
            items.append((obj, entry[1]))
    ns_labels = {str(_meta(o).get("name")): _str_map(_meta(o).get("labels"))
                 for o, _ in items if o.get("kind") == "Namespace"}
    part = SnapshotPart()
    pods: list[tuple[Pod, Mesh]] = []
    controllers: list[dict[str, Any]] = []  # their Workloads' fields but the services
    service_objs: list[tuple[Mapping[str, Any], str]] = []
    for obj, origin in items:
        kind = obj.get("kind")
        loc = where.get(id(obj)) if where else None  # live lists have no file lines
        try:
            if kind == "Pod":
                pods.append(pod_from_object(obj, ns_labels, loc))
            elif kind in WORKLOAD_KINDS and str(obj.get("apiVersion", "")).startswith("apps/"):
                controllers.append(controller_fields(obj, ns_labels, loc))
            elif kind == "Service" and str(obj.get("apiVersion", "v1")) == "v1":
                service_objs.append((obj, origin))
            elif kind == "ConfigMap" and is_mesh_configmap(obj):
                # Its mesh YAML unreadable: the object is named in problems, as istiod names it.
                part.config.append(mesh_config_resource(obj, layer, origin, loc))
            elif kind == "MutatingWebhookConfiguration":
                from meshobs.collectors.k8s_webhooks import injection_webhooks

                part.injection_webhooks.extend(injection_webhooks(obj))
            elif kind == "Namespace" and str(obj.get("apiVersion", "v1")) == "v1":
                part.config.append(namespace_resource(obj, layer, origin, loc))
            elif kind == "Secret" and str(obj.get("apiVersion", "v1")) == "v1":
                from meshobs.collectors.k8s_secrets import secret_resource

                part.config.append(secret_resource(obj, layer, origin, loc))
            else:
                resource = config_from_object(obj, layer, origin, loc)
                if resource is not None:
                    part.config.append(resource)
        except ITEM_ERRORS as exc:
            _item_failed(obj, origin, problems, exc)
    workloads = workloads_from_pods(pods)
    # A controller's workload unless its pods (or an earlier controller of that name) made it.
    templates: dict[WorkloadRef, dict[str, Any]] = {}
    for fields in controllers:
        ref = fields["ref"]
        if not workloads or ref not in workloads:
            templates.setdefault(ref, fields)
    # The workloads a Service may select (with their first pod's labels, or their template's),
    # by namespace: selectors only match within one, so big clusters stay linear.
    by_ns: dict[str, list[Member]] = defaultdict(list)
    first_labels: dict[WorkloadRef, Mapping[str, Any]] = {}
    for pod, _ in pods:
        if pod.workload is not None:
            first_labels.setdefault(pod.workload, pod.labels)
    for ref, labels in first_labels.items():
        by_ns[ref.namespace].append((ref, labels, workloads[ref].mesh))
    for ref, fields in templates.items():
        by_ns[ref.namespace].append((ref, fields["labels"], fields["mesh"]))
    indexes = {ns: label_index(members) for ns, members in by_ns.items()}
    services: list[Service] = []
    for o, origin in service_objs:
        try:
            ns = namespace_of(o)
            services.append(service_from_object(o, by_ns.get(ns, ()), origin, where.get(id(o)) if where else None,
                                                index=indexes.get(ns, {})))
        except ITEM_ERRORS as exc:
            _item_failed(o, origin, problems, exc)
    # Back-links so a workload knows the services that select it.
    by_workload: dict[WorkloadRef, list[ServiceRef]] = defaultdict(list)
    for svc in services:
        for wref in svc.workloads:
            by_workload[wref].append(svc.ref)
    part.pods = [p for p, _ in pods]
    part.workloads = []
    for ref in sorted([*workloads, *templates], key=_WORKLOAD_ORDER):
        refs = by_workload.get(ref)
        selected_by = () if refs is None else (refs[0],) if len(refs) == 1 else tuple(dict.fromkeys(refs))
        template = templates.get(ref)
        if template is not None:
            template["services"] = selected_by
            part.workloads.append(Workload(*template.values()))
        else:
            part.workloads.append(replace(workloads[ref], services=selected_by))
    part.services = services
    return part


# WorkloadRef's own order, without making two tuples per comparison (nor a Python call per key).
_WORKLOAD_ORDER = attrgetter("namespace", "name")


_HASH = re.compile(r"^[a-z0-9]{5}$")
_RS_HASH = re.compile(r"^[a-z0-9]{6,10}$")


def workload_of_pod_name(pod: str) -> str:
    """Best guess of a Deployment's name from a pod name (``reviews-v1-7bbd79f8fd-k6j79``)."""
    parts = pod.split("-")
    if len(parts) >= 3 and _HASH.match(parts[-1]) and _RS_HASH.match(parts[-2]):
        return "-".join(parts[:-2])
    if len(parts) >= 2 and _HASH.match(parts[-1]):
        return "-".join(parts[:-1])
    return pod
