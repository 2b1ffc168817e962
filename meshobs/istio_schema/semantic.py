"""What Istio's validation webhook checks beyond the OpenAPI schema (its ``pkg/config/validation``
and, from Istio 1.22, the CRDs' CEL rules), for the fields the vendored 1.18 schemas leave as
plain strings or numbers:

* **durations** (``duration``): Go/protobuf duration text (``1.5s``, ``500ms``, ``1m30s``),
  at least 1 ms, to the millisecond (Istio rejects ``0s`` and ``100us`` timeouts);
* **route weights** (``weights``): no negative weight (error); several destinations whose
  weights add up to 0 (error: Istio rejects it); weights that do not add up to 100 (warning:
  the API says they should, current Istio normalises relative weights, older releases
  rejected them);
* **retries** (``retry-on``, ``range``): every ``retryOn`` condition is one Envoy knows (or an
  HTTP status code), ``attempts`` is not negative;
* **outlier detection** (``range``): ``maxEjectionPercent`` within 0..100.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from . import WARNING, SchemaIssue

_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Fields holding a google.protobuf.Duration in the kinds checked here.
DURATION_FIELDS = frozenset({
    "timeout", "perTryTimeout", "fixedDelay", "exponentialDelay", "maxAge", "connectTimeout",
    "interval", "baseEjectionTime", "maxConnectionDuration", "idleTimeout", "ttl", "time",
    "warmupDurationSecs", "drainDuration",
})
DURATION_KINDS = frozenset({"VirtualService", "DestinationRule", "Sidecar", "Gateway", "ServiceEntry"})
# Envoy's retry_on conditions Istio accepts (pkg/config/validation: validRetryOnPolicies).
RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal", "resource-exhausted",
    "unavailable",
})


def duration_seconds(text: str) -> float | None:
    """A duration in seconds, or None when it is not one."""
    text = text.strip()
    if not _DURATION.match(text):
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(text))


def semantic_issues(kind: str, obj: Mapping[str, Any]) -> list[SchemaIssue]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    out: list[SchemaIssue] = []
    if kind in DURATION_KINDS:
        out += list(_durations(spec, "spec"))
    if kind == "VirtualService":
        for section in ("http", "tcp", "tls"):
            for i, route in enumerate(_maps(spec.get(section))):
                base = f"spec.{section}[{i}]"
                out += _weights(route.get("route"), f"{base}.route")
                if section == "http" and isinstance(route.get("retries"), Mapping):
                    out += _retries(route["retries"], f"{base}.retries")
    if kind == "DestinationRule":
        policies = [("spec.trafficPolicy", spec.get("trafficPolicy"))]
        policies += [(f"spec.subsets[{i}].trafficPolicy", s.get("trafficPolicy"))
                     for i, s in enumerate(_maps(spec.get("subsets")))]
        for path, policy in policies:
            od = policy.get("outlierDetection") if isinstance(policy, Mapping) else None
            if isinstance(od, Mapping) and _number(od.get("maxEjectionPercent")) not in (None,) and \
                    not 0 <= float(od["maxEjectionPercent"]) <= 100:
                out.append(SchemaIssue(f"{path}.outlierDetection.maxEjectionPercent", "range",
                                       "maxEjectionPercent must be within 0..100"))
    return out


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _durations(node: Any, path: str) -> Iterator[SchemaIssue]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            child = f"{path}.{key}"
            if key in DURATION_FIELDS and isinstance(value, str):
                issue = _duration(value, child)
                if issue is not None:
                    yield issue
            else:
                yield from _durations(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _durations(value, f"{path}[{i}]")


def _duration(text: str, path: str) -> SchemaIssue | None:
    seconds = duration_seconds(text)
    if seconds is None:
        return SchemaIssue(path, "duration", f"{text!r} is not a duration (e.g. 1.5s, 500ms, 1m)")
    if seconds < 1e-3 - 1e-12:
        return SchemaIssue(path, "duration", f"{text!r}: a duration must be at least 1ms")
    if abs(seconds * 1000 - round(seconds * 1000)) > 1e-6:
        return SchemaIssue(path, "duration", f"{text!r}: only millisecond precision is supported")
    return None


def _weights(route: Any, path: str) -> list[SchemaIssue]:
    dests = _maps(route)
    out: list[SchemaIssue] = []
    weights = []
    for i, d in enumerate(dests):
        w = _number(d.get("weight"))
        if w is not None and w < 0:
            out.append(SchemaIssue(f"{path}[{i}].weight", "range", f"weight {w:g} is negative"))
        weights.append(w)
    given = [w for w in weights if w is not None]
    if not given:
        return out
    total = sum(given)
    if len(dests) > 1 and total == 0:
        out.append(SchemaIssue(path, "weights", "the destinations' weights add up to 0: no traffic can be routed"))
    elif total != 100 and (len(dests) > 1 or total != 0):
        out.append(SchemaIssue(path, "weights", f"the destinations' weights add up to {total:g}, not 100",
                               WARNING))
    return out


def _retries(retries: Mapping[str, Any], path: str) -> list[SchemaIssue]:
    out: list[SchemaIssue] = []
    attempts = _number(retries.get("attempts"))
    if attempts is not None and attempts < 0:
        out.append(SchemaIssue(f"{path}.attempts", "range", f"attempts {attempts:g} is negative"))
    retry_on = retries.get("retryOn")
    if isinstance(retry_on, str):
        for token in (t.strip() for t in retry_on.split(",")):
            if not token:
                continue
            if token.isdigit() and 100 <= int(token) <= 599:
                continue
            if token not in RETRY_ON:
                out.append(SchemaIssue(f"{path}.retryOn", "retry-on",
                                       f"{token!r} is not a retry condition Envoy knows "
                                       f"({', '.join(sorted(RETRY_ON))}, or an HTTP status code)"))
    return out
