"""Mesh configuration resources in three layers: intended (Git), live (API), effective (Envoy)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .frozen import EMPTY, FrozenDict
from .refs import Mesh


class Layer(StrEnum):
    INTENDED = "intended"
    LIVE = "live"
    EFFECTIVE = "effective"


@dataclass(frozen=True, slots=True)
class ConfigResource:
    """A configuration object such as an Istio VirtualService or an App Mesh VirtualNode."""

    kind: str
    namespace: str
    name: str
    spec: FrozenDict
    layer: Layer = Layer.LIVE
    api_version: str = ""
    mesh: Mesh = Mesh.UNKNOWN
    labels: FrozenDict = EMPTY
    annotations: FrozenDict = EMPTY
    origin: str = ""  # a file path, "kubernetes", "demo:NAME", "proxy:<id>" ...

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"
