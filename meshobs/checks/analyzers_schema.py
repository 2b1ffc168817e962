"""Schema validation of Istio resources as an analyzer: what ``kubectl apply`` or Istio's
validation webhook would reject (MSH0226) and values they accept that are probably wrong
(MSH0227), each with the field path and the file:line of that field.

The rules are :mod:`meshobs.istio_schema`'s (the Istio CRDs' OpenAPI schemas, closed as strict
field validation closes them, plus what Istio's webhook adds: durations, weights, retry
conditions, ranges). Two things keep valid configuration clean:

* a kind or version without a vendored schema is not judged (the analyzer says which, and says
  "could not check" when nothing could be validated);
* a field the vendored Istio 1.18 schemas do not know but a later release defines
  (``mirrors``, ``warmup``, ``targetRefs``: :mod:`meshobs.istio_schema.newer`) is not called
  unknown: the cluster's Istio may well accept it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.istio_schema import SchemaIssue, supports, validate
from meshobs.istio_schema.newer import newer_field
from meshobs.model import ConfigResource, Mesh, MeshSnapshot, thaw

from .base import CouldNotCheck, Finding, Settings, analyzer, finding
from .scope import Focus

# Every Istio kind a schema may exist for (what the analyzer reads).
ISTIO_KINDS = ("VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry",
               "WorkloadGroup", "EnvoyFilter", "ProxyConfig", "AuthorizationPolicy", "PeerAuthentication",
               "RequestAuthentication", "Telemetry", "WasmPlugin")
HINTS = {
    "unknown-field": "remove the field or fix its name (kubectl apply --validate=strict rejects it; Istio's "
                     "webhook too)",
    "type": "give the field the type the API defines",
    "enum": "use one of the values the API defines",
    "required": "add the field; the resource is rejected without it",
    "one-of": "keep only one of these fields",
    "duration": "write a duration such as 500ms, 1.5s or 1m (at least 1ms, millisecond precision)",
    "weights": "make the destinations' weights add up to 100 so they read as percentages",
    "retry-on": "use retry conditions Envoy knows (5xx, gateway-error, reset, connect-failure, retriable-4xx, "
                "...) or HTTP status codes",
    "range": "use a value in the allowed range",
}


def as_object(resource: ConfigResource) -> dict[str, Any]:
    """The resource as the Kubernetes object it was written as (what the schemas describe)."""
    metadata: dict[str, Any] = {"name": resource.name, "namespace": resource.namespace}
    if resource.labels:
        metadata["labels"] = dict(resource.labels)
    if resource.annotations:
        metadata["annotations"] = dict(resource.annotations)
    return {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": metadata,
            "spec": thaw(resource.spec)}


def judged_issues(resource: ConfigResource) -> tuple[list[SchemaIssue], bool]:
    """(issues worth reporting, whether a schema judged the resource at all)."""
    if not judgeable(resource):
        return [], False
    issues = validate(as_object(resource))
    if any(i.rule == "unsupported" for i in issues):
        return [], False
    return [i for i in issues if not (i.rule == "unknown-field" and newer_field(resource.api_version, _leaf(i.path)))
            ], True


def judgeable(resource: ConfigResource) -> bool:
    """Would :func:`judged_issues` judge the resource? Yes unless :func:`validate` has no schema
    for its kind and apiVersion (an object without either is judged: it is not one)."""
    return not resource.api_version or not resource.kind or supports(resource.api_version, resource.kind)


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1].split("[", 1)[0]


@analyzer("config.schema", Category.CONFIG, ISTIO_KINDS, ("MSH0226", "MSH0227"), mesh=Mesh.ISTIO)
def schema(snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterable[Finding]:
    """An Istio resource breaks its CRD schema or Istio's validation rules (unknown fields, wrong
    types, invalid durations, weights that do not add up), named by field path and line."""
    judged, unjudged = 0, set()
    for kind in ISTIO_KINDS:
        for resource in pick_resources(snapshot, kind):
            if focus is not None:
                # Its findings are about the resource, touching no service: a question about one
                # service reads them only for a resource a symptom names, from the whole run.
                # What it needs here is whether anything could be validated.
                if judgeable(resource):
                    judged += 1
                else:
                    unjudged.add(f"{kind} {resource.api_version}")
                continue
            issues, ok = judged_issues(resource)
            if not ok:
                unjudged.add(f"{kind} {resource.api_version}")
                continue
            judged += 1
            for issue in issues:
                code = "MSH0226" if issue.severity == "error" else "MSH0227"
                yield finding(code, "config.schema", resource=resource, at=issue.path, kind=kind,
                              name=f"{resource.namespace}/{resource.name}", path=issue.path or "(object)",
                              problem=issue.message,
                              evidence={"rule": issue.rule, "path": issue.path, "api_version": resource.api_version},
                              hint=HINTS.get(issue.rule, "fix the field") + "; istioctl analyze reports "
                              + ("IST0106" if code == "MSH0226" else "nothing here (Istio accepts it)"))
    if not judged and unjudged:
        raise CouldNotCheck(f"no schema for {', '.join(sorted(unjudged))}; nothing could be validated")
