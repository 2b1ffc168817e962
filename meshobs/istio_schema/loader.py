"""Where the Istio CRD schemas come from: the vendored files, or CRDs a cluster serves.

Both become the same thing, a JSON Schema per (``group/version``, kind) that
:mod:`.structural` validates with ``jsonschema``. Two choices are made here, once:

* **objects are closed**: an object schema that lists ``properties`` and neither
  ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields`` rejects other fields,
  as the API server does with strict field validation (``kubectl apply --validate=strict``) and
  as Istio's webhook does (it unmarshals specs with unknown fields disallowed);
* **OpenAPI spellings become JSON Schema**: ``nullable`` -> a ``null`` type,
  ``x-kubernetes-int-or-string`` -> integer or string.

``ALIASES``: versions served from the same protobuf message as a version the vendored set has
(Istio 1.18's CRDs predate ``networking.istio.io/v1``; see ``schemas/PROVENANCE.md``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where a validator is built: a question about one service judges no resource's
    # schema (meshobs.checks.analyzers_schema asks only whether one could be), and jsonschema
    # costs a live question ~30 ms of CPU at start-up.
    from jsonschema import Draft7Validator

# (group/version the object says, kind or "*") -> group/version whose schema validates it
ALIASES: dict[tuple[str, str], str] = {
    ("networking.istio.io/v1", "*"): "networking.istio.io/v1beta1",
    ("security.istio.io/v1", "PeerAuthentication"): "security.istio.io/v1beta1",
    ("telemetry.istio.io/v1", "*"): "telemetry.istio.io/v1alpha1",
}
_ENVELOPE = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}


class SchemaSet:
    """JSON Schemas by (group/version, kind); :meth:`schema_for` resolves aliases."""

    def __init__(self, schemas: Mapping[tuple[str, str], Mapping[str, Any]], origin: str) -> None:
        # Closed on first use, per version and kind: closing every vendored schema is a walk
        # of all 23 (~0.1 s), and a mesh's configuration uses a handful of them.
        self._open: dict[tuple[str, str], Mapping[str, Any]] = dict(schemas)
        self._closed: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._validators: dict[tuple[str, str], Draft7Validator | None] = {}
        self.origin = origin

    def _schema(self, key: tuple[str, str]) -> Mapping[str, Any] | None:
        closed = self._closed.get(key)
        if closed is None and key in self._open:
            closed = self._closed[key] = close_objects(self._open[key])
        return closed

    def validator_for(self, api_version: str, kind: str) -> Draft7Validator | None:
        """The compiled validator (built once per version and kind), None when unknown."""
        from jsonschema import Draft7Validator

        key = (api_version, kind)
        if key not in self._validators:
            schema = self.schema_for(api_version, kind)
            self._validators[key] = Draft7Validator(schema) if schema is not None else None
        return self._validators[key]

    def schema_for(self, api_version: str, kind: str) -> Mapping[str, Any] | None:
        direct = self._schema((api_version, kind))
        if direct is not None:
            return direct
        target = ALIASES.get((api_version, kind)) or ALIASES.get((api_version, "*"))
        aliased = self._schema((target, kind)) if target else None
        if aliased is None:
            return None
        # The schema pins apiVersion to its own version; the alias answers for the other.
        props = dict(aliased.get("properties") or {})
        props["apiVersion"] = {"type": "string", "enum": [api_version]}
        return {**aliased, "properties": props}

    def versions_of(self, kind: str) -> list[str]:
        return sorted(v for v, k in self._open if k == kind)

    def kinds(self) -> list[tuple[str, str]]:
        return sorted(self._open)


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI v3 (as in a CRD) -> JSON Schema (draft 7): ``nullable`` and int-or-string."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if k not in ("nullable", "description")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def close_objects(node: Any) -> Any:
    """Reject unknown fields wherever the schema lists the known ones (see the module docstring)."""
    if isinstance(node, list):
        return [close_objects(x) for x in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: close_objects(v) for k, v in node.items()}
    props = node.get("properties")
    if (isinstance(props, Mapping) and props and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def vendored() -> SchemaSet:
    """The schemas shipped with meshobs (``schemas/*.json``; Istio 1.18 CRDs, see PROVENANCE.md)."""
    folder = resources.files("meshobs.istio_schema").joinpath("schemas")
    schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".json") or name == "SOURCES.json":
            continue
        group, version, kind = name[:-len(".json")].split("_")
        schemas[(f"{group}/{version}", kind)] = json.loads(entry.read_text(encoding="utf-8"))
    return SchemaSet(schemas, "vendored Istio 1.18 CRD schemas")


def load_crds(documents: Iterable[Any], origin: str = "CRDs") -> SchemaSet:
    """A schema set from ``CustomResourceDefinition`` objects (e.g. ``kubectl get crd -o yaml``
    of the cluster, or Istio's ``crd-all.gen.yaml``); other documents are ignored. Raises
    ValueError when none of them is a CRD with a schema."""
    schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
    for doc in _flatten(documents):
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc.get("spec") or {}
        group, kind = str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))
        for version in spec.get("versions") or ():
            raw = ((version.get("schema") or {}).get("openAPIV3Schema")) if isinstance(version, Mapping) else None
            if not isinstance(raw, Mapping) or not group or not kind:
                continue
            schema = dict(openapi_to_jsonschema(raw))
            schema["properties"] = {**_ENVELOPE, **dict(schema.get("properties") or {})}
            schemas[(f"{group}/{version.get('name')}", kind)] = schema
    if not schemas:
        raise ValueError(f"{origin}: no CustomResourceDefinition with an openAPIV3Schema")
    return SchemaSet(schemas, origin)


def _flatten(documents: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    for doc in documents:
        if isinstance(doc, Mapping) and isinstance(doc.get("items"), list):
            yield from _flatten(doc["items"])
        elif isinstance(doc, Mapping):
            yield doc
