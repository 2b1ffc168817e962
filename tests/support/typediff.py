"""A deep comparison that holds types too: ``type(a) is type(b)`` at every node, not only ``==``
(``1 == 1.0``, ``(1,) != [1]`` but ``FrozenDict(x) == dict(x)``, and two datetimes of the same
instant with other UTC offsets are ``==``)."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any

import msgspec

_FIELDS: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...] | None:
    names = _FIELDS.get(cls)
    if names is None:
        if dataclasses.is_dataclass(cls):
            names = tuple(f.name for f in dataclasses.fields(cls))
        elif issubclass(cls, msgspec.Struct):
            names = tuple(cls.__struct_fields__)
        else:
            return None
        _FIELDS[cls] = names
    return names


def difference(a: Any, b: Any, path: str = "$") -> str | None:
    """Where ``a`` and ``b`` first differ, in value or in type (None: nowhere)."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} {a!r:.80} is not {type(b).__name__} {b!r:.80}"
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: {len(a)} items, not {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if (d := difference(x, y, f"{path}[{i}]")) is not None:
                return d
        return None
    if isinstance(a, (dict, frozenset, set)):
        if isinstance(a, dict):
            if list(a) != list(b):
                return f"{path}: keys {list(a)!r:.120} are not {list(b)!r:.120}"
            for k in a:
                if (d := difference(a[k], b[k], f"{path}.{k}")) is not None:
                    return d
            return None
        return None if a == b and all(type(x) is type(y) for x, y in zip(sorted(a, key=repr), sorted(b, key=repr))) \
            else f"{path}: {a!r:.80} != {b!r:.80}"
    names = _names(type(a))
    if names is not None:
        for n in names:
            if (d := difference(getattr(a, n), getattr(b, n), f"{path}.{n}")) is not None:
                return d
        return None
    if isinstance(a, datetime):
        if a.isoformat() != b.isoformat() or type(a.tzinfo) is not type(b.tzinfo) or a.tzinfo != b.tzinfo:
            return f"{path}: {a!r} is not {b!r}"
        return None
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return None
    return None if a == b else f"{path}: {a!r:.80} != {b!r:.80}"
