"""The contract every collector follows.

* ``fetch(ctx) -> list[RawSource]`` does all the I/O and returns payloads exactly as received
  (failures recorded as payloads with ``error``), never raising for expected failures.
* ``normalize(raw, ctx) -> SnapshotPart`` is pure: raw payloads in, model objects out, plus a
  ``SourceStatus`` for the source. It may raise ``ValueError`` for malformed payloads; the
  assembly turns that into a SourceStatus error for that source only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from meshobs.config import Config
from meshobs.model import SnapshotPart
from meshobs.raw import RawSource


@dataclass(frozen=True)
class FetchContext:
    time: datetime  # evaluation time
    window_s: float
    config: Config


@dataclass(frozen=True)
class NormalizeContext:
    time: datetime
    window_s: float


class Collector(Protocol):
    kind: str

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """All I/O for this source; returns raw payloads (errors recorded, not raised)."""
        ...


class Normalizer(Protocol):
    def __call__(self, raw: RawSource, ctx: NormalizeContext) -> SnapshotPart: ...
