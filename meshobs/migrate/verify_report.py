"""``migrate verify`` as text (one line per edge, by verdict) or JSON."""

from __future__ import annotations

import json
from typing import Any

from .verify import BETTER, MISSING, NEW, SAME, WORSE, VerifyResult

MARK = {WORSE: "\u00d7", MISSING: "\u00d7", NEW: "+", BETTER: "\u2191", SAME: "\u221a"}


def to_json(result: VerifyResult) -> dict[str, Any]:
    counts = {s: sum(1 for e in result.edges if e.status == s) for s in (SAME, BETTER, WORSE, MISSING, NEW)}
    return {"passed": not result.failed, "checkable": result.checkable, "edges_by_status": counts,
            "edges": [e.to_json() for e in result.edges],
            "splits": [s.to_json() for s in result.splits],
            "configuration": [d.to_json() for d in result.config],
            "envoy": [d.to_json() for d in result.envoy],
            "still_on_appmesh": result.still_on_appmesh, "problems": result.problems, "hints": result.hints}


def _value(v: Any) -> str:
    if v is None:
        return "(absent)"
    return json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else str(v)


def to_text(result: VerifyResult) -> str:
    data = to_json(result)
    counts = ", ".join(f"{n} {s}" for s, n in data["edges_by_status"].items() if n)
    lines = [f"meshobs migrate verify: {len(result.edges)} edges ({counts or 'none'})"]
    if result.still_on_appmesh:
        lines.append(f"  still on App Mesh: {', '.join(result.still_on_appmesh)} (edges into them: 'on App Mesh')")
    order = {WORSE: 0, MISSING: 1, NEW: 2, BETTER: 3, SAME: 4}
    for e in sorted(result.edges, key=lambda e: (order[e.status], e.source, e.destination)):
        where = "  [on App Mesh]" if e.on_appmesh else ""
        why = f": {'; '.join(e.reasons)}" if e.reasons else ""
        lines.append(f"{MARK[e.status]} {e.status:<7} {e.source} -> {e.destination}{where}{why}")
    for s in result.splits:
        exp = "/".join(f"{k} {100 * v:.0f}%" for k, v in sorted(s.expected.items()))
        obs = "/".join(f"{k} {100 * v:.0f}%" for k, v in sorted(s.observed.items()))
        against = "configured weights" if s.against == "configured" else "the split before"
        lines.append(f"\u00d7 split   {s.service}: observed {obs}, {against} {exp} (p={s.p_value:.1g})")
    for title, drifts, sides in (("configuration", result.config, ("App Mesh", "Istio")),
                                 ("envoy", result.envoy, ("before", "after"))):
        for d in drifts:
            lines.append(f"\u00d7 {title:<7} {d.resource}  {d.path or 'presence'}: {sides[0]} {_value(d.left)} "
                         f"-> {sides[1]} {_value(d.right)}")
    for p in result.problems:
        lines.append(f"  ! {p}")
    for h in result.hints:
        lines.append(f"  hint: {h}")
    if not result.checkable:
        lines.append("? could not check: no edges, configuration or Envoy routes to compare")
    elif result.failed:
        lines.append("\u00d7 the mesh does not behave the same after the cut-over")
    else:
        lines.append("\u221a the mesh behaves the same after the cut-over (or better)")
    return "\n".join(lines) + "\n"


def render(result: VerifyResult, fmt: str) -> str:
    return json.dumps(to_json(result), indent=2, default=str) + "\n" if fmt == "json" else to_text(result)
