"""Every App Mesh field, accounted for: translated, or listed with the reason and the closest
Istio equivalent.

The translators mark what they consume (:meth:`Ledger.used`) and what they cannot carry over
(:meth:`Ledger.untranslatable`); :meth:`Ledger.close` then walks every leaf of every input
spec, so a field no rule looked at is listed too (``no-rule``) instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshobs.model import ConfigResource, thaw

TRANSLATED, UNTRANSLATABLE, NO_RULE, CHANGED = "translated", "untranslatable", "no-rule", "behaviour-change"


@dataclass(frozen=True)
class Entry:
    """One field (or a whole subtree) of one App Mesh resource and what became of it."""

    resource: str  # "VirtualNode shop/cart-v1"
    path: str  # "spec.listeners[0].healthCheck"
    status: str  # translated | untranslatable | no-rule | behaviour-change
    reason: str = ""
    closest: str = ""  # the nearest Istio (or Kubernetes) construct, for people to act on

    def to_json(self) -> dict[str, str]:
        return {"resource": self.resource, "path": self.path, "status": self.status,
                "reason": self.reason, "closest": self.closest}


def _leaves(value: Any, path: str) -> Iterator[str]:
    """Paths of the values in ``value`` (an empty map or list says nothing to translate)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    elif value is not None:
        yield path


def describe(resource: ConfigResource) -> str:
    """``VirtualNode shop/cart-v1``; ``Mesh shop`` (cluster-scoped: no namespace)."""
    where = f"{resource.namespace}/{resource.name}" if resource.namespace else resource.name
    return f"{resource.kind} {where}"


def _covers(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)
    translated: int = 0  # leaf fields that became Istio configuration (set by close)
    _used: dict[str, set[str]] = field(default_factory=dict)

    def used(self, resource: ConfigResource, *paths: str) -> None:
        """``paths`` (and everything under them) became Istio configuration."""
        self._used.setdefault(describe(resource), set()).update(paths)

    def untranslatable(self, resource: ConfigResource, path: str, reason: str, closest: str = "") -> None:
        self.entries.append(Entry(describe(resource), path, UNTRANSLATABLE, reason, closest))
        self._used.setdefault(describe(resource), set()).add(path)

    def touched(self, resource: ConfigResource) -> bool:
        """Did any rule look at this resource?"""
        return bool(self._used.get(describe(resource)))

    def changed(self, resource: ConfigResource, path: str, reason: str, closest: str = "") -> None:
        """A behaviour that differs by default (nothing was written in App Mesh, Istio's default
        is different): listed so nobody is surprised, without consuming a field."""
        self.entries.append(Entry(describe(resource), path, CHANGED, reason, closest))

    def close(self, resources: list[ConfigResource]) -> None:
        """List every leaf field no rule consumed (``no-rule``) and count the translated ones."""
        self.translated = 0
        for r in resources:
            spec = thaw(r.spec) if r.spec else {}
            spec = {k: v for k, v in spec.items() if k not in ("meshobs", "status")} if isinstance(spec, dict) else {}
            marks = self._used.get(describe(r), set())
            listed = {e.path for e in self.entries if e.resource == describe(r) and e.status == UNTRANSLATABLE}
            missing: list[str] = []
            for leaf in _leaves(spec, "spec"):
                if leaf == "spec":
                    continue
                if any(_covers(m, leaf) for m in marks):
                    if not any(_covers(m, leaf) for m in listed):
                        self.translated += 1
                    continue
                missing.append(leaf)
            for leaf in missing:
                self.entries.append(Entry(describe(r), leaf, NO_RULE, "meshobs has no translation rule for this field",
                                          "review it by hand"))

    def of_status(self, status: str) -> list[Entry]:
        return [e for e in self.entries if e.status == status]
