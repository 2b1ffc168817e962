"""Drift results as text (for a terminal or a cron mail), JSON (for tools) or Markdown (tickets)."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from meshobs.raw import parse_iso
from meshobs.words import plural

from .compare import Drift
from .run import DriftRun

MARK = {"error": "\u00d7", "warning": "\u203c"}  # the marks `linkerd check` uses
_MISSING = "(absent)"


def _value(v: Any) -> str:
    if v is None:
        return _MISSING
    if isinstance(v, (dict, list)):
        text = json.dumps(v, sort_keys=True, separators=(",", ":"))
        return text if len(text) <= 80 else text[:77] + "..."
    return str(v)


def when(stamp: str | None) -> str:
    """A stored ISO timestamp for people: to the second, UTC (``2026-11-20 12:00:00Z``)."""
    if not stamp:
        return "unknown"
    try:
        return parse_iso(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except ValueError:
        return stamp  # an odd value in a hand-edited state file: show it as it is


def _history(run: DriftRun) -> dict[str, tuple[str, str]]:
    if run.record is None:
        return {}
    return {t.drift.id: (t.status, t.first_seen) for t in run.record.tracked}


def _sorted(drifts: list[Drift]) -> list[Drift]:
    return sorted(drifts, key=lambda d: (-d.severity.weight, d.layers, d.resource, d.path))


def to_json(run: DriftRun) -> dict[str, Any]:
    """The whole result as plain data: the versioned document ``meshobs/schemas/drift.json``
    (documented in docs/drift.md)."""
    from meshobs.schemas import stamp

    hist = _history(run)
    items = []
    for d in _sorted(run.drifts):
        item = d.to_json()
        status, first = hist.get(d.id, (None, None))
        item["status"], item["first_seen"] = status, first
        items.append(item)
    record = run.record
    return {
        **stamp("drift"),
        "checked_at": run.checked_at.isoformat(),
        "complete": run.complete,
        "checked": run.checked,
        "layers": {k: {"available": s.available, "count": s.count, "origin": s.origin, "error": s.error,
                       "configured": s.configured} for k, s in run.layers.items()},
        "problems": run.problems,
        "summary": {"drift": len(run.active),
                    "error": sum(1 for d in run.active if d.severity.value == "error"),
                    "warning": sum(1 for d in run.active if d.severity.value == "warning"),
                    "ignored": len(run.ignored),
                    "new": sum(1 for t in record.tracked if t.status == "new") if record else None,
                    "resolved": len(record.resolved) if record else None},
        "drift": [i for i in items if i["ignored"] is None],
        "ignored": [i for i in items if i["ignored"] is not None],
        "resolved": record.resolved if record else [],
        "unchecked": record.unchecked if record else [],
    }


def _where(d: Drift) -> str:
    return d.path or (d.presence or "")


def _sides(d: Drift) -> tuple[str, str]:
    first, second = d.layers.split("-", 1)
    return first, second


def _agree(run: DriftRun) -> str:
    """``live and effective configuration agree``: only the layers this run compared."""
    names = [n for n in ("intended", "live", "effective") if any(n in pair.split("-") for pair in run.checked)]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
    return f"{listed} configuration agree"


def _headline(run: DriftRun) -> str:
    data = to_json(run)["summary"]
    if not run.checked:
        return "meshobs drift: nothing checked"
    by_severity = [plural(data[k], k) for k in ("error", "warning") if data[k]]
    parts = [plural(data["drift"], "difference") + (f" ({', '.join(by_severity)})" if by_severity else "")]
    if run.record is not None:
        parts.append(f"{data['new']} new, {data['resolved']} resolved")
    if data["ignored"]:
        parts.append(f"{data['ignored']} ignored")
    return f"meshobs drift: {'; '.join(parts)}  [checked: {', '.join(run.checked)}]"


def to_text(run: DriftRun) -> str:
    """Human-readable lines: one per drift, proxies and history under it."""
    hist = _history(run)
    lines = [_headline(run)]
    for name, s in run.layers.items():
        state = (plural(s.count, "proxy", "proxies") if name == "effective" else plural(s.count, "resource")) \
            if s.available else (
            # why is on the "could not check" line below (every configured layer missing is one)
            "unavailable" if s.configured else "not configured")
        lines.append(f"  {name:<9} {state}" + (f"  ({s.origin})" if s.origin and s.available else ""))
    for p in run.problems:
        lines.append(f"  ! could not check: {p}")
    for d in _sorted(run.active):
        first, second = _sides(d)
        status = hist.get(d.id)
        since = f"  [{status[0]}, since {when(status[1])}]" if status else ""
        code = f"{d.code} " if d.code else ""
        lines.append(f"{MARK.get(d.severity.value, '-')} {d.severity.value:<7} {code}{d.resource}  {d.layers}  "
                     f"{_where(d)}: {first} {_value(d.left)} -> {second} {_value(d.right)}{since}")
        for proxy, value in d.per_proxy:
            lines.append(f"    proxy {proxy}: {_value(value)}")
        in_sync = dict(d.extra).get("proxies_in_sync")
        if d.per_proxy and in_sync:
            lines.append(f"    in sync: {', '.join(in_sync)} (the proxies above never got the update)")
    for d in _sorted(run.ignored):
        lines.append(f"- ignored {d.resource}  {d.layers}  {_where(d)}: {d.ignored}")
    if run.record is not None:
        for r in run.record.resolved:
            res = r["resource"]
            lines.append(f"√ resolved {res['kind']} {res['namespace']}/{res['name']}  {r['layers']}  "
                         f"{r['path'] or 'presence'} (first seen {when(r['first_seen'])})")
        for r in run.record.unchecked:
            res = r["resource"]
            lines.append(f"? unchecked {res['kind']} {res['namespace']}/{res['name']}  {r['layers']}  "
                         f"{r['path'] or 'presence'} (first seen {when(r['first_seen'])}; not checked this run)")
    if not run.active and run.complete:
        lines.append(f"√ no drift: {_agree(run)}")
    return "\n".join(lines) + "\n"


def to_markdown(run: DriftRun) -> str:
    """A Markdown table (for a ticket or a pull-request comment)."""
    hist = _history(run)
    lines = [f"## {_headline(run)}", ""]
    for p in run.problems:
        lines.append(f"- **could not check:** {p}")
    if run.active:
        lines += ["| severity | code | resource | layers | path | first layer | second layer | proxies | status |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for d in _sorted(run.active):
            first, second = _sides(d)
            status = hist.get(d.id)
            cells = [d.severity.value, d.code or "", f"`{d.resource}`", d.layers, f"`{_where(d)}`",
                     f"{first}: `{_value(d.left)}`", f"{second}: `{_value(d.right)}`",
                     ", ".join(d.proxies), f"{status[0]} since {when(status[1])}" if status else ""]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    elif run.complete:
        lines.append(f"No drift: {_agree(run)}.")
    if run.ignored:
        lines += ["", "Ignored:", ""]
        lines += [f"- `{d.resource}` `{_where(d)}` ({d.layers}): {d.ignored}" for d in _sorted(run.ignored)]
    return "\n".join(lines) + "\n"


def render(run: DriftRun, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(run), indent=2, sort_keys=False, default=str) + "\n"
    if fmt == "markdown":
        return to_markdown(run)
    return to_text(run)
