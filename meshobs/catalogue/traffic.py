"""Finding codes 04xx: traffic (errors, latency, saturation, endpoints)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0401", Severity.ERROR, "Error rate above threshold on inbound requests",
         "{service} fails {ratio_pct}% of its inbound requests ({error_rps} of {rps} req/s; "
         "threshold {threshold_pct}%); top: {top}", symptom="errors"),
    Code("MSH0402", Severity.ERROR, "Error rate above threshold on outbound calls",
         "{source} -> {destination}: {ratio_pct}% of calls fail ({error_rps} of {rps} req/s; "
         "threshold {threshold_pct}%); top: {top}", symptom="errors"),
    Code("MSH0403", Severity.WARNING, "p99 latency above threshold",
         "{service}: p99 {p99_ms} ms over its inbound requests (threshold {threshold_ms} ms)",
         symptom="latency"),
    Code("MSH0404", Severity.WARNING, "p99 latency regressed against the baseline",
         "{service}: p99 {p99_ms} ms is {factor}x the baseline {baseline_ms} ms", symptom="latency"),
    # Refused requests fail (errors) and queue behind the breaker (latency).
    Code("MSH0405", Severity.ERROR, "Circuit breaker overflow",
         "{service}: circuit breakers refused {overflows} request(s) on {proxies} caller proxies",
         effects=("errors", "latency")),
    Code("MSH0406", Severity.ERROR, "Endpoints ejected by outlier detection",
         "{service}: {ejected} endpoint(s) ejected by outlier detection as seen by {proxies} "
         "caller proxies"),
    Code("MSH0407", Severity.ERROR, "No healthy endpoints",
         "{service}: {healthy} of {total} endpoints healthy as seen by {proxies} caller proxies"),
    Code("MSH0408", Severity.ERROR, "Requests never reached a destination",
         "{source} -> {destination}: {error_rps} req/s failed before reaching any destination "
         "workload; top: {top}", symptom="errors"),
    # Not a symptom: one failing version explains the service-wide errors (MSH0401) and ranks above it.
    Code("MSH0409", Severity.ERROR, "One version of a service fails",
         "{workload} (a version of {service}) fails {ratio_pct}% of its requests while the other "
         "versions fail {others_pct}%; top: {top}"),
]
