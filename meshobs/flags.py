"""Envoy response flags (``%RESPONSE_FLAGS%``, Istio's ``response_flags`` label) and what they mean.

Source: Envoy's access-log documentation, summarised in the shared signals reference. The
diagnosis quotes these meanings next to the rates so a reader does not have to look them up.
"""

from __future__ import annotations

FLAG_MEANINGS: dict[str, str] = {
    "UH": "no healthy upstream host",
    "UF": "upstream connection failure",
    "UO": "upstream overflow (circuit breaker tripped)",
    "NR": "no route configured",
    "URX": "upstream retry limit exceeded",
    "UC": "upstream connection terminated (often an mTLS mismatch)",
    "UT": "upstream request timeout",
    "DC": "downstream connection terminated",
    "LR": "connection local reset",
    "UR": "upstream remote reset",
    "LH": "failed local health check",
    "DI": "delay injected",
    "FI": "fault injected",
    "RL": "rate limited locally",
    "UAEX": "unauthorised by external authorisation",
    "RLSE": "rate limit service error",
    "SI": "stream idle timeout",
    "IH": "invalid Envoy request headers",
    "DPE": "downstream protocol error",
    "UPE": "upstream protocol error",
    "UMSDR": "upstream max stream duration reached",
    "NC": "no cluster found",
    "DT": "request duration timeout",
    "OM": "overload manager terminated the request",
    "DF": "DNS resolution failed",
    "-": "no flag: the upstream answered the error itself",
}

# Which flags point at which kind of cause: used to link a symptom to its explanation.
FLAG_CAUSES: dict[str, str] = {
    "UH": "endpoints", "UF": "endpoints", "LH": "endpoints", "URX": "endpoints",
    "UO": "saturation", "RL": "saturation", "OM": "saturation",
    "UC": "identity", "UPE": "identity",
    "NR": "config", "NC": "config",
    "UT": "latency", "DT": "latency", "SI": "latency", "UMSDR": "latency",
}


def meaning(flag: str) -> str:
    """What an Envoy response flag means (unknown flags say so rather than guess)."""
    return FLAG_MEANINGS.get(flag, "unknown Envoy response flag")


def describe(flags: str) -> str:
    """``"UH,URX"`` -> ``"UH (no healthy upstream host), URX (upstream retry limit exceeded)"``."""
    parts = [f for f in flags.split(",") if f] or ["-"]
    return ", ".join(f"{f} ({meaning(f)})" for f in parts)
