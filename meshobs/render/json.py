"""A diagnosis as JSON: the versioned contract scripts and CI read.

The shape is ``meshobs/schemas/diagnose.json`` (``meshobs schema diagnose``), version
``schema_version``: a field may be added within a version, never removed or changed. One
service::

    {"schema_version", "meshobs_version", "scope": "service", "time", "window_s", "origin",
     "service", "namespace", "status", "findings": [FINDING], "checks": [{"id", "category",
     "status", "reason"}], "sources": [{"name", "status", "error"}], "suppressed": [...],
     "timeline": TIMELINE}

``timeline`` says when each symptom of the service and of what it calls started and what
changed before it (:func:`meshobs.render.timeline.timeline_dict`: ``checked``, ``reason``,
``start``, ``end``, ``resolution_s``, ``lookback_s``, ``covers``, ``onsets``, ``order``,
``changes``, ``unchecked``); ``--all`` has one for the whole mesh at the top instead of one per service.

``--all``: ``"scope": "mesh"`` with ``findings`` (mesh-wide), ``services`` (one document per
service, without sources) and ``sources``. A FINDING is ``{"code", "check", "category",
"severity", "subject", "service", "message", "evidence", "hint", "doc", "rank", "caused_by",
"explains"}``: ``caused_by`` lists the ``"CODE subject"`` of the findings that explain this one,
``explains`` the symptoms this one explains.

A finding on a manifest also has ``location``: ``{"file", "line"}`` (else null). ``--all`` adds
``analyzers``: each analyzer's verdict on the whole mesh, shaped like ``checks``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import msgspec

from meshobs.checks.base import Finding
from meshobs.engine import FORK_MIN_SERVICES, fanout
from meshobs.engine.report import CheckResult, MeshReport, Report, SourceResult
from meshobs.model import thaw
from meshobs.raw import iso
from meshobs.schemas import stamp

from .timeline import timeline_dict


def finding_dict(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "check": f.check, "category": f.category.value,
            "severity": f.severity.value, "subject": f.subject,
            "service": str(f.service) if f.service is not None else None, "message": f.message,
            "evidence": thaw(f.evidence), "hint": f.hint, "doc": f.doc, "rank": f.rank,
            "caused_by": list(f.caused_by), "explains": list(f.cause_of),
            "location": {"file": f.file, "line": f.line or None} if f.file else None}


def _checks(results: tuple[CheckResult, ...]) -> list[dict[str, Any]]:
    """The checklist lines as data."""
    return [_check(c) for c in results]


def _check(c: CheckResult) -> dict[str, Any]:
    return {"id": c.id, "category": c.category.value, "status": c.status, "reason": c.reason or None}


def _sources(sources: tuple[SourceResult, ...]) -> list[dict[str, Any]]:
    return [{"name": s.name, "status": s.status, "error": s.error or None} for s in sources]


def _header(scope: str, time: datetime | None, window_s: float | None, origin: str) -> dict[str, Any]:
    return {**stamp("diagnose"), "scope": scope, "time": iso(time) if time else None,
            "window_s": window_s, "origin": origin or None}


def _service(report: Report) -> dict[str, Any]:
    """What a service's document says about it: the fields a ``--all`` report keeps per service."""
    return {**_about(report), "checks": _checks(report.checks), "suppressed": _suppressed(report)}


def _about(report: Report) -> dict[str, Any]:
    """The fields of a service's document before its checklist."""
    return {"service": report.service.name, "namespace": report.namespace, "status": report.status,
            "findings": [finding_dict(f) for f in report.findings]}


def _suppressed(report: Report) -> list[dict[str, Any]]:
    return [{**finding_dict(f), "reason": s.reason, "until": s.until.isoformat() if s.until else None}
            for f, s in report.suppressed]


def report_dict(report: Report, window_s: float | None = None) -> dict[str, Any]:
    """The JSON document of one service's diagnosis, as plain data."""
    doc = {**_header("service", report.time, window_s, report.origin), **_service(report)}
    # "sources" sits between "checks" and "suppressed" in the document, "timeline" last.
    suppressed = doc.pop("suppressed")
    return {**doc, "sources": _sources(report.sources), "suppressed": suppressed,
            "timeline": timeline_dict(report.timeline)}


def mesh_dict(mesh: MeshReport, window_s: float | None = None, *, services: bool = True) -> dict[str, Any]:
    """``--all``: the mesh status, mesh-wide findings, and one document per service (without the
    sources, which are the mesh's: a service's document would repeat all of them).
    ``services=False`` leaves the services out (:func:`render_parts` writes them one by one)."""
    doc = {
        **_header("mesh", mesh.time, window_s, mesh.origin),
        "status": mesh.status,
        "findings": [finding_dict(f) for f in mesh.mesh_findings],
        "analyzers": _checks(mesh.analyzers),
    }
    if services:
        doc["services"] = [_service(r) for r in mesh.reports]
    return {**doc, "sources": _sources(mesh.sources), "timeline": timeline_dict(mesh.timeline)}


