"""Kubernetes label selectors, as the API server applies ``?labelSelector=`` to a list.

Equality-based (``k=v``, ``k==v``, ``k!=v``) and set-based (``k in (a,b)``, ``k notin (a,b)``,
``k``, ``!k``) requirements, comma-separated and ANDed, with the API server's semantics: ``!=``
and ``notin`` also match objects without the label. The demo Kubernetes server uses it so a
collector that narrows its lists is answered as a real cluster would answer it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Labels = Mapping[str, str]
Requirement = Callable[[Labels], bool]

_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)\s*$")
_EQ = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


class SelectorError(ValueError):
    """A labelSelector the API server would refuse (it answers 400)."""


def _split(selector: str) -> list[str]:
    # Commas separate requirements except inside a set's parentheses.
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return parts


def _requirement(text: str) -> Requirement:
    if m := _SET.match(text):
        key, op = m.group(1), m.group(2)
        values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
        if not values:
            raise SelectorError(f"empty set in {text.strip()!r}")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ.match(text):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.match(text):
        negate, key = m.group(1) == "!", m.group(2)
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"cannot parse requirement {text.strip()!r}")


def parse_selector(selector: str) -> Requirement:
    """The predicate ``selector`` stands for; an empty selector matches everything."""
    if not selector.strip():
        return lambda labels: True
    requirements = [_requirement(part) for part in _split(selector)]
    return lambda labels: all(r(labels) for r in requirements)
