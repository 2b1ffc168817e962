"""A diagnosis as text: the checklist by category (pass, warn, fail, skipped marks), then the
ranked findings.

Written to be read during an incident: passing checks are counted, not listed; checks skipped
for one reason share one line; evidence is abridged (``-o json`` has all of it). Colour is the
caller's decision (a terminal, no --no-color, no NO_COLOR); with ``color=False`` the output is
plain and stable enough for golden files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from meshobs.catalogue import Category
from meshobs.checks.base import Finding
from meshobs.engine.report import (
    ERROR,
    FAIL,
    PASS,
    SKIPPED,
    WARN,
    CheckResult,
    MeshReport,
    Report,
    SourceResult,
    gaps,
    unchecked_line,
)
from meshobs.model import ServiceRef, thaw

from ..words import plural
from .timeline import text_lines as timeline_text

# Linkerd-style marks: check, double exclamation, multiplication sign, en dash.
MARKS = {PASS: "\u221a", WARN: "\u203c", FAIL: "\u00d7", SKIPPED: "\u2013", ERROR: "\u00d7"}
COLOURS = {PASS: "green", WARN: "yellow", FAIL: "red", SKIPPED: "bright_black", ERROR: "red",
           "error": "red", "warning": "yellow", "info": "cyan",
           "healthy": "green", "clean": "cyan", "partial": "yellow", "degraded": "yellow", "failing": "red",
           "unknown": "magenta"}
# How much of a collection of evidence the text shows; -o json has everything.
MAX_ITEMS = 4

Style = Callable[[str, str], str]


def _styler(color: bool) -> Style:
    def style(text: str, key: str) -> str:
        return click.style(text, fg=COLOURS.get(key)) if color else text
    return style


def _abridge(v: Any) -> Any:
    if isinstance(v, dict):
        items = list(v.items())
        out = {str(k): _abridge(x) for k, x in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"+{len(items) - MAX_ITEMS} more"
        return out
    if isinstance(v, (list, tuple)):
        head = [_abridge(x) for x in v[:MAX_ITEMS]]
        return head + ([f"+{len(v) - MAX_ITEMS} more"] if len(v) > MAX_ITEMS else [])
    return v


def _value(v: Any) -> str:
    if isinstance(v, (dict, list, tuple)):
        text = json.dumps(_abridge(thaw(v)), default=str, separators=(", ", ": "))
    else:
        text = str(v)
    return text  # never cut: the CLI wraps long lines at the terminal's width


def when(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


def finding_lines(f: Finding, style: Style, indent: str = "    ") -> list[str]:
    """One ranked finding: headline, message, evidence lines, causal links, hint, doc."""
    mark = MARKS[FAIL] if f.severity.value == "error" else MARKS[WARN] if f.severity.value == "warning" else "i"
    lines = [f"{f.rank:>3}. {style(mark + ' ' + f.code, f.severity.value)} "
             f"{f.severity.value:<7} {f.subject}",
             f"{indent}{f.message}"]
    if f.location:
        lines.append(f"{indent}at {f.location}")
    for key, value in f.evidence.items():
        lines.append(f"{indent}  {key}: {_value(value)}")
    if f.caused_by:
        lines.append(f"{indent}caused by: {'; '.join(f.caused_by)}")
    if f.cause_of:
        lines.append(f"{indent}explains: {'; '.join(f.cause_of)}")
    if f.hint:
        lines.append(f"{indent}hint: {f.hint}")
    lines.append(f"{indent}doc: {f.doc}")
    return lines


def _sources(sources: tuple[SourceResult, ...], style: Style) -> list[str]:
    lines = ["Sources"]
    # Per-pod sources (envoy:ns/pod) are summarised by kind when they all answered.
    by_kind: dict[str, list[SourceResult]] = {}
    for s in sources:
        by_kind.setdefault(s.kind or s.name, []).append(s)
    shown: list[SourceResult] = []
    for kind, group in by_kind.items():
        if len(group) > 3 and all(s.status == "ok" for s in group):
            shown.append(SourceResult(f"{kind} ({len(group)} sources)", "ok", "", kind))
        else:
            shown.extend(group)
    for s in shown:
        mark = MARKS[PASS] if s.status == "ok" else MARKS[SKIPPED] if s.status == "no data" else MARKS[FAIL]
        key = PASS if s.status == "ok" else SKIPPED if s.status == "no data" else FAIL
        lines.append(f"  {style(mark, key)} {s.name}: {s.status}" + (f" ({s.error})" if s.error else ""))
    return lines


def checklist_lines(checks: tuple[CheckResult, ...], style: Style) -> list[str]:
    """Per category: how many passed, each warn/fail/error, skipped checks grouped by reason.
    Checks written for the other mesh are one line at the end."""
    lines: list[str] = []
    other_mesh = [c for c in checks if c.reason.startswith("not applicable")]
    for category in Category:
        mine = [c for c in checks if c.category is category and c not in other_mesh]
        if not mine:
            continue
        passed = sum(1 for c in mine if c.status == PASS)
        head = category.value.capitalize()
        lines.append(f"{head}  {style(MARKS[PASS], PASS)} {passed} passed" if passed else head)
        for c in mine:
            if c.status in (WARN, FAIL, ERROR):
                tail = f"  {c.status}: {c.reason}" if c.reason else ""
                lines.append(f"  {style(MARKS[c.status], c.status)} {c.id}{tail}")
        by_reason: dict[str, list[str]] = {}
        for c in mine:
            if c.status == SKIPPED:
                by_reason.setdefault(c.reason, []).append(c.id)
        for reason, ids in by_reason.items():
            lines.append(f"  {style(MARKS[SKIPPED], SKIPPED)} skipped: {reason}")
            lines.append(f"      {', '.join(ids)}")
    if other_mesh:
        lines.append("Not applicable to this mesh")
        lines.append(f"  {', '.join(c.id for c in other_mesh)}")
    return lines


def _downstream(report: Report, style: Style) -> list[str]:
    """The services downstream of the target whose findings explain its symptoms."""
    by_service: dict[ServiceRef, dict[str, str]] = {}
    for f in report.findings:
        if f.service is not None and f.service != report.service:
            worst = by_service.setdefault(f.service, {})
            status = FAIL if f.severity.value == "error" else WARN if f.severity.value == "warning" else PASS
            if status != PASS and worst.get(f.check) != FAIL:
                worst[f.check] = status
    if not any(by_service.values()):
        return []
    lines = ["Downstream (checked because they explain this service's symptoms)"]
    for svc, checks in sorted(by_service.items()):
        marks = ", ".join(f"{style(MARKS[s], s)} {check}" for check, s in sorted(checks.items()))
        lines.append(f"  {svc}: {marks}")
    return lines


def render(report: Report | MeshReport, color: bool = False) -> str:
    if isinstance(report, MeshReport):
        return render_mesh(report, color)
    style = _styler(color)
    lines = [f"Diagnosis of {report.service}" + (f" ({report.origin})" if report.origin else "")
             + (f" at {when(report.time)}" if report.time else ""), ""]
    lines += checklist_lines(report.checks, style)
    downstream = _downstream(report, style)
    if downstream:
        lines += ["", *downstream]
    lines.append("")
    if report.findings:
        lines.append("Findings, most likely root cause first")
        for f in report.findings:
            lines.extend(finding_lines(f, style))
    else:
        lines.append("No findings.")
    lines += ["", *timeline_text(report.timeline)]
    if report.suppressed:
        lines += ["", "Suppressed"]
        for f, s in report.suppressed:
            until = f" until {when(s.until)}" if s.until else ""
            lines.append(f"  {f.code} {f.subject}: {s.reason or 'no reason given'}{until}")
    lines += ["", *_sources(report.sources, style), "",
              _summary(report.status, report.findings, style, report.checks)]
    return "\n".join(lines)


def _summary(status: str, findings: tuple[Finding, ...], style: Style,
             checks: tuple[CheckResult, ...] | list[CheckResult] = ()) -> str:
    """``Status: unknown (1 info; could not check: traffic.error_rate, traffic.latency (no
    request metrics: ...))``: the word, the findings counted, and what could not be checked."""
    unique = {f.identity: f for f in findings}
    counts = {sev: sum(1 for f in unique.values() if f.severity.value == sev) for sev in ("error", "warning", "info")}
    parts = [", ".join(plural(n, sev) for sev, n in counts.items() if n)]
    unchecked = unchecked_line(checks)
    if unchecked:
        parts.append(f"could not check: {unchecked}")
    elif status == "unknown":
        parts.append("nothing could be checked")
    if status == "clean":  # no check of the run could judge requests: health is not claimed
        parts.append("traffic not checked")
    detail = "; ".join(p for p in parts if p)
    return f"Status: {style(status, status)}" + (f" ({detail})" if detail else "")


def _mesh_unchecked(mesh: MeshReport) -> list[CheckResult]:
    """What the whole run could not check: the gaps of every service (once per check and
    reason) and of the analyzers."""
    seen: dict[tuple[str, str], CheckResult] = {}
    for r in [*gaps(mesh.analyzers), *(g for rep in mesh.reports for g in gaps(rep.checks))]:
        seen.setdefault((r.id, r.reason), r)
    return list(seen.values())


def render_mesh(mesh: MeshReport, color: bool = False) -> str:
    """``--all``: a line per service, then every finding once, with the services it affects."""
    style = _styler(color)
    lines = ["Diagnosis of every service" + (f" ({mesh.origin})" if mesh.origin else "")
             + (f" at {when(mesh.time)}" if mesh.time else ""), ""]
    width = max((len(str(r.service)) for r in mesh.reports), default=10)
    for r in sorted(mesh.reports, key=lambda r: (-_weight(r.status), str(r.service))):
        failing = sorted({c.id for c in r.checks if c.status in (WARN, FAIL, ERROR)})
        skipped = sum(1 for c in r.checks if c.status == SKIPPED and not c.reason.startswith("not applicable"))
        tail = f"  {', '.join(failing)}" if failing else ""
        tail += f"  ({skipped} skipped)" if skipped else ""
        lines.append(f"  {style(f'{r.status:<8}', r.status)} {r.service!s:<{width}}{tail}")
    if mesh.analyzers:
        lines += ["", "Analyzers (configuration, whole mesh)"]
        lines += ["  " + line for line in checklist_lines(mesh.analyzers, style)]
    # Each finding once (a downstream root cause appears in every caller's report), ranked by
    # its best rank anywhere, with the services whose diagnosis it is part of.
    seen: dict[tuple[str, str, str], tuple[Finding, list[str]]] = {}
    for f in mesh.mesh_findings:
        seen[f.identity] = (f, [])
    for r in mesh.reports:
        for f in r.findings:
            key = f.identity
            if key in seen:
                best, services = seen[key]
                services.append(str(r.service))
                if (f.rank or 99) < (best.rank or 99):
                    seen[key] = (f, services)
            else:
                seen[key] = (f, [str(r.service)])
    ordered = sorted(seen.values(), key=lambda fs: (-fs[0].severity.weight, fs[0].rank or 99, fs[0].code))
    if ordered:
        lines += ["", "Findings, most severe and most likely root cause first"]
        for n, (f, services) in enumerate(ordered, start=1):
            block = finding_lines(f, style)
            block[0] = f"{n:>3}." + block[0][4:]
            if len(services) > 1:
                block.insert(1, f"    in the diagnosis of: {', '.join(sorted(set(services)))}")
            lines.extend(block)
    else:
        lines += ["", "No findings."]
    lines += ["", *timeline_text(mesh.timeline)]
    lines += ["", *_sources(mesh.sources, style), "",
              _summary(mesh.status, tuple(f for f, _s in ordered), style, _mesh_unchecked(mesh))]
    return "\n".join(lines)


def _weight(status: str) -> int:
    return {"failing": 4, "degraded": 3, "partial": 2, "unknown": 1}.get(status, 0)
