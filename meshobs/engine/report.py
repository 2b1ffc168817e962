"""What a diagnosis produces: the checklist, the ranked findings, the sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from meshobs.catalogue import Category, Severity
from meshobs.checks.base import Finding
from meshobs.model import ServiceRef
from meshobs.suppress import Suppression
from meshobs.timeline import Timeline

PASS, WARN, FAIL, SKIPPED, ERROR = "pass", "warn", "fail", "skipped", "error"
JUDGED = (PASS, WARN, FAIL)  # the check looked at data and reached a verdict


@dataclass(frozen=True)
class CheckResult:
    """One line of the checklist. ``reason`` says why a check was skipped or errored."""

    id: str
    category: Category
    status: str  # pass | warn | fail | skipped | error
    reason: str = ""
    description: str = ""
    kind: str = "check"  # check (judges a service) | analyzer (judges configuration resources)
    # Ran, but the data could not support a verdict (CouldNotCheck: no requests in the window...).
    could_not_check: bool = False


@dataclass(frozen=True)
class SourceResult:
    name: str
    status: str  # ok | error | no data
    error: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Report:
    """The diagnosis of one service. ``findings`` are ranked: ``findings[0]`` is rank 1."""

    service: ServiceRef
    status: str  # healthy | degraded | failing | unknown
    findings: tuple[Finding, ...]
    checks: tuple[CheckResult, ...]
    sources: tuple[SourceResult, ...]
    suppressed: tuple[tuple[Finding, Suppression], ...] = ()
    time: datetime | None = None
    origin: str = ""
    # When the symptoms of the service and of what it calls started, and what changed before.
    timeline: Timeline = field(default_factory=Timeline)

    @property
    def namespace(self) -> str:
        return self.service.namespace

    def worst(self) -> Severity | None:
        """The highest severity among the (unsuppressed) findings."""
        return max((f.severity for f in self.findings), key=lambda s: s.weight, default=None)


@dataclass(frozen=True)
class MeshReport:
    """``diagnose --all``: one report per service, plus the mesh-wide status."""

    reports: tuple[Report, ...]
    status: str
    sources: tuple[SourceResult, ...]
    time: datetime | None = None
    origin: str = ""
    # Not tied to a service: sources that failed (MSH0002), analyzer findings touching no
    # service (a Gateway conflict, a selector matching nothing).
    mesh_findings: tuple[Finding, ...] = field(default=())
    analyzers: tuple[CheckResult, ...] = ()  # each analyzer's verdict on the whole mesh
    timeline: Timeline = field(default_factory=Timeline)  # the whole mesh's

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.mesh_findings + tuple(f for r in self.reports for f in r.findings)


def status_of(findings: tuple[Finding, ...] | list[Finding], answered: bool, judged: bool = True) -> str:
    """healthy | degraded (warnings) | failing (errors) | unknown (no source answered, or no
    check could judge anything: no data is not health)."""
    if not answered:
        return "unknown"
    weights = {f.severity.weight for f in findings}
    if Severity.ERROR.weight in weights:
        return "failing"
    if Severity.WARNING.weight in weights:
        return "degraded"
    return "healthy" if judged else "unknown"


def judged(results: tuple[CheckResult, ...] | list[CheckResult]) -> bool:
    """Can the checks vouch for the service? At least one reached a verdict, and when traffic
    checks ran, at least one of them did: traffic is what says a service works, so a window
    without its requests leaves its health unknown however well its proxies and configuration
    look (an idle service is "unknown", never "healthy")."""
    if not any(r.status in JUDGED for r in results):
        return False
    traffic = [r for r in results if r.category is Category.TRAFFIC and (r.status in JUDGED or r.could_not_check)]
    return not traffic or any(r.status in JUDGED for r in traffic)
