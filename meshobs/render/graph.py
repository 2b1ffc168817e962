"""The service graph as text, JSON, Graphviz dot or Mermaid. Pure functions over the model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshobs.model import Edge, MeshSnapshot, ServiceRef


def _node(edge: Edge, snapshot: MeshSnapshot) -> str:
    if edge.source_service is not None:
        return str(edge.source_service)
    owners = snapshot.services_of(edge.source)
    return str(owners[0]) if owners else str(edge.source)


# An edge's colour in every graph (DOT, Mermaid, the dashboard): red from 5 % errors, orange
# (yellow in a terminal) above 1 %.
ERROR_RED, ERROR_ORANGE = 0.05, 0.01


def edge_severity(error_ratio: float) -> str:
    """``error`` (red), ``warning`` (orange) or ``ok`` for an edge's error ratio."""
    if error_ratio >= ERROR_RED:
        return "error"
    return "warning" if error_ratio > ERROR_ORANGE else "ok"


@dataclass(frozen=True)
class Marks:
    """What to draw and how to mark it: ``keep`` the services to draw (None: all), ``centre``
    the focused one (drawn bold), ``health`` per service (failing | degraded | healthy | unknown,
    from the diagnosis engine)."""

    keep: frozenset[str] | None = None
    centre: str | None = None
    health: Mapping[str, str] = field(default_factory=dict)

    def shows(self, name: str) -> bool:
        return self.keep is None or name in self.keep


NO_MARKS = Marks()
HEALTH_MARK = {"failing": "× failing", "degraded": "! degraded", "healthy": "✓ healthy", "unknown": "? unknown",
               "partial": "~ partial", "clean": "○ clean"}
MTLS_WORD = {"mutual_tls": "mTLS", "none": "PLAINTEXT", "unknown": "mTLS ?"}


def focus(snapshot: MeshSnapshot, service: ServiceRef | None = None, namespace: str | None = None) -> Marks:
    """The neighbourhood to draw: ``service`` with its callers and callees, or every service of
    ``namespace`` with the peers they exchange traffic with (both: the service's neighbourhood)."""
    if service is None and namespace is None:
        return NO_MARKS
    keep: set[str] = set()
    if service is not None:
        keep = {str(service), *(str(s) for s in snapshot.callers(service)),
                *(str(s) for s in snapshot.callees(service))}
        # Callers without a known service are drawn under their workload's name.
        keep |= {_node(e, snapshot) for e in snapshot.edges_into(service)}
    else:
        for e in snapshot.edges:
            src, dst = _node(e, snapshot), e.destination
            if dst.namespace == namespace or src.split("/", 1)[0] == namespace:
                keep |= {src, str(dst)}
        keep |= {str(s.ref) for s in snapshot.services if s.namespace == namespace}
    return Marks(frozenset(keep), str(service) if service is not None else None)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def service_edges(snapshot: MeshSnapshot, marks: Marks = NO_MARKS) -> list[dict[str, Any]]:
    """Edges as plain dicts, sorted by source then destination (only those ``marks`` keeps)."""
    out = []
    for e in snapshot.edges:
        if not (marks.shows(_node(e, snapshot)) and marks.shows(str(e.destination))):
            continue
        out.append({
            "source": _node(e, snapshot),
            "source_workload": str(e.source),
            "destination": str(e.destination),
            "destination_workload": str(e.destination_workload) if e.destination_workload else None,
            "protocol": e.protocol,
            "mesh": e.mesh.value,
            "request_rate": round(e.request_rate, 6),
            "error_ratio": round(e.error_ratio, 6),
            "errors_by_code": {k: round(v, 6) for k, v in sorted(e.rate_by_code(errors_only=True).items())},
            "errors_by_flag": {k: round(v, 6) for k, v in sorted(e.rate_by_flag(errors_only=True).items())},
            "p50_ms": e.latency.p50 if e.latency else None,
            "p90_ms": e.latency.p90 if e.latency else None,
            "p99_ms": e.latency.p99 if e.latency else None,
            "security": e.security.value,
            "tcp_sent_bytes_rate": e.tcp_sent_bytes_rate,
            "tcp_received_bytes_rate": e.tcp_received_bytes_rate,
        })
    return sorted(out, key=lambda d: (d["source"], d["destination"], d["destination_workload"] or ""))


