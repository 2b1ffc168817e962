"""A diagnosis as JUnit XML: one testcase per check, a failure per finding (CI dashboards).

Findings on downstream services (the root causes) get their own testcase, named after the
check and the service, so a CI view shows the cause next to the symptom. ``--all`` adds a suite
for the mesh: one testcase per analyzer, failing with the findings that touch no service.
A finding on a manifest names its ``file:line`` in the message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from meshobs.checks.base import Finding
from meshobs.engine.report import CheckResult, MeshReport, Report


def _line(f: Finding) -> str:
    return (f"[{f.rank}] {f.code} {f.severity.value} {f.subject}: {f.message}"
            + (f" at {f.location}" if f.location else "")
            + (f" (caused by {'; '.join(f.caused_by)})" if f.caused_by else "") + f" doc: {f.doc}")


def _suite(report: Report) -> ET.Element:
    by_check: dict[tuple[str, str], list[str]] = {}
    for f in report.findings:
        owner = "" if f.service in (None, report.service) else str(f.service)
        by_check.setdefault((f.check, owner), []).append(_line(f))
    return _cases(f"meshobs diagnose {report.service}", report.checks, by_check)


def _mesh_suite(mesh: MeshReport) -> ET.Element:
    by_check: dict[tuple[str, str], list[str]] = {}
    for f in mesh.mesh_findings:
        by_check.setdefault((f.check, ""), []).append(_line(f))
    return _cases("meshobs diagnose --all (mesh)", mesh.analyzers, by_check)


def _cases(name: str, checks: Iterable[CheckResult], by_check: dict[tuple[str, str], list[str]]) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=c.category.value, name=c.id)
        counts["tests"] += 1
        if c.status == "skipped":
            ET.SubElement(case, "skipped", message=c.reason)
            counts["skipped"] += 1
        elif c.status == "error":
            ET.SubElement(case, "error", message=c.reason)
            counts["errors"] += 1
        messages = by_check.pop((c.id, ""), [])
        if messages and c.status in ("fail", "warn"):
            failure = ET.SubElement(case, "failure", message=messages[0], type=c.status)
            failure.text = "\n".join(messages)
            counts["failures"] += 1
    for (check_id, service), messages in sorted(by_check.items()):
        case = ET.SubElement(suite, "testcase", classname="downstream" if service else "meshobs",
                             name=f"{check_id} {service}".strip())
        failure = ET.SubElement(case, "failure", message=messages[0], type="finding")
        failure.text = "\n".join(messages)
        counts["tests"] += 1
        counts["failures"] += 1
    for k, v in counts.items():
        suite.set(k, str(v))
    return suite


def render(report: Report | MeshReport) -> str:
    root = ET.Element("testsuites", name="meshobs")
    if isinstance(report, MeshReport):
        root.append(_mesh_suite(report))
    for r in (report.reports if isinstance(report, MeshReport) else (report,)):
        root.append(_suite(r))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
