"""``y``: a resource as YAML, intended (Git) and live side by side, drifted lines marked (pure).

Both sides are shown in the canonical form meshobs.drift compares (defaults filled, hosts
qualified, durations in seconds, route destinations keyed by ``host|subset``), and each line
carries the same path as drift's differences (``spec.http[0].route[HOST|v2].weight``), so the
lines to mark are exactly the differences drift reports: intended vs live, and live vs what the
proxies run (effective). No second comparison.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshobs.drift.compare import INTENDED_LIVE, LIVE_EFFECTIVE, Drift, compare_resources
from meshobs.drift.effective import compare_effective
from meshobs.drift.normalise import Keyed, canonical
from meshobs.model import ConfigResource, Proxy


@dataclass(frozen=True, slots=True)
class YamlLine:
    path: str
    text: str
    drifted: bool = False
    note: str = ""  # the other side's value, on the line of a drifted field


@dataclass(frozen=True)
class YamlView:
    title: str
    intended: list[YamlLine] | None  # None: no intended copy to show
    live: list[YamlLine] | None
    drifts: list[str]  # one line per difference, in words
    notes: list[str]


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = str(value)
    plain = (text and text[0] not in "-?:,[]{}#&*!|>'\"%@`" and ": " not in text and " #" not in text
             and text.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "~")
             and not _numeric(text))
    return text if plain else json.dumps(text)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _child(path: str, key: Any, keyed: bool) -> str:
    if keyed:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _emit(value: Any, path: str, depth: int, out: list[tuple[str, str]]) -> None:
    pad = "  " * depth
    if isinstance(value, Mapping):
        keyed = isinstance(value, Keyed)
        for key in (sorted(value, key=str) if keyed else value):
            child, v = _child(path, key, keyed), value[key]
            if isinstance(v, (Mapping, list)) and v:
                out.append((child, f"{pad}{key}:"))
                _emit(v, child, depth + 1 if isinstance(v, Mapping) else depth, out)
            else:
                empty = "{}" if isinstance(v, Mapping) else "[]" if isinstance(v, list) else _scalar(v)
                out.append((child, f"{pad}{key}: {empty}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            child = f"{path}[{i}]"
            if isinstance(v, (Mapping, list)) and v:
                sub: list[tuple[str, str]] = []
                _emit(v, child, depth + 1, sub)
                first_path, first = sub[0]
                out.append((first_path, f"{pad}- {first.lstrip()}"))
                out.extend(sub[1:])
            else:
                out.append((child, f"{pad}- {_scalar(v) if not isinstance(v, (Mapping, list)) else '{}'}"))


def yaml_lines(value: Any, marks: Mapping[str, str]) -> list[YamlLine]:
    """``value`` (canonical) as YAML lines; a line under a drifted path is marked, and the line of
    the drifted field itself carries ``marks[path]`` (the other side's value)."""
    raw: list[tuple[str, str]] = []
    _emit(value, "", 0, raw)
    out = []
    for path, text in raw:
        hit = next((p for p in marks if path == p or path.startswith((p + ".", p + "["))), None)
        out.append(YamlLine(path, text, hit is not None, marks.get(path, "")))
    return out


def value_words(value: Any) -> str:
    """A drifted value as the YAML shows it (``90``, not ``90.0``; ``absent`` for None)."""
    if value is None:
        return "absent"
    return json.dumps(value) if isinstance(value, (dict, list)) else _scalar(value)


def drift_words(d: Drift) -> str:
    """``≠ PATH: live 90 → effective 50 (on 2 proxies: ...)``; the cluster suffix of hosts is cut
    (the YAML below has it in full)."""
    first, second = d.layers.split("-", 1)
    who = f" (on {len(d.proxies)} proxies: {', '.join(d.proxies[:3])})" if d.proxies else ""
    path = (d.path or "(the whole resource)").replace(".svc.cluster.local", "")
    return f"≠ {path}: {first} {value_words(d.left)} → {second} {value_words(d.right)}{who}"


def yaml_view(live: ConfigResource | None, intended: ConfigResource | None, proxies: Sequence[Proxy],
              intended_note: str = "") -> YamlView:
    """The resource's two sides and every difference drift finds for it."""
    resource = live or intended
    assert resource is not None
    drifts: list[Drift] = []
    if intended is not None and live is not None:
        drifts += compare_resources([intended], [live], INTENDED_LIVE)
    if live is not None and any(p.routes or p.clusters for p in proxies):
        drifts += compare_effective([live], proxies, LIVE_EFFECTIVE)
    mine = [d for d in drifts if (d.resource.kind, d.resource.namespace, d.resource.name) == resource.key]
    left_marks = {d.path: f"live: {value_words(d.right)}" for d in mine if d.layers == INTENDED_LIVE}
    right_marks = {d.path: f"intended: {value_words(d.left)}" for d in mine if d.layers == INTENDED_LIVE}
    for d in mine:
        if d.layers == LIVE_EFFECTIVE:
            note = f"effective: {value_words(d.right)}" + (f" on {len(d.proxies)} proxies" if d.proxies else "")
            right_marks[d.path] = "; ".join(x for x in (right_marks.get(d.path), note) if x)
    notes = ["canonical form, as meshobs drift compares it: defaults filled, hosts qualified, "
             "durations in seconds, destinations keyed by host|subset"]
    if intended is None:
        notes.append(intended_note or "no intended (Git) copy: set drift.intended in meshobs.yaml")
    if live is None:
        notes.append("not in the cluster (live): only the intended copy exists")
    if live is not None and not any(p.routes or p.clusters for p in proxies):
        notes.append("no Envoy configuration in the snapshot: live vs effective not compared")
    return YamlView(str(resource),
                    yaml_lines(canonical(intended), left_marks) if intended is not None else None,
                    yaml_lines(canonical(live), right_marks) if live is not None else None,
                    [drift_words(d) for d in mine], notes)
