"""What a diagnosis of a scenario must conclude: the machine-readable half of its ground truth.

An :class:`Expectation` names the *kind* of cause (a word from :data:`CAUSE_KINDS`) and the
subject the first-ranked finding must name ("AuthorizationPolicy payments/deny-legacy",
"Service ledger/ledger-db") — never a code or message text, because the codes for most causes
are still being written. :func:`judge` compares a report with it and says what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshobs.checks.base import Finding
    from meshobs.engine.report import MeshReport, Report

# The kinds of cause the library's scenarios exercise (docs/scenarios.md explains each).
CAUSE_KINDS = {
    "callee-failing": "the callee fails on its own (its own 5xx, destination-reported)",
    "retries-masking": "a callee fails many first attempts; the caller's retries hide most of it",
    "authorization-deny": "an AuthorizationPolicy denies a caller (403, rbac denied)",
    "authentication-reject": "a RequestAuthentication refuses a caller's tokens (401, jwt_authn denied)",
    "egress-scoping": "a Sidecar resource narrows a workload's egress: calls go to BlackHoleCluster",
    "registry-only": "outboundTrafficPolicy REGISTRY_ONLY and no ServiceEntry for an external host",
    "config-rejected": "a proxy rejects (NACKs) an update; an EnvoyFilter caused it",
    "slow-hop": "the last hop of a chain is slow; the hops above time out",
    "cert-expiring": "a workload certificate expires within hours",
    "gateway-binding": "a VirtualService is not bound to the Gateway that receives its host (404 NR)",
    "control-plane": "istiod is not ready, fails pushes, or a proxy has not acknowledged a push",
    "config-change": "a configuration change shortly before the fault started",
    "circuit-breaker": "a DestinationRule's connection pool is too small for the load: callers shed requests (503 UO)",
    "rate-limited": "a local rate limit (an EnvoyFilter's token bucket) refuses part of a service's requests (429 RL)",
    "subset-no-pods": "a DestinationRule subset behind a route selects no pods",
    "authorization-unknown-principal": "an AuthorizationPolicy allows only a principal no workload has",
    "no-data": "the window holds no samples: traffic could not be checked",
    "healthy": "no fault: no warning or error finding anywhere",
}


@dataclass(frozen=True)
class Expectation:
    """The conclusion a good diagnosis of the scenario reaches.

    ``target``: the service to diagnose (``ns/name``); None = only ``--all`` is judged.
    ``kind``: a key of :data:`CAUSE_KINDS`.
    ``subjects``: the first-ranked finding's subject must be one of these ("Kind ns/name";
    the alternatives name the same cause, e.g. a callee's Service or its Workload).
    ``mentions``: strings the first finding's subject, fields or evidence must contain
    (e.g. the EnvoyFilter behind a NACK, the principal an AuthorizationPolicy denies).
    ``also_top``: (subject, n) — a further cause that must rank within the first n findings
    (a certificate expiring behind a louder fault).
    ``quiet``: subjects that must carry no warning or error finding at all (intended noise
    next to a real fault: injected faults, mirrored traffic).
    ``symptom_ok``: the first finding may carry a symptom code (errors or latency a service
    shows): true where the cause *is* a service's own behaviour (a callee failing, a slow hop);
    otherwise the cause must rank above the symptoms it explains.
    ``unchecked``: check ids that must be skipped with a reason (no data is not health).
    ``healthy``: no warning or error finding in ``--all`` (and for the target, if any).
    """

    kind: str
    target: str | None = None
    subjects: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    also_top: tuple[tuple[str, int], ...] = ()
    quiet: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()
    healthy: bool = False
    symptom_ok: bool = False

    def __post_init__(self) -> None:
        if self.kind not in CAUSE_KINDS:
            raise ValueError(f"unknown cause kind {self.kind!r}; one of {', '.join(CAUSE_KINDS)}")
        if not self.healthy and not self.subjects and not self.unchecked:
            raise ValueError("a fault expectation names the subject that must rank first")

    def describe(self) -> str:
        """One line for people: what must rank first (or stay quiet)."""
        if self.healthy:
            return "no warning or error finding"
        if self.unchecked:
            return f"could not check: {', '.join(self.unchecked)} skipped with a reason, status not healthy"
        first = " or ".join(self.subjects)
        extra = f" (naming {', '.join(self.mentions)})" if self.mentions else ""
        return f"{self.kind}: first finding names {first}{extra}"


def _texts(f: Finding) -> list[str]:
    out = [f.subject]
    for mapping in (f.fields, f.evidence):
        for key, value in mapping.items():
            out.extend([str(key), str(value)])
    return out


def names(f: Finding, subject: str) -> bool:
    """Does ``f``'s subject name ``subject`` ("Kind ns/name")? The kind word must match and the
    ``ns/name`` must appear as a whole (Proxy subjects carry pod ids: ``Proxy name-…``)."""
    kind, _, ref = subject.partition(" ")
    if not f.subject.startswith(kind + " "):
        return False
    rest = f.subject[len(kind) + 1:]
    # Pods and proxies carry generated suffixes (``istiod-5d8f…``, ``pod.namespace``).
    return rest == ref or rest.startswith(ref + " ") or (kind in ("Proxy", "Pod") and rest.startswith(ref))


def mentions(f: Finding, text: str) -> bool:
    """Does ``text`` appear in ``f``'s subject, fields or evidence?"""
    return any(text in t for t in _texts(f))