def to_json(snapshot: MeshSnapshot, marks: Marks = NO_MARKS) -> str:
    """The graph as the versioned JSON document ``meshobs/schemas/graph.json``."""
    from meshobs.schemas import stamp

    doc = {
        **stamp("graph"),
        "time": snapshot.time.isoformat(),
        "window_s": snapshot.window_s,
        "origin": snapshot.origin,
        "focus": marks.centre,
        "services": [
            {"namespace": s.namespace, "name": s.name, "mesh": s.mesh.value,
             "health": marks.health.get(str(s.ref)),
             "workloads": [str(w.ref) for w in snapshot.workloads_of(s.ref)]}
            for s in snapshot.services if marks.shows(str(s.ref))
        ],
        "edges": service_edges(snapshot, marks),
        "sources": [{"name": s.name, "status": s.state.value, "error": s.message or None}
                    for s in snapshot.sources],
    }
    return json.dumps(doc, indent=2)


def to_text(snapshot: MeshSnapshot, marks: Marks = NO_MARKS, width: int | None = None) -> str:
    """The graph as a table; when the table is wider than ``width``, one block per edge instead
    (names are never cut), and long lines wrap."""
    from meshobs.render.wrap import wrap

    edges = service_edges(snapshot, marks)
    lines = [f"{len(snapshot.services)} services, {len(snapshot.workloads)} workloads, "
             f"{len(edges)} edges  (window {snapshot.window_s:g}s at {snapshot.time:%Y-%m-%d %H:%M:%S}Z, "
             f"{snapshot.origin or 'live'})", ""]
    if edges:
        headers = ("SOURCE", "FROM", "DESTINATION", "TO", "MESH", "PROTO", "RPS", "ERR%", "P99MS", "MTLS")
        rows = [(d["source"], d["source_workload"].split("/")[-1], d["destination"],
                 (d["destination_workload"] or "(never reached)").split("/")[-1], d["mesh"],
                 d["protocol"], _num(d["request_rate"], ".2f"), _num(100 * d["error_ratio"], ".2f"),
                 _num(d["p99_ms"], ".0f"), {"mutual_tls": "yes", "none": "NO"}.get(d["security"], "?"))
                for d in edges]
        widths = [max(len(str(r[i])) for r in (*rows, headers)) for i in range(len(headers))]
        if width is None or sum(widths) + 2 * (len(widths) - 1) <= width:
            for r in (headers, *rows):
                lines.append("  ".join(str(c).ljust(w) if i < 6 else str(c).rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        else:
            for src, frm, dst, to, mesh, proto, rps, err, p99, mtls in rows:
                lines += [f"{src} -> {dst}",
                          f"    {rps} req/s  {err}% errors  p99 {p99} ms  mTLS {mtls}  {mesh} {proto}",
                          f"    workloads {frm} -> {to}"]
        if any(d["security"] == "unknown" for d in edges):
            lines.append("MTLS ?: not reported (only Istio's destination proxies report it; "
                         "CloudWatch and X-Ray do not)")
    else:
        lines.append("no edges: no traffic source answered or there was no traffic in the window")
    bad = [s for s in snapshot.sources if not s.ok]
    if bad:
        lines.append("")
        for s in bad:
            lines.append(f"source {s.name}: {s.state.value}: {s.message}")
    text = "\n".join(lines)
    return wrap(text, width) if width is not None else text


def _id(ref: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in ref)


DOT_HEALTH = {"failing": "#f4cccc", "degraded": "#fff2cc", "healthy": "#d9ead3", "unknown": "#eeeeee",
              "partial": "#eef5e9", "clean": "#e8f0f8"}
EDGE_COLOUR = {"error": "red", "warning": "orange", "ok": "black"}


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(snapshot: MeshSnapshot, marks: Marks = NO_MARKS) -> str:
    """Graphviz: nodes filled by health (when known) and shaped by mesh; edges coloured by error
    ratio, labelled rate / errors / p99 / mTLS, dashed when the traffic was plaintext."""
    lines = ["digraph mesh {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fillcolor=white];']
    edges = service_edges(snapshot, marks)
    names = {str(s.ref) for s in snapshot.services if marks.shows(str(s.ref))}
    names |= {d["source"] for d in edges} | {d["destination"] for d in edges}
    mesh_of = {str(s.ref): s.mesh.value for s in snapshot.services}
    for n in sorted(names):
        mesh = mesh_of.get(n, "unknown")
        shape = {"istio": "box", "appmesh": "hexagon"}.get(mesh, "ellipse")
        health = marks.health.get(n)
        label = f"{_esc(n)}\\n{mesh}" + (f"\\n{HEALTH_MARK.get(health, health)}" if health else "")
        extra = f', fillcolor="{DOT_HEALTH.get(health, "white")}"' if health else ""
        if n == marks.centre:
            extra += ", penwidth=3"
        lines.append(f'  {_id(n)} [label="{label}", shape={shape}{extra}];')
    for d in _service_level(edges):
        colour = EDGE_COLOUR[edge_severity(d["error_ratio"])]
        p99 = _num(d["p99_ms"], ".0f")
        label = (f'{d["request_rate"]:.1f} rps\\n{100 * d["error_ratio"]:.1f}% err\\np99 {p99} ms'
                 f'\\n{MTLS_WORD[d["security"]]}')
        style = ", style=dashed" if d["security"] == "none" else ""
        lines.append(f'  {_id(d["source"])} -> {_id(d["destination"])} [label="{label}", color={colour}{style}];')
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(snapshot: MeshSnapshot, marks: Marks = NO_MARKS) -> str:
    """Mermaid: a class per mesh and per health, edges labelled rate / errors / p99 / mTLS;
    plaintext edges dotted, erroring edges red."""
    lines = ["graph LR"]
    edges = service_edges(snapshot, marks)
    # One class per mesh so a migration shows which side each service is on.
    for s in snapshot.services:
        if s.mesh.value in ("istio", "appmesh") and marks.shows(str(s.ref)):
            lines.append(f"  class {_id(str(s.ref))} {s.mesh.value}")
    lines.append("  classDef istio fill:#e8f0fe,stroke:#466bb0")
    lines.append("  classDef appmesh fill:#fff4e0,stroke:#d08a1c")
    if marks.health:
        for name, health in sorted(marks.health.items()):
            if marks.shows(name):
                lines.append(f"  class {_id(name)} {health}")
        lines += [f"  classDef {h} fill:{colour}" for h, colour in DOT_HEALTH.items()]
    if marks.centre:
        lines.append(f"  style {_id(marks.centre)} stroke-width:4px")
    styles = []
    for i, d in enumerate(_service_level(edges)):
        p99 = _num(d["p99_ms"], ".0f")
        label = (f'{d["request_rate"]:.1f} rps, {100 * d["error_ratio"]:.1f}% err, p99 {p99} ms, '
                 f'{MTLS_WORD[d["security"]]}')
        src, dst = d["source"], d["destination"]
        arrow = "-.->" if d["security"] == "none" else "-->"
        lines.append(f'  {_id(src)}["{src}"] {arrow}|"{label}"| {_id(dst)}["{dst}"]')
        severity = edge_severity(d["error_ratio"])
        if severity != "ok":
            styles.append(f"  linkStyle {i} stroke:{EDGE_COLOUR[severity]},stroke-width:2px")
    return "\n".join(lines + styles)


def _service_level(edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Collapse workload-level edges to service -> service (rate-weighted error, max p99, and
    the weakest security: one plaintext workload edge makes the service edge plaintext)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for d in edges:
        key = (d["source"], d["destination"])
        m = merged.setdefault(key, {"source": key[0], "destination": key[1], "request_rate": 0.0,
                                    "errors": 0.0, "p99_ms": None, "securities": set()})
        m["request_rate"] += d["request_rate"]
        m["errors"] += d["request_rate"] * d["error_ratio"]
        m["securities"].add(d["security"])
        if d["p99_ms"] is not None:
            m["p99_ms"] = max(m["p99_ms"] or 0.0, d["p99_ms"])
    for m in merged.values():
        m["error_ratio"] = m["errors"] / m["request_rate"] if m["request_rate"] else 0.0
        found = m.pop("securities")
        m["security"] = "none" if "none" in found else ("mutual_tls" if found == {"mutual_tls"} else "unknown")
    return [merged[k] for k in sorted(merged)]


RENDERERS = {"text": to_text, "json": to_json, "dot": to_dot, "mermaid": to_mermaid}


def neighbours(snapshot: MeshSnapshot, service: ServiceRef) -> dict[str, list[str]]:
    return {"callers": [str(s) for s in snapshot.callers(service)],
            "callees": [str(s) for s in snapshot.callees(service)]}
