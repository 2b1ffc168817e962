"""How each source of a snapshot fared."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .frozen import EMPTY, FrozenDict


class SourceState(StrEnum):
    OK = "ok"
    ERROR = "error"
    NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One source (``prometheus``, ``envoy:default/cart-v1-abc``, ``jaeger`` ...).

    ``message`` says why in words a person can act on when the state is not ok.

    ``inputs`` is what a source that answered only in part says about each kind of data it
    provides (``latency`` -> None when delivered, else why not: "query latency_p99 timed out
    after 10 s"), so exactly the checks needing the missing kind are skipped. Empty: everything
    its kind provides is delivered when the state is ok (see ``meshobs.engine.inputs``).

    ``problems`` lists items the source sent that could not be read (a malformed VirtualService, one bad
    host in an Envoy /clusters answer): each cost that item only, the rest of the source was
    used, so the state is unaffected; the engine reports them as MSH0003.
    """

    name: str
    state: SourceState
    message: str = ""
    duration_s: float = 0.0
    kind: str = ""  # prometheus | envoy | jaeger | kubernetes | manifests | cloudwatch | xray ...
    inputs: FrozenDict = EMPTY
    problems: tuple[str, ...] = ()
    # The namespaces whose mesh configuration (custom resources) the source listed; None: every
    # namespace it could see. A question about one service lists only its neighbourhood's
    # (meshobs.neighbourhood), so "no Gateway named X in namespace Y" holds only where Y was listed.
    config_namespaces: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.state is SourceState.OK
