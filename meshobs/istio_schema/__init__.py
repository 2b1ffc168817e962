"""Istio resources against Istio's own CRD schemas, with the field path of every problem.

One entry point for every caller (``meshobs migrate`` checks its output with it; the
configuration analyzers reuse it for their schema-validation analyzer)::

    from meshobs.istio_schema import validate
    for issue in validate(manifest):          # a Kubernetes object as parsed from YAML
        print(issue.path, issue.rule, issue.message)   # spec.http[0].timeout duration ...

Two layers, each reporting :class:`SchemaIssue` (path, rule, message, severity):

* **the CRD's OpenAPI schema** (:mod:`.structural`; schemas from :mod:`.loader`): unknown
  fields (``unknown-field``; objects are closed as ``kubectl apply --validate=strict`` closes
  them), wrong types (``type``), values outside an enum (``enum``), missing required fields
  (``required``), two of a one-of set (``one-of``). The schemas are vendored
  (``schemas/PROVENANCE.md``: Istio 1.18 CRDs as published on npm) or read from the CRDs a
  cluster serves (:func:`load_crds`);
* **what Istio's validation webhook adds** (:mod:`.semantic`): durations (``duration``), route
  weights (``weights``), retry conditions (``retry-on``), negative numbers (``range``).

A kind or version the schema set does not know yields one ``unsupported`` warning (nothing is
silently passed); a document that is not a Kubernetes object at all yields ``not-an-object``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .loader import ALIASES, SchemaSet, load_crds, vendored

__all__ = ["ALIASES", "SchemaIssue", "SchemaSet", "load_crds", "supports", "validate", "vendored"]

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One problem in one resource. ``path`` is dotted with list indexes (``spec.http[0].route``;
    ``""`` for the whole object); ``rule`` is a stable identifier (see the module docstring)."""

    path: str
    rule: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.path or '(object)'}: {self.message}"


def supports(api_version: str, kind: str, schemas: SchemaSet | None = None) -> bool:
    """Is there a schema for this apiVersion and kind (directly or through an alias)?"""
    return (schemas or vendored()).schema_for(api_version, kind) is not None


def validate(obj: Any, schemas: SchemaSet | None = None) -> list[SchemaIssue]:
    """Every problem in one Istio object (``apiVersion``, ``kind``, ``metadata``, ``spec``),
    sorted by path. Objects of other API groups get one ``unsupported`` warning."""
    from .semantic import semantic_issues
    from .structural import structural_issues

    if not isinstance(obj, Mapping) or not obj.get("apiVersion") or not obj.get("kind"):
        return [SchemaIssue("", "not-an-object", "not a Kubernetes object (apiVersion and kind are required)")]
    schema_set = schemas or vendored()
    api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
    validator = schema_set.validator_for(api_version, kind)
    if validator is None:
        known = ", ".join(schema_set.versions_of(kind)) or "none"
        return [SchemaIssue("", "unsupported", f"no schema for {kind} {api_version} (known versions of "
                            f"{kind}: {known}); not validated", WARNING)]
    issues = structural_issues(obj, validator) + semantic_issues(kind, obj)
    return sorted(set(issues), key=lambda i: (_sort_key(i.path), i.rule, i.message))


def validate_all(objects: Iterable[Any], schemas: SchemaSet | None = None) -> list[tuple[int, SchemaIssue]]:
    """(index of the object, issue) for a sequence of objects (e.g. a multi-document file)."""
    return [(i, issue) for i, obj in enumerate(objects) for issue in validate(obj, schemas)]


def _sort_key(path: str) -> tuple[tuple[int, int, str], ...]:
    import re

    # Indexes sort as numbers (http[10] after http[9]); a number never meets a name.
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\[\]]+", path) if p)
