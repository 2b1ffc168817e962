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
    # Intended traffic: shown so a person sees why it is not counted, never a cause.
    Code("MSH0410", Severity.INFO, "Faults injected on purpose",
         "{source} -> {destination}: {aborted_rps} req/s aborted ({abort_flag}) and {delayed_rps} req/s "
         "delayed (DI) by the fault injection of {configured_by}; not counted as the destination's errors"),
    Code("MSH0411", Severity.INFO, "Mirrored traffic",
         "{workload} receives {rps} req/s mirrored from {source} by {configured_by}; its answers "
         "({ratio_pct}% errors) never reach the caller and are not counted as the service's errors"),
    Code("MSH0412", Severity.ERROR, "Retries hide a failing service",
         "{service} fails {own_pct}% of the {attempts_rps} attempts/s it answers, but its callers' "
         "retries hide it: they see {seen_pct}% of {rps} req/s fail; {retry_summary}",
         effects=("errors", "latency"), passes_on="errors"),
    Code("MSH0413", Severity.ERROR, "Callers time out waiting for a service",
         "{timeouts_rps} of {rps} req/s to {service} end in a timeout at the caller ({top}); "
         "{service} itself answers in p50 {own_p50_ms} ms / p99 {own_p99_ms} ms{limit}",
         effects=("errors", "latency"), passes_on="latency"),
    Code("MSH0414", Severity.ERROR, "AuthorizationPolicy denies a caller",
         "{policy} ({action}) denies {source} ({principal}) calling {destination}: {denied_rps} req/s "
         "answered 403; {rule}", signature=("403",)),
    Code("MSH0417", Severity.ERROR, "RequestAuthentication refuses a caller's tokens",
         "{request_authentication} (issuer {issuers}) refuses the tokens {source} sends to {destination}: "
         "{refused_rps} req/s ({refused_pct}% of its calls) answered 401; {reason}", signature=("401",)),
    Code("MSH0415", Severity.ERROR, "Egress blocked: calls land in BlackHoleCluster",
         "{source}'s calls to hosts outside its registry go to BlackHoleCluster ({blocked_rps} req/s, "
         "{blocked_cx} conn/s): {because}"),
    Code("MSH0416", Severity.ERROR, "No route for a host (404 NR)",
         "{source} answers 404 NR (no route configured) to {rps} for host {host}; {claims}",
         symptom="errors"),
]
