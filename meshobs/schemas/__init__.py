"""The versioned JSON contracts of meshobs' outputs, shipped with the package.

One JSON Schema (draft 2020-12) per document: ``diagnose.json`` (``diagnose -o json``),
``graph.json`` (``graph -o json``), ``drift.json`` (``drift -o json``) and ``bundle.json`` (the
manifest inside a snapshot bundle). Every document carries ``schema_version`` (the integer
below) and ``meshobs_version``. Within a version a field may be added (update the schema in the
same commit; the tests validate every output against it), never removed, renamed or retyped:
that needs the next version. ``meshobs schema NAME`` prints one.
"""

from __future__ import annotations

import json
from typing import Any

from meshobs import __version__

VERSIONS = {"diagnose": 1, "graph": 1, "drift": 1, "bundle": 1}


def stamp(name: str) -> dict[str, Any]:
    """The fields every document starts with."""
    return {"schema_version": VERSIONS[name], "meshobs_version": __version__}


def load(name: str) -> dict[str, Any]:
    """The JSON Schema of document ``name`` (one of :data:`VERSIONS`)."""
    if name not in VERSIONS:
        raise KeyError(f"no schema {name!r} (known: {', '.join(sorted(VERSIONS))})")
    # Imported here: importlib.resources brings tempfile and shutil (~6 ms of every command's
    # start-up, a live question's included), and only `meshobs schema` and the tests read a schema.
    from importlib.resources import files

    schema: dict[str, Any] = json.loads(files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
    return schema
