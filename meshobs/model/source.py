"""How each source of a snapshot fared."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SourceState(StrEnum):
    OK = "ok"
    ERROR = "error"
    NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One source (``prometheus``, ``envoy:default/cart-v1-abc``, ``jaeger`` ...).

    ``message`` says why in words a person can act on when the state is not ok. ``problems``
    lists items the source sent that could not be read (a malformed VirtualService, one bad
    host in an Envoy /clusters answer): each cost that item only, the rest of the source was
    used, so the state is unaffected; the engine reports them as MSH0003.
    """

    name: str
    state: SourceState
    message: str = ""
    duration_s: float = 0.0
    kind: str = ""  # prometheus | envoy | jaeger | kubernetes | manifests | cloudwatch | xray ...
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state is SourceState.OK
