"""Mesh configuration resources in three layers: intended (Git), live (API), effective (Envoy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .frozen import EMPTY, FrozenDict
from .refs import Mesh


class Layer(StrEnum):
    INTENDED = "intended"
    LIVE = "live"
    EFFECTIVE = "effective"


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where an object was written: the file, the line it starts on, and the line of each of its
    fields (``spec.http[0].route[1].destination.subset`` -> 31), so a finding can name the line
    of the field it is about, as ``istioctl analyze`` does."""

    file: str
    line: int
    fields: FrozenDict = EMPTY

    def line_of(self, path: str = "") -> int:
        """The line of ``path`` (dotted, ``[i]`` for list items), else of its nearest parent
        that has one, else the object's first line."""
        while path:
            if path in self.fields:
                return int(self.fields[path])
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.line

    def at(self, path: str = "") -> str:
        """``file:line`` of ``path``."""
        return f"{self.file}:{self.line_of(path)}"


@dataclass(frozen=True, slots=True)
class Write:
    """One entry of an object's ``managedFields``: who last wrote their fields, how, and when
    (the fields' values are not kept)."""

    time: datetime
    manager: str = ""  # kubectl-edit, kubectl-client-side-apply, helm, argocd-controller ...
    operation: str = ""  # Update | Apply


@dataclass(frozen=True, slots=True)
class ObjectDates:
    """When the API server says an object was created and written: ``creationTimestamp``,
    ``metadata.generation`` (1 = never changed since creation) and the ``managedFields`` times."""

    created: datetime | None = None
    generation: int | None = None
    writes: tuple[Write, ...] = ()  # oldest first

    @property
    def last_write(self) -> Write | None:
        """The most recent write (None: no managedFields)."""
        return max(self.writes, key=lambda w: w.time, default=None)

    @property
    def changed(self) -> datetime | None:
        """When the object last changed: its latest write, else its creation."""
        last = self.last_write
        return last.time if last is not None else self.created


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
    # Set when read from a manifest file; not part of the resource's identity or content.
    location: SourceLocation | None = field(default=None, compare=False)
    # Read from a live API server only; when it changed is not what it says (drift ignores it).
    dates: ObjectDates | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"
