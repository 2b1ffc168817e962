"""A diagnosis as Markdown (for a pull-request comment or an incident document)."""

from __future__ import annotations

import json

from meshobs.checks.base import Finding
from meshobs.engine.report import MeshReport, Report
from meshobs.model import thaw

from .timeline import markdown_lines

ICONS = {"pass": "pass", "warn": "**warn**", "fail": "**FAIL**", "skipped": "skipped", "error": "**ERROR**"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _finding(f: Finding) -> list[str]:
    lines = [f"{f.rank}. **{f.code}** ({f.severity.value}) `{f.subject}`: {_cell(f.message)}"]
    if f.location:
        lines.append(f"   - at: `{f.location}`")
    if f.caused_by:
        lines.append(f"   - caused by: {'; '.join(f.caused_by)}")
    if f.cause_of:
        lines.append(f"   - explains: {'; '.join(f.cause_of)}")
    if f.hint:
        lines.append(f"   - hint: {f.hint}")
    lines.append(f"   - doc: `{f.doc}`")
    lines.append("   - evidence:")
    lines.append("")
    lines.append("     ```json")
    lines.extend("     " + ln for ln in json.dumps(thaw(f.evidence), indent=2, default=str).splitlines())
    lines.append("     ```")
    return lines


def _report(report: Report, level: str = "#", timeline: bool = True) -> list[str]:
    lines = [f"{level} Diagnosis of `{report.service}`: {report.status}", "",
             "| check | category | status | reason |", "|---|---|---|---|"]
    for c in report.checks:
        lines.append(f"| `{c.id}` | {c.category.value} | {ICONS[c.status]} | {_cell(c.reason)} |")
    lines.append("")
    if report.findings:
        lines += [f"{level}# Findings, most likely root cause first", ""]
        for f in report.findings:
            lines.extend(_finding(f))
        lines.append("")
    if timeline and report.timeline.checked:
        lines += markdown_lines(report.timeline, f"{level}#")
    if report.suppressed:
        lines += [f"{level}# Suppressed", ""]
        lines += [f"- {f.code} `{f.subject}`: {s.reason}" for f, s in report.suppressed]
        lines.append("")
    return lines


def render(report: Report | MeshReport) -> str:
    if isinstance(report, Report):
        lines = _report(report)
        sources = report.sources
    else:
        lines = [f"# Diagnosis of every service: {report.status}", ""]
        if report.analyzers:
            lines += ["| analyzer | category | status | reason |", "|---|---|---|---|"]
            lines += [f"| `{c.id}` | {c.category.value} | {ICONS[c.status]} | {_cell(c.reason)} |"
                      for c in report.analyzers]
            lines.append("")
        for f in report.mesh_findings:
            lines.extend(_finding(f))
        for r in report.reports:
            lines.extend(_report(r, "##", timeline=False))
        lines += markdown_lines(report.timeline, "##")
        sources = report.sources
    lines += ["Sources: " + ", ".join(f"{s.name} ({s.status})" for s in sources), ""]
    return "\n".join(lines)
