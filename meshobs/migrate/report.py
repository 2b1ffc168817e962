"""What the translation did, for people (text on stdout, MIGRATION.md) and tools (JSON)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .ledger import CHANGED, NO_RULE, UNTRANSLATABLE, Entry

_TITLES = {UNTRANSLATABLE: "Not translatable", CHANGED: "Behaves differently by default",
           NO_RULE: "Not translated (no rule: review by hand)"}


def summary(translation: Any) -> dict[str, Any]:
    ledger = translation.ledger
    kinds = Counter(m.kind for m in translation.manifests)
    return {"appmesh_resources": len(translation.resources), "istio_manifests": len(translation.manifests),
            "manifests_by_kind": dict(sorted(kinds.items())), "fields_translated": ledger.translated,
            "untranslatable": len(ledger.of_status(UNTRANSLATABLE)),
            "behaviour_changes": len(ledger.of_status(CHANGED)),
            "no_rule": len(ledger.of_status(NO_RULE))}


def to_json(translation: Any, round_trip: list[Any], schema: list[Any]) -> dict[str, Any]:
    return {"summary": summary(translation),
            "manifests": [{"file": m.filename, "kind": m.kind, "namespace": m.namespace, "name": m.name,
                           "from": m.sources} for m in translation.manifests],
            "fields": [e.to_json() for e in translation.ledger.entries],
            "notes": translation.notes,
            "round_trip": [d.to_json() for d in round_trip],
            "schema": [{"file": f, "path": i.path, "rule": i.rule, "severity": i.severity, "message": i.message}
                       for f, i in schema]}


def grouped(entries: list[Entry]) -> list[tuple[str, str, str, list[str]]]:
    """(path, reason, closest, resources): one line for a field that fares the same in many
    resources (every virtual node's health check), in first-seen order."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for e in entries:
        groups.setdefault((e.path, e.reason, e.closest), []).append(e.resource)
    return [(path, reason, closest, resources) for (path, reason, closest), resources in groups.items()]


def _resources(names: list[str]) -> str:
    kinds = {n.split(" ", 1)[0] for n in names}
    if len(kinds) == 1 and len(names) > 1:
        return f"{kinds.pop()} {', '.join(n.split(' ', 1)[1] for n in names)}"
    return ", ".join(names)


def _entries(entries: list[Entry]) -> list[str]:
    return [f"- `{path}` of {_resources(names)}: {reason}" + (f". Closest: {closest}." if closest else "")
            for path, reason, closest, names in grouped(entries)]


def markdown(translation: Any) -> str:
    s = summary(translation)
    lines = ["# App Mesh -> Istio: what meshobs translated", "",
             f"{s['appmesh_resources']} App Mesh resources -> {s['istio_manifests']} manifests "
             f"({', '.join(f'{n} {k}' for k, n in s['manifests_by_kind'].items())}); "
             f"{s['fields_translated']} fields translated.", ""]
    for note in translation.notes:
        lines.append(f"- {note}")
    for status in (UNTRANSLATABLE, CHANGED, NO_RULE):
        entries = translation.ledger.of_status(status)
        if entries:
            lines += ["", f"## {_TITLES[status]} ({len(entries)})", "", *_entries(entries)]
    return "\n".join(lines) + "\n"


def text(translation: Any, round_trip: list[Any], schema: list[Any], written: str | None) -> str:
    s = summary(translation)
    lines = [f"meshobs migrate: {s['appmesh_resources']} App Mesh resources -> {s['istio_manifests']} Istio "
             f"manifests" + (f" in {written}" if written else "")]
    lines.append(f"  fields: {s['fields_translated']} translated, {s['untranslatable']} not translatable, "
                 f"{s['behaviour_changes']} behave differently by default, {s['no_rule']} without a rule"
                 + (" (see MIGRATION.md)" if written else ""))
    for status in (UNTRANSLATABLE, NO_RULE):
        for path, reason, closest, names in grouped(translation.ledger.of_status(status)):
            lines.append(f"  - {path} of {_resources(names)}: {reason}" + (f" (closest: {closest})" if closest else ""))
    if round_trip:
        lines.append(f"\u00d7 round trip: {len(round_trip)} difference(s) between App Mesh and the Istio result")
        for d in round_trip:
            lines.append(f"    {d.resource}  {d.path or 'presence'}: App Mesh {d.left} -> Istio {d.right}")
    else:
        lines.append("\u221a round trip: the Istio resources route, retry, time out and secure like App Mesh did")
    errors = [(f, i) for f, i in schema if i.severity == "error"]
    warnings = [(f, i) for f, i in schema if i.severity != "error"]
    if errors:
        lines.append(f"\u00d7 Istio CRD schemas: {len(errors)} error(s)")
    else:
        lines.append("\u221a Istio CRD schemas: every manifest validates"
                     + (f" ({len(warnings)} warning(s))" if warnings else ""))
    for f, i in errors + warnings:
        lines.append(f"    {f} {i.path}: {i.message}")
    for note in translation.notes:
        lines.append(f"  next: {note}")
    return "\n".join(lines) + "\n"
