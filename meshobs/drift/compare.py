"""Pairwise comparison of two configuration layers (intended <-> live), on canonical forms.

Each difference is a :class:`Drift`: the resource, the layer pair, the field path, both values
(``None`` = absent), a category, a severity and the finding code ``diagnose`` reports it under
(:func:`code_of`; the catalogue's severity of that code is the difference's). Severities, chosen
by what the difference can do to traffic:

* **error**: traffic goes somewhere else or is secured differently: route weights and
  destinations, match conditions, subsets, TLS/mTLS settings, a resource that is in Git but was
  never applied (intended-only), routes or clusters a proxy lacks;
* **warning**: traffic behaves differently on failure or the object is labelled differently:
  retries, timeouts, fault injection, labels, annotations, any other spec field, and a resource
  created by hand (live-only: it may be a legitimate hot fix, it is not in Git).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from meshobs.catalogue import Severity as Severity  # re-exported: one severity for diagnose and drift
from meshobs.model import ConfigResource

from .normalise import SERVER_FILLED, Keyed, ResourceId, canonical

INTENDED_LIVE = "intended-live"
LIVE_EFFECTIVE = "live-effective"
INTENDED_EFFECTIVE = "intended-effective"
PAIRS = (INTENDED_LIVE, LIVE_EFFECTIVE, INTENDED_EFFECTIVE)


# One severity for `diagnose` and `drift`: the catalogue's. Every difference carries the code
# `diagnose` reports it under (:func:`code_of`), and the code's severity is the difference's.
EFFECTIVE_CODES = {"weight": "MSH0203", "destination": "MSH0203", "routes": "MSH0203", "match": "MSH0203",
                   "retries": "MSH0204", "timeout": "MSH0204", "subset": "MSH0280", "tls": "MSH0281"}


def code_of(layers: str, category: str, presence: str | None, severity: Severity) -> str | None:
    """The finding code of one difference (None for layer pairs other than drift's, e.g.
    ``migrate verify``'s before-after)."""
    if layers == INTENDED_LIVE:
        if presence is not None:
            return "MSH0284" if presence == "intended-only" else "MSH0285"
        return "MSH0283" if severity is Severity.ERROR else "MSH0207"
    if layers in (LIVE_EFFECTIVE, INTENDED_EFFECTIVE):
        return EFFECTIVE_CODES.get(category) or ("MSH0203" if severity is Severity.ERROR else "MSH0204")
    return None


@dataclass(frozen=True)
class Drift:
    """One difference between two layers.

    ``left``/``right`` are the values in the first and second layer of ``layers`` (``None`` when
    the field or resource is absent there). For effective drift ``proxies`` names the proxies
    whose configuration differs and ``per_proxy`` what each of them holds.
    """

    resource: ResourceId
    layers: str
    path: str
    left: Any
    right: Any
    category: str
    severity: Severity
    proxies: tuple[str, ...] = ()
    per_proxy: tuple[tuple[str, Any], ...] = ()
    ignored: str | None = None  # the reason of the ignore rule that matched
    extra: tuple[tuple[str, Any], ...] = field(default=())  # e.g. ("note", "...")

    @property
    def id(self) -> str:
        """Stable across runs: the same field of the same resource in the same layer pair."""
        r = self.resource
        text = "\x1f".join((self.layers, r.mesh, r.kind, r.namespace, r.name, self.path))
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def code(self) -> str | None:
        """The code ``diagnose`` reports this difference under (see :func:`code_of`)."""
        return code_of(self.layers, self.category, self.presence, self.severity)

    @property
    def presence(self) -> str | None:
        """``intended-only``/``live-only``... when a whole resource is missing on one side."""
        if self.path:
            return None
        first, second = self.layers.split("-", 1)
        return f"{first}-only" if self.right is None else f"{second}-only"

    def with_ignore(self, reason: str) -> Drift:
        return replace(self, ignored=reason)

    def to_json(self) -> dict[str, Any]:
        first, second = self.layers.split("-", 1)
        return {
            "id": self.id, "code": self.code, "resource": {"mesh": self.resource.mesh, "kind": self.resource.kind,
                                        "namespace": self.resource.namespace, "name": self.resource.name},
            "layers": self.layers, "path": self.path, first: self.left, second: self.right,
            "category": self.category, "severity": self.severity.value,
            "presence": self.presence, "proxies": list(self.proxies),
            "per_proxy": {p: v for p, v in self.per_proxy}, "ignored": self.ignored,
            **{k: v for k, v in self.extra},
        }


def classify(path: str) -> tuple[str, Severity]:
    """Category and severity of a difference at ``path`` (see the module docstring)."""
    # Bracketed keys are host names and subset names: "tls" or "match" inside them says nothing.
    p = re.sub(r"\[[^\]]*\]", "[]", path.lower())
    rules: tuple[tuple[tuple[str, ...], str, Severity], ...] = (
        (("weight",), "weight", Severity.ERROR),
        (("tls", "mtls"), "tls", Severity.ERROR),
        (("retries", "retrypolicy", "retry"), "retries", Severity.WARNING),
        (("timeout",), "timeout", Severity.WARNING),
        (("subsets", "clusters"), "subset", Severity.ERROR),
        (("match",), "match", Severity.ERROR),
        (("fault",), "fault", Severity.WARNING),
    )
    for needles, category, severity in rules:
        if any(n in p for n in needles):
            return category, severity
    if p.startswith("labels"):
        return "labels", Severity.WARNING
    if p.startswith("annotations"):
        return "annotations", Severity.WARNING
    if ".route[]" in p or p.endswith(".route") or "destination" in p:
        return "destination", Severity.ERROR
    if re.search(r"(^|\.)(http|tcp|routes|virtual_hosts)(\[\])?$", p):
        return "routes", Severity.ERROR
    return "spec", Severity.WARNING


def diff(left: Any, right: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Leaf differences between two canonical values: ``(path, left, right)``, None = absent."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        out: list[tuple[str, Any, Any]] = []
        keyed = isinstance(left, Keyed) or isinstance(right, Keyed)
        for key in sorted(set(left) | set(right), key=str):
            child = f"{path}[{key}]" if keyed else (f"{path}.{key}" if path else str(key))
            if key not in left:
                out.append((child, None, right[key]))
            elif key not in right:
                out.append((child, left[key], None))
            else:
                out.extend(diff(left[key], right[key], child))
        return out
    if isinstance(left, list) and isinstance(right, list):
        out = []
        for i in range(max(len(left), len(right))):
            child = f"{path}[{i}]"
            if i >= len(left):
                out.append((child, None, right[i]))
            elif i >= len(right):
                out.append((child, left[i], None))
            else:
                out.extend(diff(left[i], right[i], child))
        return out
    return [] if left == right else [(path, plain(left), plain(right))]


def plain(value: Any) -> Any:
    """Keyed tables back to plain dicts (for JSON output)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def index(resources: Iterable[ConfigResource]) -> dict[ResourceId, ConfigResource]:
    """Resources by identity; a later duplicate (same resource in two files) wins."""
    return {ResourceId.of(r): r for r in resources}


def compare_resources(left: Iterable[ConfigResource], right: Iterable[ConfigResource], layers: str, *,
                      right_scope: set[str] | None = None) -> list[Drift]:
    """Every difference between two layers of resources.

    ``right_scope``: the namespaces in which a resource present only on the right side is
    reported (a Git directory usually covers some namespaces, not the whole cluster); ``None``
    reports them everywhere.
    """
    a, b = index(left), index(right)
    out: list[Drift] = []
    for rid in sorted(set(a) | set(b)):
        if rid not in b:
            out.append(Drift(rid, layers, "", "present", None, "presence", Severity.ERROR))
            continue
        if rid not in a:
            if right_scope is None or rid.namespace in right_scope:
                out.append(Drift(rid, layers, "", None, "present", "presence", Severity.WARNING))
            continue
        ca, cb = canonical(a[rid]), canonical(b[rid])
        for key in [k for (m, k) in SERVER_FILLED if m == rid.mesh]:
            if key not in ca["spec"]:
                cb["spec"].pop(key, None)
        for path, lv, rv in diff(ca, cb):
            category, severity = classify(path)
            out.append(Drift(rid, layers, path, lv, rv, category, severity))
    return out
