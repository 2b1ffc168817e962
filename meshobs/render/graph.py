"""The service graph as text, JSON, Graphviz dot or Mermaid. Pure functions over the model."""

from __future__ import annotations

import json
from typing import Any

from meshobs.model import Edge, MeshSnapshot, ServiceRef


def _node(edge: Edge, snapshot: MeshSnapshot) -> str:
    if edge.source_service is not None:
        return str(edge.source_service)
    owners = snapshot.services_of(edge.source)
    return str(owners[0]) if owners else str(edge.source)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def service_edges(snapshot: MeshSnapshot) -> list[dict[str, Any]]:
    """Edges as plain dicts, sorted by source then destination."""
    out = []
    for e in snapshot.edges:
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


def to_json(snapshot: MeshSnapshot) -> str:
    """The graph as the versioned JSON document ``meshobs/schemas/graph.json``."""
    from meshobs.schemas import stamp

    doc = {
        **stamp("graph"),
        "time": snapshot.time.isoformat(),
        "window_s": snapshot.window_s,
        "origin": snapshot.origin,
        "services": [
            {"namespace": s.namespace, "name": s.name, "mesh": s.mesh.value,
             "workloads": [str(w.ref) for w in snapshot.workloads_of(s.ref)]}
            for s in snapshot.services
        ],
        "edges": service_edges(snapshot),
        "sources": [{"name": s.name, "status": s.state.value, "error": s.message or None}
                    for s in snapshot.sources],
    }
    return json.dumps(doc, indent=2)


def to_text(snapshot: MeshSnapshot, width: int | None = None) -> str:
    """The graph as a table; when the table is wider than ``width``, one block per edge instead
    (names are never cut), and long lines wrap."""
    from meshobs.render.wrap import wrap

    edges = service_edges(snapshot)
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


def to_dot(snapshot: MeshSnapshot) -> str:
    lines = ["digraph mesh {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    names = {str(s.ref) for s in snapshot.services}
    edges = service_edges(snapshot)
    names |= {d["source"] for d in edges}
    mesh_of = {str(s.ref): s.mesh.value for s in snapshot.services}
    for n in sorted(names):
        mesh = mesh_of.get(n, "unknown")
        shape = {"istio": "box", "appmesh": "hexagon"}.get(mesh, "ellipse")
        lines.append(f'  {_id(n)} [label="{n}\\n{mesh}", shape={shape}];')
    for d in _service_level(edges):
        colour = "red" if d["error_ratio"] >= 0.05 else ("orange" if d["error_ratio"] > 0.01 else "black")
        p99 = _num(d["p99_ms"], ".0f")
        label = f'{d["request_rate"]:.1f} rps\\n{100 * d["error_ratio"]:.1f}% err\\np99 {p99} ms'
        lines.append(f'  {_id(d["source"])} -> {_id(d["destination"])} [label="{label}", color={colour}];')
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(snapshot: MeshSnapshot) -> str:
    lines = ["graph LR"]
    edges = service_edges(snapshot)
    # One class per mesh so a migration shows which side each service is on.
    for s in snapshot.services:
        if s.mesh.value in ("istio", "appmesh"):
            lines.append(f"  class {_id(str(s.ref))} {s.mesh.value}")
    lines.append("  classDef istio fill:#e8f0fe,stroke:#466bb0")
    lines.append("  classDef appmesh fill:#fff4e0,stroke:#d08a1c")
    for d in _service_level(edges):
        p99 = _num(d["p99_ms"], ".0f")
        label = f'{d["request_rate"]:.1f} rps, {100 * d["error_ratio"]:.1f}% err, p99 {p99} ms'
        src, dst = d["source"], d["destination"]
        lines.append(f'  {_id(src)}["{src}"] -->|"{label}"| {_id(dst)}["{dst}"]')
    return "\n".join(lines)


def _service_level(edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Collapse workload-level edges to service -> service (rate-weighted error and max p99)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for d in edges:
        key = (d["source"], d["destination"])
        m = merged.setdefault(key, {"source": key[0], "destination": key[1], "request_rate": 0.0,
                                    "errors": 0.0, "p99_ms": None})
        m["request_rate"] += d["request_rate"]
        m["errors"] += d["request_rate"] * d["error_ratio"]
        if d["p99_ms"] is not None:
            m["p99_ms"] = max(m["p99_ms"] or 0.0, d["p99_ms"])
    for m in merged.values():
        m["error_ratio"] = m["errors"] / m["request_rate"] if m["request_rate"] else 0.0
    return [merged[k] for k in sorted(merged)]


RENDERERS = {"text": to_text, "json": to_json, "dot": to_dot, "mermaid": to_mermaid}


def neighbours(snapshot: MeshSnapshot, service: ServiceRef) -> dict[str, list[str]]:
    return {"callers": [str(s) for s in snapshot.callers(service)],
            "callees": [str(s) for s in snapshot.callees(service)]}
