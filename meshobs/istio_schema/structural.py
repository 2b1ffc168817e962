"""The OpenAPI layer: one :class:`SchemaIssue` per ``jsonschema`` error, said in Istio's words.

``jsonschema`` reports an unknown field as one ``additionalProperties`` error on the parent;
here each unknown field is its own issue at its own path (with the nearest known name as a
suggestion), and a one-of set (``StringMatch``: ``exact`` | ``prefix`` | ``regex``) names its
members instead of quoting the schema.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from . import SchemaIssue

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
               dict: "object", type(None): "null"}


def path_text(parts: Iterable[Any]) -> str:
    """``["spec", "http", 0, "route"]`` -> ``spec.http[0].route``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def structural_issues(obj: Mapping[str, Any], validator: Draft7Validator) -> list[SchemaIssue]:
    """Every schema violation in ``obj``."""
    issues: list[SchemaIssue] = []
    for error in validator.iter_errors(obj):
        issues.extend(_issues(error))
    return issues


def _kind_of(value: Any) -> str:
    return next((name for t, name in _TYPE_NAMES.items() if type(value) is t), type(value).__name__)


def _issues(error: ValidationError) -> list[SchemaIssue]:
    path = path_text(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = sorted((schema.get("properties") or {}).keys())
        out = []
        for key in sorted(set(error.instance) - set(known)):
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(SchemaIssue(_join(path, str(key)), "unknown-field", f"unknown field {key!r}{hint}"))
        return out
    if error.validator == "type":
        wanted = error.validator_value
        wanted_text = " or ".join(w for w in wanted if w != "null") if isinstance(wanted, list) else str(wanted)
        return [SchemaIssue(path, "type", f"expected {wanted_text}, got {_kind_of(error.instance)} "
                                          f"{json.dumps(error.instance, default=str)[:60]}")]
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value or ())
        return [SchemaIssue(path, "enum", f"{error.instance!r} is not one of: {allowed}")]
    if error.validator == "required":
        missing = [str(f) for f in error.validator_value if isinstance(error.instance, Mapping)
                   and f not in error.instance]
        return [SchemaIssue(_join(path, m), "required", f"required field {m!r} is missing") for m in missing]
    if error.validator == "oneOf":
        members = _one_of_members(error.validator_value)
        if members and isinstance(error.instance, Mapping):
            present = [m for m in members if m in error.instance]
            return [SchemaIssue(path, "one-of", f"set at most one of {', '.join(members)} "
                                                f"(found {', '.join(present) or 'none'})")]
    return [SchemaIssue(path, str(error.validator), error.message)]


def _one_of_members(alternatives: Any) -> list[str]:
    """The field names of a protobuf ``oneof`` as Istio's CRDs encode it: ``oneOf`` of
    ``{required: [x]}`` plus ``{not: {anyOf: [...]}}`` (none set)."""
    names: list[str] = []
    for alt in alternatives or ():
        if isinstance(alt, Mapping) and list(alt) == ["required"] and len(alt["required"]) == 1:
            names.append(str(alt["required"][0]))
    return names