def _serious(findings: Iterable[Finding]) -> list[Finding]:
    from meshobs.catalogue import Severity

    return [f for f in findings if f.severity in (Severity.ERROR, Severity.WARNING)]


def judge_report(expect: Expectation, report: Report) -> list[str]:
    """What ``report`` (of ``expect.target``) gets wrong; empty when it meets the expectation."""
    problems: list[str] = []
    findings = list(report.findings)
    if expect.healthy:
        problems += [f"unexpected {f.severity.value} {f.code} {f.subject}" for f in _serious(findings)]
        return problems
    if expect.unchecked:
        checks = {c.id: c for c in report.checks}
        for check_id in expect.unchecked:
            c = checks.get(check_id)
            if c is None or c.status != "skipped" or not c.reason:
                problems.append(f"{check_id}: expected skipped with a reason, got "
                                f"{c.status if c else 'absent'}")
        if report.status == "healthy":
            problems.append("status healthy although traffic could not be checked")
        return problems
    if not findings:
        return [f"no finding; expected {expect.describe()}"]
    first = findings[0]
    if not any(names(first, s) for s in expect.subjects):
        problems.append(f"first finding is {first.code} {first.subject}; expected {' or '.join(expect.subjects)}")
    problems += [f"first finding does not mention {m!r}" for m in expect.mentions if not mentions(first, m)]
    if not expect.symptom_ok:
        from meshobs.engine.ranking import symptom_kind

        if symptom_kind(first) is not None:
            problems.append(f"first finding {first.code} is a symptom, not the cause")
    problems += [f"{f.severity.value} {f.code} {f.subject}: intended, must not be a warning or error"
                 for f in _serious(findings) for s in expect.quiet if names(f, s)]
    for subject, n in expect.also_top:
        if not any(names(f, subject) for f in findings[:n]):
            problems.append(f"{subject} not among the first {n} findings")
    return problems


def judge_mesh(expect: Expectation, report: MeshReport) -> list[str]:
    """What ``diagnose --all`` gets wrong for a healthy expectation."""
    if not expect.healthy:
        return []
    return [f"unexpected {f.severity.value} {f.code} {f.subject}" for f in _serious(report.findings)]


def first_subjects(findings: Sequence[Finding], n: int = 3) -> list[str]:
    """The first ``n`` findings as "CODE subject" (for failure messages)."""
    return [f"{f.code} {f.subject}" for f in findings[:n]]
