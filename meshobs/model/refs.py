"""Identities: which mesh, which service, which workload."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mesh(StrEnum):
    """The mesh a service or workload belongs to. One model covers both."""

    ISTIO = "istio"
    APPMESH = "appmesh"
    UNKNOWN = "unknown"


UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, order=True)
class ServiceRef:
    """A service by namespace and short name (``default/cart-service``).

    For Istio this is the Kubernetes Service; for App Mesh the virtual service.
    """

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_unknown(self) -> bool:
        return self.name == UNKNOWN

    @classmethod
    def parse(cls, text: str, default_namespace: str = "default") -> ServiceRef:
        """``ns/name``, ``name.ns.svc.cluster.local`` or ``name``."""
        if "/" in text:
            ns, name = text.split("/", 1)
            return cls(ns, name)
        parts = text.split(".")
        if len(parts) >= 2 and not text.replace(".", "").isdigit():
            return cls(parts[1], parts[0])
        return cls(default_namespace, text)


@dataclass(frozen=True, slots=True, order=True)
class WorkloadRef:
    """A workload by namespace and name (a Deployment such as ``default/cart-v1``;
    for App Mesh the virtual node)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_unknown(self) -> bool:
        return self.name == UNKNOWN


UNKNOWN_WORKLOAD = WorkloadRef(UNKNOWN, UNKNOWN)
UNKNOWN_SERVICE = ServiceRef(UNKNOWN, UNKNOWN)
