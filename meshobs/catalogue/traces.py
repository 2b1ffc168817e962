"""Finding codes: traces and slow hops (05xx)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0501", Severity.WARNING, "one hop dominates the critical path of slow requests",
         "{hop} takes {share:.0%} of the critical-path time of requests through {through} "
         "(self time p50 {p50_ms:.0f} ms, p99 {p99_ms:.0f} ms over {traces} traces; {why})"),
    Code("MSH0502", Severity.INFO, "largest hop on the critical path",
         "{hop} takes the largest share ({share:.0%}) of the critical-path time of requests through "
         "{through} ({why}; self time p50 {p50_ms:.0f} ms, p99 {p99_ms:.0f} ms over {traces} traces)"),
]
