"""The big list pages (Services, Deployments, Pods) minimised while they are decoded.

:func:`k8s_minimise.minimise_document` walks a decoded page in Python, field by field: at 5,000
services the graph phase's 12,400 Services and Deployments cost ~0.25 s of CPU in decoding and
minimising alone. Here msgspec decodes a page straight into structs that hold only the fields
the minimiser keeps (every other field is skipped in C), and the few fields the minimiser
rewrites (labels, annotations, empty lists, container env) are rewritten on those structs with
the minimiser's own helpers. ``msgspec.to_builtins`` then makes the same dicts, keys in the same
order, as the generic path.

Not a second minimiser: the structs are declared from the generic path's field tuples, and a
page that does not have the exact shape they describe (a field of another type, a null where an
object is expected, items carrying other kinds, an error Status) is refused with ``None``, and
the caller minimises it the generic way. ``tests/test_minimise_typed.py`` holds both paths equal
on every demo and scenario page, the corpus's objects and a served generated mesh's pages.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from meshobs.collectors.k8s_minimise import (
    CONDITION_KEPT,
    CONTAINER_KEPT,
    CONTAINER_PORT_KEPT,
    CONTAINER_STATUS_KEPT,
    METADATA_KEPT,
    OWNER_KEPT,
    POD_SPEC_KEPT,
    POD_STATUS_KEPT,
    SERVICE_SPEC_KEPT,
    STATE_KEPT,
    WORKLOAD_SPEC_KEPT,
    annotations_kept,
    kept_env,
    strings,
    terminated_kept,
)

_Strings = dict[str, str] | UnsetType


def _struct(name: str, kept: tuple[str, ...], *more: tuple[str, Any] | tuple[str, Any, Any]) -> Any:
    """A struct of ``kept`` (any JSON value, absent: UNSET, so not written) then ``more``
    ((name, type) absent: UNSET, or (name, type, default)). No GC tracking: decoded trees
    hold no cycles, and it halves the cost of making thousands of them."""
    fields = [(k, Any, UNSET) for k in kept]
    fields += [(m[0], m[1], m[2] if len(m) > 2 else UNSET) for m in more]  # type: ignore[misc]
    return msgspec.defstruct(name, fields, gc=False)


def _default(struct: Any) -> Any:
    return msgspec.field(default_factory=struct)


_Owner = _struct("Owner", OWNER_KEPT)
_Metadata = _struct("Metadata", METADATA_KEPT, ("labels", _Strings), ("annotations", _Strings),
                    ("ownerReferences", list[_Owner] | UnsetType))  # type: ignore[valid-type]
_Port = _struct("ContainerPort", CONTAINER_PORT_KEPT)
_Env = _struct("EnvVar", ("name", "value"))
_Container = _struct("Container", CONTAINER_KEPT, ("ports", list[_Port] | UnsetType),  # type: ignore[valid-type]
                     ("env", list[_Env] | UnsetType))  # type: ignore[valid-type]
_PodSpec = _struct("PodSpec", POD_SPEC_KEPT, ("containers", list[_Container] | UnsetType),  # type: ignore[valid-type]
                   ("initContainers", list[_Container] | UnsetType))  # type: ignore[valid-type]
_TemplateMeta = _struct("TemplateMetadata", (), ("labels", _Strings), ("annotations", _Strings))
_Template = _struct("PodTemplate", (), ("metadata", _TemplateMeta, _default(_TemplateMeta)),
                    ("spec", _PodSpec, _default(_PodSpec)))
_States = _struct("ContainerStates", (), ("running", _struct("Running", STATE_KEPT) | UnsetType),
                  ("waiting", _struct("Waiting", STATE_KEPT) | UnsetType))
_LastState = _struct("LastState", (), ("terminated", dict[str, Any] | UnsetType))
_ContainerStatus = _struct("ContainerStatus", CONTAINER_STATUS_KEPT, ("state", _States | UnsetType),
                           ("lastState", _LastState | UnsetType))
_Condition = _struct("Condition", CONDITION_KEPT)
_PodStatus = _struct("PodStatus", POD_STATUS_KEPT, ("conditions", list[_Condition] | UnsetType),  # type: ignore[valid-type]
                     ("containerStatuses", list[_ContainerStatus] | UnsetType),  # type: ignore[valid-type]
                     ("initContainerStatuses", list[_ContainerStatus] | UnsetType))  # type: ignore[valid-type]
_ServiceSpec = _struct("ServiceSpec", SERVICE_SPEC_KEPT, ("selector", _Strings))
_WorkloadSpec = _struct("WorkloadSpec", WORKLOAD_SPEC_KEPT, ("template", _Template | UnsetType))
_HEAD = ("apiVersion", "kind")  # what a typed list's items lack: the list's own, written first
_Service = _struct("Service", _HEAD, ("metadata", _Metadata, _default(_Metadata)),
                   ("spec", _ServiceSpec, _default(_ServiceSpec)))
_Deployment = _struct("Deployment", _HEAD, ("metadata", _Metadata, _default(_Metadata)),
                      ("spec", _WorkloadSpec, _default(_WorkloadSpec)))
_Pod = _struct("Pod", _HEAD, ("metadata", _Metadata, _default(_Metadata)), ("spec", _PodSpec, _default(_PodSpec)),
               ("status", _PodStatus, _default(_PodStatus)))
_ListMeta = msgspec.defstruct("ListMeta", [("token", Any, None)], rename={"token": "continue"}, gc=False)


def _page(item: Any) -> Any:
    return msgspec.defstruct("Page", [("kind", str), ("apiVersion", str), ("items", list[item]),  # type: ignore[valid-type]
                                      ("metadata", _ListMeta | None, None)], gc=False)


# resource -> (list kind, apiVersion, decoder, whether its annotations are a pod's)
_PAGES: dict[str, tuple[str, str, msgspec.json.Decoder[Any], bool]] = {
    "services": ("ServiceList", "v1", msgspec.json.Decoder(_page(_Service)), False),
    "deployments": ("DeploymentList", "apps/v1", msgspec.json.Decoder(_page(_Deployment)), False),
    "pods": ("PodList", "v1", msgspec.json.Decoder(_page(_Pod)), True),
}


def _metadata(meta: Any, pod: bool) -> None:
    if meta.labels is not UNSET:
        meta.labels = strings(meta.labels)
    if meta.annotations is not UNSET:
        meta.annotations = annotations_kept(meta.annotations, pod=pod) or UNSET
    if meta.ownerReferences is not UNSET and not meta.ownerReferences:
        meta.ownerReferences = UNSET


def _pod_spec(spec: Any) -> None:
    for containers in (spec.containers, spec.initContainers):
        if containers is UNSET:
            continue
        for c in containers:
            if c.ports is not UNSET and not c.ports:
                c.ports = UNSET
            if c.env is not UNSET:
                c.env = [{"name": e.name, "value": e.value} for e in c.env
                         if kept_env(e.name, "" if e.value is UNSET else e.value)] or UNSET


def _pod_status(status: Any) -> None:
    for statuses in (status.containerStatuses, status.initContainerStatuses):
        if statuses is UNSET:
            continue
        for s in statuses:
            if s.state is not UNSET and s.state.running is UNSET and s.state.waiting is UNSET:
                s.state = UNSET
            if s.lastState is not UNSET:
                last = s.lastState.terminated
                s.lastState = {"terminated": terminated_kept(last)} if last is not UNSET and last else UNSET


def minimised_page(data: bytes, resource: str) -> tuple[dict[str, Any], str | None] | None:
    """(the page as ``minimise_document`` makes it, its continue token) for a page of
    ``resource`` ("services", "deployments", "pods"), or None when this page is not a list of
    that exact shape: then minimise it the generic way."""
    known = _PAGES.get(resource)
    if known is None:
        return None
    kind, api_version, decoder, pod = known
    try:
        page = decoder.decode(data)
    except (msgspec.DecodeError, UnicodeError):  # ValidationError is a DecodeError
        return None
    if page.kind != kind or page.apiVersion != api_version:
        return None
    item_kind = kind[:-4]
    for item in page.items:
        if item.kind is not UNSET or item.apiVersion is not UNSET:
            return None  # items that say their own kind: the generic path reads them as they say
        item.apiVersion, item.kind = api_version, item_kind
        _metadata(item.metadata, pod)
        spec = item.spec
        if resource == "services":
            if spec.selector is not UNSET:
                spec.selector = strings(spec.selector)
        elif resource == "deployments":
            template = spec.template
            if template is not UNSET:
                if template.metadata.labels is not UNSET:
                    template.metadata.labels = strings(template.metadata.labels)
                if template.metadata.annotations is not UNSET:
                    template.metadata.annotations = annotations_kept(template.metadata.annotations, pod=True) or UNSET
                _pod_spec(template.spec)
        else:
            _pod_spec(spec)
            _pod_status(item.status)
    token = page.metadata.token if page.metadata is not None else None
    return {"apiVersion": api_version, "kind": kind, "items": msgspec.to_builtins(page.items)}, token
