"""Field types and error wording for the typed configuration (:mod:`meshobs.config_model`).

Each type here is an ``Annotated`` pydantic type that validates one kind of value the way
meshobs.yaml has always accepted it, and says what it accepts in the JSON Schema:

- :data:`Text`: a string; ``${VAR}`` is expanded from the environment (an unset one is an error).
- :data:`Url`: a :data:`Text` that must be an ``http://`` or ``https://`` URL.
- :data:`FilePath`: a :data:`Text` naming a file; ``~`` is expanded and a relative path is
  resolved against the config file's folder (so a mounted config keeps working from any cwd).
- :data:`StrList` / :data:`PathList`: a list of those; a single string is a list of one.
- :data:`Duration` / :data:`PositiveDuration`: ``30s``, ``5m``, ``1h30m`` or a number of seconds.
  The value is a ``float`` of seconds that remembers how it was written (``.text``), and dumps
  back to what was written, so ``Config.raw`` keeps ``"10s"`` where the user wrote ``10s``.
- :data:`Time`: an RFC 3339 time (or a YAML timestamp); naive means UTC; dumps as RFC 3339.

:func:`problems` turns a pydantic ``ValidationError`` into lines a person can act on, each
naming the key (``sources.envoy.targets[0].port: ...``), with "did you mean" for unknown keys.
Imported only when a configuration is validated (pydantic is not needed for ``--help``).
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .durations import parse_duration
from .raw import parse_iso

# Every problem we raise ourselves has this error type; its message is used as written.
_OURS = "meshobs"


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError(_OURS, message)


def _got(value: Any) -> str:
    return f"got {type(value).__name__} {value!r}"


class Section(BaseModel):
    """Base of every mapping in meshobs.yaml: unknown keys are errors, values are never coerced
    (``limit: "10"`` is refused, not read as 10) and ``key:`` with no value is refused rather
    than silently meaning "default" (remove the key to get the default)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None and key in cls.model_fields:
                    raise PydanticCustomError("meshobs_null", "{key}", {"key": key})
        return data


# --- strings ---------------------------------------------------------------------------------

_UNSET_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: str) -> str:
    """``${VAR}`` from the environment; an unset one is an error, not a literal sent to a server
    (``Bearer ${TOKEN}`` would otherwise come back as a puzzling 401)."""
    expanded = os.path.expandvars(value)
    missing = _UNSET_VAR.findall(expanded)
    if missing:
        raise _fail(f"environment variable {', '.join(sorted(set(missing)))} is not set")
    return expanded


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(f"expected an http:// or https:// URL, got {value!r}")
    try:
        port = parts.port  # ValueError past 65535, for a negative or non-numeric one
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        text = parts.netloc.rpartition("@")[2].rpartition(":")[2]  # never the user-info
        raise _fail(f"the URL's port must be 1-65535, got {text!r}")
    return value


def _resolve(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base")
    if base is None:  # validated without a file (tests, --set): nothing to be relative to
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else Path(base) / path)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Text = Annotated[str, AfterValidator(expand)]
Url = Annotated[str, AfterValidator(expand), AfterValidator(_url),
                WithJsonSchema({"type": "string", "format": "uri", "pattern": "^https?://[^/]+"})]
FilePath = Annotated[str, AfterValidator(expand), AfterValidator(_resolve)]
StrList = Annotated[list[Text], BeforeValidator(_one_or_many),
                    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})]
PathList = Annotated[list[FilePath], BeforeValidator(_one_or_many),
                     WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})]


# --- durations -------------------------------------------------------------------------------

class Seconds(float):
    """A duration in seconds that remembers how it was written (``"5m"``)."""

    text: str | int | float

    def __new__(cls, seconds: float, text: str | int | float) -> Seconds:
        obj = super().__new__(cls, seconds)
        obj.text = text
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # copy/deepcopy/pickle keep the text
        return (Seconds, (float(self), self.text))


def _duration(minimum_exclusive: bool) -> Any:
    def check(value: Any) -> Seconds:
        if isinstance(value, Seconds):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _fail(f"expected a duration such as 30s, 5m or 1h, {_got(value)}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        if minimum_exclusive and seconds <= 0:
            raise _fail(f"must be longer than 0s, got {value!r}")
        return Seconds(seconds, value)

    return check


_DURATION_SCHEMA = {"anyOf": [{"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$|^\d+(\.\d+)?$",
                               "examples": ["30s", "5m", "1h30m"]},
                              {"type": "number", "minimum": 0}]}
_keep_text = PlainSerializer(lambda d: d.text if isinstance(d, Seconds) else d)
# Typed as float (what readers use); the value is a Seconds, which remembers its text.
Duration = Annotated[float, PlainValidator(_duration(False)), _keep_text, WithJsonSchema(_DURATION_SCHEMA)]
PositiveDuration = Annotated[float, PlainValidator(_duration(True)), _keep_text, WithJsonSchema(_DURATION_SCHEMA)]


# --- times -----------------------------------------------------------------------------------

def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = parse_iso(value)
        except ValueError:
            raise _fail(f"not an RFC 3339 time: {value!r}") from None
    else:
        raise _fail(f"not an RFC 3339 time: {value!r}")
    # YAML reads ``2026-11-20 12:00:00`` as a naive datetime: meshobs means UTC, never local time.
    return when if when.tzinfo else when.replace(tzinfo=UTC)


Time = Annotated[datetime, PlainValidator(_time),
                 PlainSerializer(lambda t: t.isoformat().replace("+00:00", "Z")),
                 WithJsonSchema({"type": "string", "format": "date-time"})]


# --- errors ----------------------------------------------------------------------------------

_EXPECTED = {
    "string_type": "a string", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "bool_type": "true or false", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}
_BOUNDS = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
           "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}


def key_of(loc: tuple[int | str, ...]) -> str:
    """``("sources", "envoy", "targets", 0, "port")`` -> ``sources.envoy.targets[0].port``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (None when it is not a model)."""
    node: Any = root
    for part in loc:
        if isinstance(part, int):
            continue  # a list index: the list's item model was already unwrapped below
        if not (isinstance(node, type) and issubclass(node, BaseModel)) or part not in node.model_fields:
            return None
        node = _unwrap(node.model_fields[part].annotation)
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """The model inside ``X | None``, ``list[X]``, ``Annotated[X, ...]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (list, typing.Union) or str(origin) == "<class 'types.UnionType'>":
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        else:
            return annotation


def problems(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per problem, each starting with the key it is about."""
    lines = []
    # Unknown keys first: a misspelt key (``urll``) often explains the others (``url`` missing).
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    for err in errors:
        loc = tuple(err["loc"])
        kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
        if kind == "meshobs_null":
            loc = (*loc, ctx["key"])
            text = "no value (give one, or remove the key to use the default)"
        elif kind == "extra_forbidden":
            model = _model_at(root, loc[:-1])
            known = sorted(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            guess = f"did you mean {close[0]}? " if close else ""
            text = f"unknown key ({guess}known here: {', '.join(known)})"
        elif kind == "missing":
            text = "required"
        elif kind in _EXPECTED:
            text = f"expected {_EXPECTED[kind]}, {_got(value)}"
        elif kind == "literal_error":
            text = f"expected one of {ctx.get('expected', '').replace(chr(39), '')}, got {value!r}"
        elif kind in _BOUNDS:
            name, words = _BOUNDS[kind]
            bound = ctx[name]
            text = f"must be {words} {bound:g}, got {value!r}" if isinstance(bound, float) else \
                f"must be {words} {bound}, got {value!r}"
        else:
            text = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        lines.append(f"{key_of(loc)}: {text}" if loc else text)
    return lines
