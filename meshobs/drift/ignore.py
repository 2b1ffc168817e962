"""Ignore rules: differences that are expected (a controller manages the field), with a reason.

A rule matches a drift when every field it sets matches (shell-style globs, ``*`` for any):
``kind``, ``namespace``, ``name``, ``layers`` (``intended-live`` ...) and ``path``; a path also
matches everything below it (``annotations.team.example/owner`` covers that key,
``spec.http[0].retries`` covers ``.attempts``). Ignored drift is still reported, marked with the
rule's reason, but does not count for the exit code or the metrics.

Configured in ``meshobs.yaml``::

    drift:
      ignore:
        - kind: VirtualService
          namespace: shop
          path: annotations.autoscaler.example.com/*
          reason: written by the autoscaler controller
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from meshobs.config import ConfigError

from .compare import INTENDED_LIVE, Drift


@dataclass(frozen=True)
class IgnoreRule:
    """One expected difference; empty fields match anything."""

    reason: str
    kind: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    layers: str = ""
    builtin: bool = False

    def matches(self, drift: Drift) -> bool:
        r = drift.resource
        for pattern, value in ((self.kind, r.kind), (self.namespace, r.namespace), (self.name, r.name),
                               (self.layers, drift.layers)):
            if pattern and not fnmatchcase(value, pattern):
                return False
        if not self.path:
            return True
        return (fnmatchcase(drift.path, self.path) or drift.path.startswith(self.path + ".")
                or drift.path.startswith(self.path + "["))


# Fields GitOps controllers write onto the live objects they manage: never in Git, always live.
BUILTIN = (
    IgnoreRule("Argo CD records which Application manages the object (annotation tracking)",
               path="annotations.argocd.argoproj.io/tracking-id", layers=INTENDED_LIVE, builtin=True),
    IgnoreRule("Flux labels the objects its Kustomization applied",
               path="labels.kustomize.toolkit.fluxcd.io/*", layers=INTENDED_LIVE, builtin=True),
    IgnoreRule("Helm records the release on objects it installed",
               path="annotations.meta.helm.sh/release-*", layers=INTENDED_LIVE, builtin=True),
)


def rules_from_config(entries: Iterable[Mapping[str, Any]] | None, *, builtin: bool = True) -> list[IgnoreRule]:
    """``drift.ignore`` entries -> rules; a rule without a reason is a configuration error."""
    out = list(BUILTIN) if builtin else []
    for i, entry in enumerate(entries or []):
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise ConfigError(f"drift.ignore[{i}].reason: every ignore rule needs a reason "
                              "(say who changes the field and why)")
        if not any(entry.get(k) for k in ("kind", "namespace", "name", "path")):
            raise ConfigError(f"drift.ignore[{i}]: set at least one of kind, namespace, name, path "
                              "(a rule matching everything would hide all drift)")
        text = {k: str(entry.get(k) or "") for k in ("kind", "namespace", "name", "path", "layers")}
        out.append(IgnoreRule(reason=reason, kind=text["kind"], namespace=text["namespace"],
                              name=text["name"], path=text["path"], layers=text["layers"]))
    return out


def apply(drifts: Iterable[Drift], rules: Iterable[IgnoreRule]) -> list[Drift]:
    """Mark each drift an ignore rule matches (the first matching rule's reason)."""
    rules = list(rules)
    out = []
    for d in drifts:
        rule = next((r for r in rules if r.matches(d)), None)
        out.append(d.with_ignore(rule.reason) if rule else d)
    return out
