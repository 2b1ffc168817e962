"""Shape checks for what sources send: a wrong type becomes a ``ValueError`` that names the
payload and the field, never a ``TypeError`` three calls later.

Normalisers run over thousands of proxies, so these are plain ``isinstance`` checks, no model
library. Two tools:

* :func:`load_json` parses a body; malformed or absurdly nested JSON is a ValueError.
* :func:`check` validates a value against a small schema of the fields a reader uses (other
  fields are not looked at), and :func:`each` runs a per-item parser so that one bad item
  costs that item only: its problem is recorded, the other items are kept.

Schema language (``Spec``): ``"str"``, ``"int"`` (a whole number, or a string of digits as YAML
writers sometimes quote ports), ``"num"``, ``"bool"``, ``"scalar"`` (str, number or bool),
``"map"`` / ``"list"`` (any mapping / list), ``[spec]`` (a list whose items follow spec),
``{"field": spec}`` (a mapping whose listed fields, when present and not null, follow their
spec) and ``("map_of", spec)`` (a mapping whose values follow spec).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")
Spec = Any

# Errors an item parser raises when an item has an unexpected shape. Caught per item only, so
# a bad item is reported and skipped; anything else (a bug) still propagates.
ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, RecursionError)


class ShapeError(ValueError):
    """A value of the wrong shape: the message names the payload and the field; ``path`` is the
    field alone (``spec.http[0].route``), for a caller that knows where it was written."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def describe(value: Any) -> str:
    """``int 8080``, ``str 'abc'``, ``list of 3``: a short account of what was found instead."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


_DECODE = msgspec.json.Decoder()


def loads(text: str | bytes) -> Any:
    """``json.loads``, several times faster on the megabytes a big mesh sends.

    msgspec decodes valid JSON to the same values as ``json``; what it refuses (malformed text,
    and the few things ``json`` accepts beyond the standard: NaN/Infinity, numbers beyond a
    float's range, lone surrogates, UTF-16/32 bytes) is handed to ``json.loads``, so the result
    and every error (type and message) are exactly those of ``json.loads``.
    """
    try:
        return _DECODE.decode(text)
    except (msgspec.DecodeError, UnicodeError):
        return json.loads(text)


def loads_standard(text: str | bytes) -> tuple[Any, bool]:
    """:func:`loads`, and whether ``text`` was standard JSON (msgspec read it): what it holds
    then has no NaN or infinite float, so :func:`dumps_compact` may write it with msgspec."""
    try:
        return _DECODE.decode(text), True
    except (msgspec.DecodeError, UnicodeError):
        return json.loads(text), False


def dumps_compact(value: Any, standard: bool) -> str:
    """``json.dumps(value, separators=(",", ":"))``, read back to the same values; written by
    msgspec (several times faster) when ``value`` holds only what standard JSON can (see
    :func:`loads_standard`), non-ASCII characters as themselves instead of ``\\u`` escapes."""
    if standard:
        return msgspec.json.encode(value).decode()
    return json.dumps(value, separators=(",", ":"))


def load_json(text: str | bytes, what: str) -> Any:
    """Parse JSON; ValueError (naming ``what``) for malformed, or nested beyond Python's stack."""
    return load_json_standard(text, what)[0]


def load_json_standard(text: str | bytes, what: str) -> tuple[Any, bool]:
    """:func:`load_json`, and whether ``text`` was standard JSON (see :func:`loads_standard`)."""
    try:
        return loads_standard(text)
    except json.JSONDecodeError as exc:
        snippet = (text[:60] if isinstance(text, str) else text[:60].decode("utf-8", "replace")).replace("\n", " ")
        raise ValueError(f"{what}: not valid JSON ({exc.msg} at char {exc.pos}; starts {snippet!r})") from None
    except RecursionError:
        raise ValueError(f"{what}: JSON nested too deeply to read") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what}: not UTF-8 text ({exc.reason})") from None


_SCALARS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.strip().isdigit()),
    "num": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "scalar": lambda v: isinstance(v, str | int | float | bool),
    "map": lambda v: isinstance(v, Mapping),
    "list": lambda v: isinstance(v, list | tuple),
}
_WORDS = {"str": "a string", "int": "a whole number", "num": "a number", "bool": "true or false",
          "scalar": "a string, number or boolean", "map": "a mapping", "list": "a list"}


def check(value: Any, spec: Spec, where: str) -> None:
    """Raise :class:`ShapeError` at the first field of ``value`` that does not follow ``spec``.

    A scalar field that passes is checked in place, without a call or its path's text (2,000
    DestinationRules of a big mesh: 23,000 calls); one that fails is checked again by a call,
    which raises the error naming it."""
    if isinstance(spec, str):
        if not _SCALARS[spec](value):
            raise ShapeError(f"{where}: expected {_WORDS[spec]}, got {describe(value)}", where)
        return
    if isinstance(spec, list):
        if value.__class__ is not list and not isinstance(value, list | tuple):
            raise ShapeError(f"{where}: expected a list, got {describe(value)}", where)
        sub = spec[0]
        scalar = _SCALARS.get(sub) if isinstance(sub, str) else None
        for i, item in enumerate(value):
            if scalar is None or not scalar(item):
                check(item, sub, f"{where}[{i}]")
        return
    if isinstance(spec, tuple):  # ("map_of", spec)
        if value.__class__ is not dict and not isinstance(value, Mapping):
            raise ShapeError(f"{where}: expected a mapping, got {describe(value)}", where)
        sub = spec[1]
        scalar = _SCALARS.get(sub) if isinstance(sub, str) else None
        for k, v in value.items():
            if v is not None and (scalar is None or not scalar(v)):
                check(v, sub, f"{where}.{k}")
        return
    if value.__class__ is not dict and not isinstance(value, Mapping):
        raise ShapeError(f"{where}: expected a mapping, got {describe(value)}", where)
    for key, sub in spec.items():
        v = value.get(key)
        if v is not None and (sub.__class__ is not str or not _SCALARS[sub](v)):
            check(v, sub, f"{where}.{key}")


def each(items: Iterable[Any], where: str, parse: Callable[[Any], T], problems: list[str] | None) -> list[T]:
    """``parse`` every item; an item that raises one of :data:`ITEM_ERRORS` is left out and its
    problem (``where[i]: why``) appended to ``problems`` (raised instead when it is None)."""
    out: list[T] = []
    for i, item in enumerate(items):
        try:
            out.append(parse(item))
        except ITEM_ERRORS as exc:
            message = f"{where}[{i}]: {exc if isinstance(exc, ValueError) else f'unexpected shape ({exc!r})'}"
            if problems is None:
                raise ShapeError(message) from None
            problems.append(message)
    return out


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (for optional sub-objects)."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one (for optional lists)."""
    return list(value) if isinstance(value, list | tuple) else []
