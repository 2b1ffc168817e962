"""A diagnosis as JSON: the documented, stable shape scripts and CI read.

    {"service", "namespace", "status", "findings": [{"code", "check", "category", "severity",
     "subject", "message", "evidence", "hint", "doc", "rank", "location"}], "checks": [{"id",
     "category", "status", "reason"}], "sources": [{"name", "status", "error"}], "suppressed": [...],
     "timeline": {...}}

``timeline`` says when each symptom of the service's neighbourhood started and what changed
before it (:func:`meshobs.render.timeline.timeline_dict`: ``checked``, ``reason``, ``start``,
``end``, ``resolution_s``, ``lookback_s``, ``onsets``, ``order``, ``changes``, ``unchecked``);
``--all`` has one for the whole mesh at the top instead of one per service.

``location`` is ``{"file", "line"}`` for a finding on a manifest, else null. ``--all`` adds
``analyzers`` (each analyzer's verdict on the whole mesh, shaped like ``checks``) beside the
mesh-level ``findings``. Which findings a symptom was caused by (and which a cause explains)
travel inside ``evidence`` (``caused_by`` / ``explains``) so the documented keys stay exactly
as listed.
"""

from __future__ import annotations

import json
from typing import Any

from meshobs.checks.base import Finding
from meshobs.engine.report import CheckResult, MeshReport, Report, SourceResult
from meshobs.model import thaw

from .timeline import timeline_dict


def finding_dict(f: Finding) -> dict[str, Any]:
    evidence = thaw(f.evidence)
    if f.caused_by:
        evidence["caused_by"] = list(f.caused_by)
    if f.cause_of:
        evidence["explains"] = list(f.cause_of)
    if f.service is not None:
        evidence.setdefault("service", str(f.service))
    return {"code": f.code, "check": f.check, "category": f.category.value,
            "severity": f.severity.value, "subject": f.subject, "message": f.message,
            "evidence": evidence, "hint": f.hint, "doc": f.doc, "rank": f.rank,
            "location": {"file": f.file, "line": f.line or None} if f.file else None}


def _checks(results: tuple[CheckResult, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "category": c.category.value, "status": c.status, "reason": c.reason or None}
            for c in results]


def _sources(sources: tuple[SourceResult, ...]) -> list[dict[str, Any]]:
    return [{"name": s.name, "status": s.status, "error": s.error or None} for s in sources]


def report_dict(report: Report) -> dict[str, Any]:
    """The JSON document of one service's diagnosis, as plain data."""
    return {
        "service": report.service.name,
        "namespace": report.namespace,
        "status": report.status,
        "findings": [finding_dict(f) for f in report.findings],
        "checks": _checks(report.checks),
        "sources": _sources(report.sources),
        "suppressed": [{**finding_dict(f), "reason": s.reason,
                        "until": s.until.isoformat() if s.until else None}
                       for f, s in report.suppressed],
        "timeline": timeline_dict(report.timeline),
    }


def mesh_dict(mesh: MeshReport) -> dict[str, Any]:
    """``--all``: the mesh status, mesh-wide findings, and one document per service."""
    return {
        "status": mesh.status,
        "findings": [finding_dict(f) for f in mesh.mesh_findings],
        "analyzers": _checks(mesh.analyzers),
        "services": [{k: v for k, v in report_dict(r).items() if k not in ("sources", "timeline")}
                     for r in mesh.reports],
        "sources": _sources(mesh.sources),
        "timeline": timeline_dict(mesh.timeline),
    }


def render(report: Report | MeshReport) -> str:
    data = mesh_dict(report) if isinstance(report, MeshReport) else report_dict(report)
    return json.dumps(data, indent=2, sort_keys=False, default=str)
