"""An Istio (or Kubernetes) manifest produced by the translation, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"


@dataclass
class Manifest:
    doc: dict[str, Any]
    sources: list[str] = field(default_factory=list)  # "VirtualRouter shop/cart-router", ...

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.doc["metadata"].get("namespace") or "")

    @property
    def filename(self) -> str:
        parts = [self.kind.lower(), *([self.namespace] if self.namespace else []), self.name]
        return "-".join(parts) + ".yaml"


def manifest(api_version: str, kind: str, name: str, namespace: str | None, spec: dict[str, Any] | None,
             sources: list[str], **extra: Any) -> Manifest:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    doc: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    doc.update(extra)
    if spec is not None:
        doc["spec"] = spec
    return Manifest(doc, sorted(set(sources)))
