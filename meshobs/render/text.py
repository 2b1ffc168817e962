"""A diagnosis as text: the checklist by category (pass, warn, fail, skipped marks), then the
ranked findings.

Colour is the caller's decision (a terminal, no --no-color, no NO_COLOR); with ``color=False``
the output is plain and stable enough for golden files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from meshobs.catalogue import Category
from meshobs.checks.base import Finding
from meshobs.engine.report import ERROR, FAIL, PASS, SKIPPED, WARN, MeshReport, Report, SourceResult
from meshobs.model import thaw

# Linkerd-style marks: check, double exclamation, multiplication sign, en dash.
MARKS = {PASS: "\u221a", WARN: "\u203c", FAIL: "\u00d7", SKIPPED: "\u2013", ERROR: "\u00d7"}
COLOURS = {PASS: "green", WARN: "yellow", FAIL: "red", SKIPPED: "bright_black", ERROR: "red",
           "error": "red", "warning": "yellow", "info": "cyan",
           "healthy": "green", "degraded": "yellow", "failing": "red", "unknown": "magenta"}


def _styler(color: bool) -> Callable[[str, str], str]:
    def style(text: str, key: str) -> str:
        return click.style(text, fg=COLOURS.get(key)) if color else text
    return style


def _value(v: Any) -> str:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(thaw(v), default=str, separators=(", ", ": "))
    return str(v)


def finding_lines(f: Finding, style: Callable[[str, str], str], indent: str = "    ") -> list[str]:
    """One ranked finding: headline, message, evidence lines, causal links, hint, doc."""
    mark = MARKS[FAIL] if f.severity.value == "error" else MARKS[WARN] if f.severity.value == "warning" else "i"
    lines = [f"{f.rank:>3}. {style(mark + ' ' + f.code, f.severity.value)} "
             f"{f.severity.value:<7} {f.subject}",
             f"{indent}{f.message}"]
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


def _sources(sources: tuple[SourceResult, ...], style: Callable[[str, str], str]) -> list[str]:
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


def render(report: Report | MeshReport, color: bool = False) -> str:
    if isinstance(report, MeshReport):
        return render_mesh(report, color)
    style = _styler(color)
    lines = [f"Diagnosis of {report.service}" + (f" ({report.origin})" if report.origin else "")
             + (f" at {report.time.isoformat()}" if report.time else ""), ""]
    category: Category | None = None
    not_applicable = [c for c in report.checks if c.reason.startswith("not applicable")]
    for c in report.checks:
        if c.category is not category:
            category = c.category
            lines.append(category.value.capitalize())
        if c in not_applicable:
            continue
        tail = f"  {c.status}: {c.reason}" if c.reason else ""
        lines.append(f"  {style(MARKS[c.status], c.status)} {c.id}{tail}")
    if not_applicable:
        lines.append("Not applicable to this mesh")
        lines.append(f"  {', '.join(c.id for c in not_applicable)}")
    lines.append("")
    if report.findings:
        lines.append("Findings, most likely root cause first")
        for f in report.findings:
            lines.extend(finding_lines(f, style))
    else:
        lines.append("No findings.")
    if report.suppressed:
        lines += ["", "Suppressed"]
        for f, s in report.suppressed:
            until = f" until {s.until.isoformat()}" if s.until else ""
            lines.append(f"  {f.code} {f.subject}: {s.reason or 'no reason given'}{until}")
    lines += ["", *_sources(report.sources, style), "", _summary(report.status, report.findings, style)]
    return "\n".join(lines)


def _summary(status: str, findings: tuple[Finding, ...], style: Callable[[str, str], str]) -> str:
    counts = {sev: sum(1 for f in findings if f.severity.value == sev) for sev in ("error", "warning", "info")}
    detail = ", ".join(f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in counts.items() if n)
    return f"Status: {style(status, status)}" + (f" ({detail})" if detail else "")


def render_mesh(mesh: MeshReport, color: bool = False) -> str:
    """``--all``: one block per service with its failing checks and ranked findings."""
    style = _styler(color)
    lines = ["Diagnosis of every service" + (f" ({mesh.origin})" if mesh.origin else ""), ""]
    for f in mesh.mesh_findings:
        lines.extend(finding_lines(f, style))
    for r in mesh.reports:
        skipped = sum(1 for c in r.checks if c.status == SKIPPED)
        passed = sum(1 for c in r.checks if c.status == PASS)
        lines.append(f"{style(r.status, r.status)} {r.service}  ({passed} passed, {skipped} skipped, "
                     f"{len(r.findings)} findings)")
        for c in r.checks:
            if c.status in (WARN, FAIL, ERROR):
                lines.append(f"  {style(MARKS[c.status], c.status)} {c.id}")
        for f in r.findings:
            lines.extend(finding_lines(f, style, indent="      "))
    lines += ["", *_sources(mesh.sources, style), "", _summary(mesh.status, mesh.findings, style)]
    return "\n".join(lines)
