"""Suppressions: ``suppress: [{code, subject, reason, until}]`` in meshobs.yaml.

A suppressed finding is still reported (in its own list, with the reason) but no longer counts
for the status or the exit code. ``until`` makes a suppression temporary: once the snapshot's
time is past it, the suppression stops applying, so a forgotten one cannot hide a problem
forever. ``subject`` may be a shell-style pattern (``Workload default/*``) or omitted (any).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from meshobs.checks.base import Finding
from meshobs.raw import parse_iso


@dataclass(frozen=True)
class Suppression:
    code: str
    subject: str = "*"
    reason: str = ""
    until: datetime | None = None

    def expired(self, at: datetime) -> bool:
        return self.until is not None and self.until < at

    def matches(self, f: Finding) -> bool:
        return fnmatchcase(f.code, self.code) and fnmatchcase(f.subject, self.subject)


def parse(entries: Iterable[dict[str, Any]] | None) -> list[Suppression]:
    """Suppressions from the (already schema-validated) ``suppress`` list of the config."""
    out: list[Suppression] = []
    for i, e in enumerate(entries or []):
        if not e.get("code"):
            from meshobs.config import ConfigError

            raise ConfigError(f"suppress[{i}].code: required (a code such as MSH0401)")
        until = e.get("until")
        when = until if isinstance(until, datetime) else (parse_iso(str(until)) if until else None)
        if when is not None and when.tzinfo is None:  # YAML timestamps may come back naive
            when = when.replace(tzinfo=UTC)
        out.append(Suppression(code=str(e["code"]), subject=str(e.get("subject") or "*"),
                               reason=str(e.get("reason") or ""), until=when))
    return out


def apply(findings: Iterable[Finding], suppressions: list[Suppression], at: datetime
          ) -> tuple[list[Finding], list[tuple[Finding, Suppression]]]:
    """Split findings into (kept, suppressed with the suppression that matched)."""
    active = [s for s in suppressions if not s.expired(at)]
    kept: list[Finding] = []
    hidden: list[tuple[Finding, Suppression]] = []
    for f in findings:
        match = next((s for s in active if s.matches(f)), None)
        if match is None:
            kept.append(f)
        else:
            hidden.append((f, match))
    return kept, hidden
