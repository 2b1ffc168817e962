"""Spec fields later Istio releases added that the vendored 1.18 schemas do not know.

The vendored schemas (``schemas/PROVENANCE.md``) close every object, so a field added after
Istio 1.18 (``mirrors``, ``warmup``, ``targetRefs``...) reads as ``unknown-field``, although the
cluster's Istio may well accept it. A configuration analyzer must not call valid configuration
wrong, so it does not report an unknown field whose name a later release's CRDs define for the
same API group (it says so in its evidence instead).

Provenance: the field names of the Istio 1.24 CRDs as generated into the PyPI package
``cloudcoil-models-istio`` 1.24.2.1 (Apache-2.0; pydantic models generated from the CRDs, aliases
= the CRDs' JSON names), minus the names the vendored 1.18 schemas already have, minus status
fields (a status is never validated here). Regenerate when the vendored schemas move on.
"""

from __future__ import annotations

NEWER_FIELDS: dict[str, frozenset[str]] = {
    "networking.istio.io": frozenset({
        "aggression", "caCrl", "duration", "inboundConnectionPool", "maxConcurrentStreams", "minimumPercent",
        "mirrors", "proxyProtocol", "targetRefs", "unmatchedPreflights", "uriRegexRewrite", "version", "warmup",
    }),
    "security.istio.io": frozenset({"fromCookies", "targetRef", "targetRefs", "timeout"}),
    "telemetry.istio.io": frozenset({"targetRef", "targetRefs"}),
    "extensions.istio.io": frozenset({"failStrategy", "targetRef", "targetRefs"}),
}


def newer_field(api_version: str, name: str) -> bool:
    """Is ``name`` a field of this API group that Istio releases after 1.18 define?"""
    return name in NEWER_FIELDS.get(api_version.split("/", 1)[0], frozenset())