def render(report: Report | MeshReport, *, window_s: float | None = None) -> str:
    """The JSON text; ``window_s`` is the rate window of the snapshot the report was made from."""
    return "".join(render_parts(report, window_s=window_s))


def render_parts(report: Report | MeshReport, *, window_s: float | None = None) -> Iterator[str]:
    """The JSON text of :func:`render` in pieces, a ``--all`` document one service at a time: the
    whole document as data and as text at once was the peak of a 5,000-service replay's memory
    (a 67 MB document: +250 MB for its dicts and two copies of the text). Same bytes joined."""
    if not isinstance(report, MeshReport):
        yield _indented(report_dict(report, window_s))
        return
    doc = mesh_dict(report, window_s, services=False)
    # The document's keys in order, "services" spliced in between "analyzers" and "sources";
    # each service's text is its own document indented two levels, as inside the whole.
    tail = {k: doc.pop(k) for k in ("sources", "timeline")}
    yield _indented(doc)[:-2] + ',\n  "services": ['
    reports = report.reports
    # A big mesh's services are written by two processes at once: the second half's text is
    # made in a forked child (meshobs.engine.fanout) while this process writes the first half.
    half = len(reports) // 2 if fanout.workers(None, len(reports), FORK_MIN_SERVICES) > 1 else len(reports)
    if half == len(reports):
        yield from _services(reports, first=True)
    else:
        with fanout.beside(reports[half:], lambda rest: list(_services(rest, first=False))) as theirs:
            yield from _services(reports[:half], first=True)
            yield from theirs()
    yield "\n  ]," if reports else "],"
    yield _indented(tail)[1:]


def _services(reports: Sequence[Report], *, first: bool) -> Iterator[str]:
    """The text of each service's document in the "services" list of a ``--all`` document, with
    the separator before it (``first``: the first of the list is one of them)."""
    lines: dict[int, tuple[CheckResult, str]] = {}
    for n, r in enumerate(reports):
        yield ("\n    " if first and n == 0 else ",\n    ") + _service_text(r, lines)


# Where a service's document sits in a ``--all`` document: each of its lines indented by two
# levels (4 spaces), its checklist's lines by two more levels of its own (8 spaces).
_IN_SERVICES = "\n    "
_IN_CHECKS = "\n        "


def _service_text(report: Report, lines: dict[int, tuple[CheckResult, str]]) -> str:
    """``_indented(_service(report))`` indented as an item of a ``--all`` document's
    "services", with the checklist spliced in as text: 5,000 services' ~350k checklist lines
    are a few hundred distinct results (meshobs.engine.runner.verdict), each one's text made
    once (``lines``, by the identity of the result, kept with it so its id is not reused),
    rather than ~350k dicts encoded and re-indented (about half of the JSON's CPU). The same
    bytes: the encoder's output for a value depends only on its depth, which is what is added.
    JSON strings hold no raw newline: every newline starts a line of the document."""
    head = _indented(_about(report))[:-2].replace("\n", _IN_SERVICES)  # without its closing "\n}"
    texts = []
    for c in report.checks:
        known = lines.get(id(c))
        if known is None:
            known = lines[id(c)] = (c, _check_text(c))
        texts.append(known[1])
    checks = f"[{_IN_CHECKS}{f',{_IN_CHECKS}'.join(texts)}\n      ]" if texts else "[]"
    tail = _indented(_suppressed(report)).replace("\n", "\n      ")
    return f'{head},\n      "checks": {checks},\n      "suppressed": {tail}\n    }}'


_KEY = _IN_CHECKS + "  "


def _check_text(c: CheckResult) -> str:
    """``_indented(_check(c))`` indented as a checklist line of a ``--all`` document, written
    out: its four strings encoded as ``json.dumps`` encodes a string (``ensure_ascii``), in
    ``_check``'s order. The lines that are not shared verdicts (a reason naming the service:
    not applicable, could not check) are ~10 per service, each otherwise a dict encoded and
    re-indented."""
    reason = _string(c.reason) if c.reason else "null"
    return (f'{{{_KEY}"id": {_string(c.id)},{_KEY}"category": {_string(c.category.value)},'
            f'{_KEY}"status": {_string(c.status)},{_KEY}"reason": {reason}{_IN_CHECKS}}}')


_string = json.encoder.encode_basestring_ascii


def _indented(data: dict[str, Any] | list[Any]) -> str:
    """``data`` as JSON indented by two spaces, as ``json.dumps(data, indent=2)`` writes it."""
    # json's indenting encoder is pure Python (a 1,000-service --all report: 10 MB, seconds);
    # its C encoder writes the same tokens compactly and msgspec re-indents them verbatim, giving
    # the same text. What msgspec does not take (NaN, lone surrogates) keeps json's own path.
    compact = json.dumps(data, sort_keys=False, default=str)
    try:
        return msgspec.json.format(compact, indent=2)
    except msgspec.DecodeError:
        return json.dumps(data, indent=2, sort_keys=False, default=str)
