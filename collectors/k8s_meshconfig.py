"""Istio's mesh config (ConfigMap ``istio`` in the root namespace, key ``mesh``) -> a
``MeshConfig`` resource holding only the fields the checks read.

The ConfigMap's ``mesh`` key is a YAML document (``outboundTrafficPolicy: {mode: REGISTRY_ONLY}``,
``rootNamespace``, ``defaultConfig`` ...). Everything else in it (proxy defaults, extension
providers with their service addresses and headers) is dropped: a bundle keeps what is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from meshobs.model import ConfigResource, Layer, Mesh, SourceLocation, freeze

MESH_CONFIG = "MeshConfig"
CONFIGMAP_NAMES = ("istio",)  # istio-<revision> ConfigMaps serve one revision each: not read
# The fields kept, as meshConfig spells them.
KEPT = ("outboundTrafficPolicy", "rootNamespace")


def is_mesh_configmap(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return (obj.get("kind") == "ConfigMap" and str(obj.get("apiVersion", "v1")) == "v1"
            and isinstance(meta, Mapping) and meta.get("name") in CONFIGMAP_NAMES
            and isinstance(obj.get("data"), Mapping) and "mesh" in obj["data"])


def kept_fields(text: Any) -> dict[str, Any]:
    """The kept fields of the ``mesh`` YAML; ValueError when it is not a YAML mapping."""
    try:
        doc = yaml.safe_load(str(text)) if text else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"ConfigMap istio: key mesh is not valid YAML{where}") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise ValueError("ConfigMap istio: key mesh is not a YAML mapping")
    return {k: doc[k] for k in KEPT if k in doc}


def mesh_config_resource(obj: Mapping[str, Any], layer: Layer, origin: str,
                         location: SourceLocation | None = None) -> ConfigResource:
    """The ConfigMap as a MeshConfig resource (its namespace and name kept for the subject)."""
    meta = obj["metadata"]
    return ConfigResource(kind=MESH_CONFIG, namespace=str(meta.get("namespace") or "istio-system"),
                          name=str(meta["name"]), spec=freeze(kept_fields(obj["data"]["mesh"])), layer=layer,
                          api_version="v1", mesh=Mesh.ISTIO, origin=origin, location=location)


def minimise(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a bundle keeps of the ConfigMap: its identity and the kept fields of ``mesh``."""
    meta = obj.get("metadata") or {}
    try:
        mesh = yaml.safe_dump(kept_fields(obj["data"]["mesh"]), sort_keys=True)
    except ValueError:
        mesh = ""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "data": {"mesh": mesh}}
