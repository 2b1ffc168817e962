"""Distributed traces, normalised from Jaeger (v1 or OTLP) and X-Ray."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from .frozen import EMPTY, FrozenDict
from .refs import WorkloadRef


def _empty() -> FrozenDict:
    return EMPTY


class Span(msgspec.Struct, frozen=True, gc=False):
    """One span. Times are microseconds since the epoch (Jaeger's unit).

    A msgspec Struct, not a dataclass: a trace search builds hundreds of thousands of spans,
    and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) was a fifth of
    parsing them (benchmarks/bench_traces.py); a Struct is built in C, ~15x faster, and is not
    tracked by the cycle collector (a span refers to no object that could refer back to it).
    Immutable, hashable and compared by value like the frozen dataclass it replaces; change
    one with ``msgspec.structs.replace``.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    start_us: int
    duration_us: int
    status: str = "unset"  # ok | error | unset
    kind: str | None = None  # server | client | internal | producer | consumer
    attributes: FrozenDict = msgspec.field(default_factory=_empty)
    workload: WorkloadRef | None = None
    # How the span relates to ``parent_id``: Jaeger's CHILD_OF (the parent waits for it) or
    # FOLLOWS_FROM (async: the parent does not wait, so it is off the parent's critical path).
    ref_type: str = "CHILD_OF"

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


@dataclass(frozen=True, slots=True)
class Trace:
    trace_id: str
    spans: tuple[Span, ...]

    @property
    def roots(self) -> tuple[Span, ...]:
        ids = {s.span_id for s in self.spans}
        return tuple(s for s in self.spans if not s.parent_id or s.parent_id not in ids)

    @property
    def duration_us(self) -> int:
        if not self.spans:
            return 0
        return max(s.end_us for s in self.spans) - min(s.start_us for s in self.spans)

    @property
    def services(self) -> frozenset[str]:
        return frozenset(s.service for s in self.spans)
