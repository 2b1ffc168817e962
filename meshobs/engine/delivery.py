"""Configuration delivery in the ranking: the "config" kind is linked by proxies, not by calls.

A proxy that does not run the configuration it should shows it in several findings: the routes
that differ from the VirtualService (a "config" symptom), a split that does not follow the
weights, a cluster still warming, a proxy never configured. What explains them is on the same
proxies -- a push they rejected or have not acknowledged -- or in the control plane that
failed to send it. Who calls whom has nothing to do with it: the drifted routes are filed under
the VirtualService's service, the rejected push under the caller whose proxies hold them.

So, per diagnosis, every finding that can follow from a delivery fault (its code's
``symptom == "config"`` or ``follows_from == "config"``) is linked to the causes with "config"
in their ``effects`` that concern it:

- a mesh-level cause (istiod not ready, failing pushes) concerns every proxy;
- a proxy-level cause concerns the findings about the same workloads (``Finding.workloads``);
  between two findings about single proxies (``Proxy ...`` subjects), only the same proxy.

A finding that both explains and follows from delivery (a disconnected proxy) is explained only
by the control plane, so two proxies of one workload never explain each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from meshobs.catalogue import CATALOGUE
from meshobs.checks.base import Finding

CONFIG = "config"


def follows_delivery(f: Finding) -> bool:
    """Can a configuration-delivery fault explain ``f``?"""
    code = CATALOGUE[f.code]
    return code.symptom == CONFIG or code.follows_from == CONFIG


def causes_delivery(f: Finding) -> bool:
    """Does ``f`` leave proxies without their configuration?"""
    return CONFIG in CATALOGUE[f.code].causes


def concerns(cause: Finding, finding: Finding, mesh_level: bool) -> bool:
    """Does ``cause`` (a delivery fault) explain ``finding``?"""
    if cause is finding or cause.identity == finding.identity:
        return False
    if mesh_level:
        return True
    if CATALOGUE[cause.code].follows_from == CONFIG and CATALOGUE[finding.code].follows_from == CONFIG:
        return False
    if not set(cause.workloads) & set(finding.workloads):
        return False
    proxies = cause.subject.startswith("Proxy ") and finding.subject.startswith("Proxy ")
    return not proxies or cause.subject == finding.subject


def links(findings: Iterable[Finding], mesh_causes: Iterable[Finding],
          candidates: Callable[[Finding], Iterable[Finding]]) -> list[tuple[Finding, Finding]]:
    """(cause, finding) pairs: each delivery-explainable finding with the causes that concern it,
    from the mesh-level causes and ``candidates(finding)`` (the findings about its workloads)."""
    mesh = [c for c in mesh_causes if causes_delivery(c)]
    out: list[tuple[Finding, Finding]] = []
    for f in findings:
        if not follows_delivery(f):
            continue
        out += [(c, f) for c in mesh if concerns(c, f, True)]
        out += [(c, f) for c in candidates(f) if causes_delivery(c) and concerns(c, f, False)]
    return out
