"""Self-instrumentation with opentelemetry-api: a span per collector fetch and per check.

A no-op unless the user configures an OpenTelemetry SDK. The same timings are kept in-process
so ``-v`` can print them as a table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace

_tracer = trace.get_tracer("meshobs")
_lock = threading.Lock()


@dataclass(frozen=True)
class Timing:
    phase: str  # fetch | normalize | check | render
    name: str
    seconds: float
    ok: bool


_timings: list[Timing] = []


@contextmanager
def timed(phase: str, name: str, **attributes: str | int | float) -> Iterator[None]:
    """Open a span ``meshobs.<phase>`` and record its wall time."""
    start = time.perf_counter()
    ok = True
    with _tracer.start_as_current_span(f"meshobs.{phase}") as span:
        span.set_attribute("meshobs.name", name)
        for k, v in attributes.items():
            span.set_attribute(f"meshobs.{k}", v)
        try:
            yield
        except BaseException:
            ok = False
            raise
        finally:
            elapsed = time.perf_counter() - start
            span.set_attribute("meshobs.duration_s", elapsed)
            with _lock:
                _timings.append(Timing(phase, name, elapsed, ok))


def timings() -> list[Timing]:
    with _lock:
        return list(_timings)


def reset() -> None:
    with _lock:
        _timings.clear()


def timings_table() -> str:
    rows = timings()
    if not rows:
        return "no timings recorded"
    width = max(len(r.name) for r in rows)
    lines = [f"{'phase':<10} {'name':<{width}} {'seconds':>9}  ok"]
    for r in rows:
        lines.append(f"{r.phase:<10} {r.name:<{width}} {r.seconds:>9.4f}  {'yes' if r.ok else 'NO'}")
    return "\n".join(lines)
