"""Self-instrumentation with opentelemetry-api: a span per collector fetch and per check.

A no-op unless the user configures an OpenTelemetry SDK. The same timings are kept in-process,
aggregated per (phase, name) so a mesh-wide run stays small, and ``-v`` prints them as a table.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry import trace

_tracer: Any = None
_lock = threading.Lock()
# Read once: a --all run asks for every check (135k at 5,000 services).
_PROVIDER_NAMED = bool(os.environ.get("OTEL_PYTHON_TRACER_PROVIDER"))


def _configured_api() -> ModuleType | None:
    """``opentelemetry.trace`` when this process can have an SDK configured, else None.

    A tracer provider is set by code that imported opentelemetry itself (the SDK set-up of a
    program embedding meshobs, ``opentelemetry-instrument``'s start-up hook) or named by
    ``$OTEL_PYTHON_TRACER_PROVIDER``. With neither, every span would be a no-op, and the API is
    not imported at all: ~8 ms of CPU at the start of every command, before a live run's first
    query is sent.
    """
    api = sys.modules.get("opentelemetry.trace")
    if api is None and _PROVIDER_NAMED:
        from opentelemetry import trace as api
    return api


@dataclass(frozen=True)
class Timing:
    phase: str  # fetch | normalize | check
    name: str
    seconds: float  # total over all calls
    calls: int
    failures: int

    @property
    def ok(self) -> bool:
        return self.failures == 0


_totals: dict[tuple[str, str], list[float]] = {}  # (phase, name) -> [seconds, calls, failures]


class timed:  # lower case: used as the function it replaced, ``with timed(...)``
    """Open a span ``meshobs.<phase>`` and add its wall time to the (phase, name) total.

    A class rather than a generator context manager: a --all at 5,000 services times 280k
    checks, and the generator's machinery alone cost about a second of it.
    """

    __slots__ = ("_attributes", "_name", "_opened", "_phase", "_span", "_start")

    def __init__(self, phase: str, name: str, **attributes: str | int | float) -> None:
        self._phase, self._name, self._attributes = phase, name, attributes
        self._span: AbstractContextManager[trace.Span] | None = None
        self._opened: trace.Span | None = None
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()
        # No OpenTelemetry SDK configured: the span would be a no-op that still costs ~30 us
        # (contexts attached and detached), and a --all run opens one per check and service
        # (135k at 5,000 services: seconds). Only the in-process totals are kept.
        if tracing():
            global _tracer
            if _tracer is None:
                _tracer = _configured_api().get_tracer("meshobs")  # type: ignore[union-attr]
            self._span = _tracer.start_as_current_span(f"meshobs.{self._phase}")
            span = self._opened = self._span.__enter__()
            span.set_attribute("meshobs.name", self._name)
            for k, v in self._attributes.items():
                span.set_attribute(f"meshobs.{k}", v)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._span is not None:
                try:
                    if self._opened is not None:
                        self._opened.set_attribute("meshobs.duration_s", time.perf_counter() - self._start)
                finally:
                    self._span.__exit__(kind, exc, tb)
        finally:
            add_times(self._phase, {self._name: [time.perf_counter() - self._start, 1, int(kind is not None)]})


def tracing() -> bool:
    """Whether spans go anywhere: an OpenTelemetry SDK's tracer provider is configured. Without
    the API imported (see :func:`_configured_api`) the answer is no at no cost; with it, asking
    costs a lookup in ``os.environ`` (the API's provider variable) while none is set, so a caller
    timing many short steps asks once for all of them (:func:`add_times`)."""
    api = _configured_api()
    return api is not None and not isinstance(api.get_tracer_provider(), api.ProxyTracerProvider)


def add_times(phase: str, totals: dict[str, list[float]]) -> None:
    """Add ``totals`` (name -> [seconds, calls, failures], measured by the caller without a span)
    to the (phase, name) totals, under one lock: the runner times a service's ~30 checks itself
    when :func:`tracing` is off, rather than opening and closing a :class:`timed` per check."""
    with _lock:
        for name, (seconds, calls, failures) in totals.items():
            total = _totals.setdefault((phase, name), [0.0, 0, 0])
            total[0] += seconds
            total[1] += calls
            total[2] += failures


def timings() -> list[Timing]:
    with _lock:
        return [Timing(p, n, s, int(c), int(f)) for (p, n), (s, c, f) in _totals.items()]


def reset() -> None:
    with _lock:
        _totals.clear()


def timings_table() -> str:
    rows = timings()
    if not rows:
        return "no timings recorded"
    width = max(len(r.name) for r in rows)
    lines = [f"{'phase':<10} {'name':<{width}} {'seconds':>9} {'calls':>6}  ok"]
    for r in rows:
        lines.append(f"{r.phase:<10} {r.name:<{width}} {r.seconds:>9.4f} {r.calls:>6}  "
                     f"{'yes' if r.ok else f'{r.failures} failed'}")
    return "\n".join(lines)
