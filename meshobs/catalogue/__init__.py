"""Every finding code meshobs can emit, listed once.

``MSH`` + four digits; the hundreds say the category: 00xx internal, 01xx proxy health,
02xx configuration and drift, 03xx certificates and identity, 04xx traffic, 05xx traces and
slow hops. Each code has a severity, a title, a message template with named fields and a docs
page ``docs/findings/<CODE>.md`` (shipped in the package: ``meshobs explain <CODE>``). The
per-category lists live in the modules beside this one.

A code also carries its role in root-cause ranking (``meshobs.engine.ranking``): a *symptom*
("errors" or "latency" that callers see, or "routing": traffic going elsewhere than configured)
is explained by *causes*; a cause produces the kinds of symptom in ``effects`` (by default
latency for slow hops, errors for everything else), and its ``signature`` names the response
codes and Envoy flags of the requests it breaks ("403", "UH"), so the ranking can tell the
cause the traffic points at from one that merely could explain errors. A finding with a
*deadline* (a certificate running out) is a fault that has not happened yet: it explains nothing
today (``effects=()``), and the ranking surfaces it in the report of every service that calls
through it.

A fourth kind, "config", is about configuration delivery rather than the call graph: proxies that
do not run the configuration they should (routes that differ from the VirtualService, a split
that does not follow the weights). Such a symptom is explained by a cause with "config" in its
``effects`` on the same proxies (a rejected or unacknowledged push) or by the control plane.
A proxy state that is itself a cause of errors can also *follow from* a delivery fault
(``follows_from="config"``: not ready because it never got its configuration, warming,
disconnected): the control plane failing explains it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def weight(self) -> int:
        return _WEIGHTS[self]


# Outside the enum (a member there would be a severity); a --all ranks a million findings' weights.
_WEIGHTS = {Severity.ERROR: 3, Severity.WARNING: 2, Severity.INFO: 1}


class Category(StrEnum):
    """Checklist order is the declaration order."""

    INTERNAL = "internal"
    PROXY = "proxy health"
    CONFIG = "configuration"
    CERTS = "certificates and identity"
    TRAFFIC = "traffic"
    TRACES = "slow hops"

    @property
    def order(self) -> int:
        return list(Category).index(self)


RANGES = {
    Category.INTERNAL: range(0, 100), Category.PROXY: range(100, 200),
    Category.CONFIG: range(200, 300), Category.CERTS: range(300, 400),
    Category.TRAFFIC: range(400, 500), Category.TRACES: range(500, 600),
}


SYMPTOM_KINDS = ("errors", "latency", "routing", "config")
# The symptom kinds the ranking walks down the call graph; "routing" stays with its service,
# "config" is linked by proxies instead.
CALL_GRAPH_KINDS = ("errors", "latency")


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str
    template: str  # str.format template with named fields
    # Ranking role. A symptom is what callers see ("errors" or "latency"); it is explained by
    # causes, never a cause itself.
    symptom: str | None = None
    # The kinds of symptom this code can cause upstream; None means the category's default
    # (latency for slow hops, errors otherwise). Info and internal codes cause nothing.
    effects: tuple[str, ...] | None = None
    # A fault with a date: nothing fails yet, everything through it will (a certificate that
    # expires in hours). The ranking surfaces it for every caller, right after the current fault.
    deadline: bool = False
    # A cause that is itself what callers see of that kind of failure ("latency": callers time
    # out on a service that may only be waiting on its own callee): the ranking looks below it
    # for what explains it, as it does for a symptom.
    passes_on: str | None = None
    # A cause that can itself be the consequence of a fault of this kind ("config": a proxy
    # state a configuration-delivery fault explains); it stays a cause of ``effects``.
    follows_from: str | None = None
    # What the requests this cause breaks look like: HTTP status codes ("403") and Envoy response
    # flags ("UH", "NR"). A symptom whose errors carry them is explained by this cause first;
    # one whose errors are known and carry none of them is not explained by it at all.
    signature: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in (self.symptom, self.passes_on, self.follows_from, *(self.effects or ())):
            if kind is not None and kind not in SYMPTOM_KINDS:
                raise ValueError(f"{self.code}: unknown symptom kind {kind!r} (one of {SYMPTOM_KINDS})")
        for token in self.signature:
            if not (token.isdigit() and len(token) == 3) and not (token.isalpha() and token.isupper()):
                raise ValueError(f"{self.code}: signature {token!r} is neither a status code nor a response flag")

    @property
    def causes(self) -> frozenset[str]:
        """The kinds of symptom a finding of this code can explain (empty for symptoms, info
        and internal codes)."""
        if self.symptom is not None or self.severity is Severity.INFO or self.category is Category.INTERNAL:
            return frozenset()
        if self.effects is not None:
            return frozenset(self.effects)
        return frozenset({"latency"}) if self.category is Category.TRACES else frozenset({"errors"})

    @property
    def number(self) -> int:
        return int(self.code[3:])

    @property
    def category(self) -> Category:
        for cat, rng in RANGES.items():
            if self.number in rng:
                return cat
        raise ValueError(f"{self.code} is outside every category range")

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.template) if name)

    @property
    def doc(self) -> str:
        """Where to read the page: a command every install has (the page ships in the package;
        ``docs/findings/<CODE>.md`` in the repository is its source)."""
        return f"meshobs explain {self.code}"

    def render(self, fields: dict[str, object]) -> str:
        missing = self.fields - fields.keys()
        if missing:
            raise KeyError(f"{self.code}: template fields not supplied: {', '.join(sorted(missing))}")
        return self.template.format(**fields)


def _load() -> dict[str, Code]:
    from . import appmesh, certs, config, internal, networking, proxy, security, traces, traffic, workloads

    out: dict[str, Code] = {}
    for module in (internal, proxy, config, networking, security, workloads, appmesh, certs, traffic, traces):
        for c in module.CODES:
            if c.code in out:
                raise ValueError(f"duplicate finding code {c.code}")
            out[c.code] = c
    return out


CATALOGUE: dict[str, Code] = _load()


def lookup(code: str) -> Code:
    return CATALOGUE[code]
