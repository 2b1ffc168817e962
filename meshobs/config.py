"""``meshobs.yaml``: where the sources are, the window and the evaluation time.

Looked up in order: ``--config FILE``, ``$MESHOBS_CONFIG``, ``<user config dir>/meshobs/meshobs.yaml``.
No file at all means "use the built-in demo". Validation is strict: an unknown key or a wrong
type is a :class:`ConfigError` that names the key (``sources.prometheus.url``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .durations import parse_duration
from .raw import parse_iso


class ConfigError(Exception):
    """A configuration problem a person can fix; the message names the key and the file."""


# A schema is a dict of key -> (type description); nested dicts are sections.
# Leaf types: "str", "bool", "int", "duration", "time", "str-map", "str-list", ("enum", ...),
# ("list", schema) for lists of objects.
_TARGET = {"namespace": "str", "pod": "str", "workload": "str", "url": "url"}
_HTTP = {"url": "url", "headers": "str-map", "verify_tls": "bool", "ca_file": "str",
         "timeout": "duration"}
_AWS = {"region": "str", "profile": "str", "endpoint_url": "url", "timeout": "duration"}
_AWS_RETRY = {"retry_mode": ("enum", "standard", "adaptive"), "max_attempts": "int"}
SCHEMA: dict[str, Any] = {
    "mesh": ("enum", "istio", "appmesh", "auto"),
    "window": "duration",
    "time": "time",
    # The whole run's deadline (collection included; --timeout overrides it) and the size cap
    # of any one response from any source.
    "timeout": "duration",
    "max_response_mb": "float",
    "sources": {
        "prometheus": dict(_HTTP),
        "jaeger": {**_HTTP, "limit": "int", "api": ("enum", "auto", "v3", "v1")},
        "envoy": {"discovery": ("enum", "kubernetes", "static"), "targets": ("list", _TARGET),
                  "port": "int", "timeout": "duration", "concurrency": "int",
                  "namespaces": "str-list", "verify_tls": "bool", "ca_file": "str"},
        "kubernetes": {"kubeconfig": "str", "context": "str", "namespaces": "str-list",
                       "manifests": "str-list", "timeout": "duration"},
        # retry_mode / max_attempts: botocore's retry handling (throttling); limit: traces fetched.
        "cloudwatch": {**_AWS, **_AWS_RETRY, "namespace": "str"},
        "xray": {**_AWS, **_AWS_RETRY, "group": "str", "limit": "int", "filter": "str"},
        "appmesh": {**_AWS, **_AWS_RETRY, "mesh": "str", "exported": "str-list", "api": "bool"},
    },
    "thresholds": {"error_ratio": "float", "p99_ms": "float", "latency_regression": "float",
                   "root_cert_error_days": "float", "root_cert_warning_days": "float",
                   "workload_cert_warning_fraction": "float", "xds_stale_after": "duration"},
    "suppress": ("list", {"code": "str", "subject": "str", "reason": "str", "until": "time"}),
    "drift": {"intended": "str-list", "state_dir": "str", "textfile": "str", "pushgateway": "url",
              "fail_on": ("enum", "error", "warning", "never"), "all_namespaces": "bool",
              "ignore": ("list", {"kind": "str", "namespace": "str", "name": "str", "path": "str",
                                  "layers": "str", "reason": "str"})},
}


@dataclass(frozen=True)
class Config:
    """The validated configuration. ``raw`` is the parsed mapping (never printed unscrubbed)."""

    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    window_s: float = 300.0
    time: datetime | None = None
    mesh: str = "auto"

    def section(self, *keys: str) -> dict[str, Any]:
        node: Any = self.raw
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
            if node is None:
                return {}
        return node if isinstance(node, dict) else {}

    @property
    def sources(self) -> dict[str, Any]:
        return self.section("sources")

    @property
    def is_empty(self) -> bool:
        return not self.sources


def _check(value: Any, spec: Any, key: str) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{key}: expected {expected}, got {type(value).__name__} {value!r}")

    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise fail("a mapping")
        for k in value:
            if k not in spec:
                import difflib

                known = ", ".join(sorted(spec))
                close = difflib.get_close_matches(str(k), list(spec), n=1, cutoff=0.6)
                guess = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(f"{key + '.' if key else ''}{k}: unknown key ({guess}known here: {known})")
        return {k: _check(v, spec[k], f"{key + '.' if key else ''}{k}") for k, v in value.items()}
    if isinstance(spec, tuple) and spec[0] == "enum":
        if value not in spec[1:]:
            raise ConfigError(f"{key}: expected one of {', '.join(spec[1:])}, got {value!r}")
        return value
    if isinstance(spec, tuple) and spec[0] == "list":
        if not isinstance(value, list):
            raise fail("a list")
        return [_check(v, spec[1], f"{key}[{i}]") for i, v in enumerate(value)]
    if spec == "str":
        if not isinstance(value, str):
            raise fail("a string")
        return _expand(value, key)
    if spec == "url":
        if not isinstance(value, str):
            raise fail("a URL string")
        url = _expand(value, key)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{key}: expected an http:// or https:// URL, got {value!r}")
        return url
    if spec == "bool":
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if spec in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                spec == "int" and not isinstance(value, int)):
            raise fail("a number" if spec == "float" else "a whole number")
        return value
    if spec == "duration":
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        return value
    if spec == "time":
        if isinstance(value, datetime):
            return value
        try:
            parse_iso(str(value))
        except ValueError:
            raise ConfigError(f"{key}: not an RFC 3339 time: {value!r}") from None
        return value
    if spec == "str-map":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise fail("a mapping of strings")
        return {str(k): _expand(v, f"{key}.{k}") for k, v in value.items()}
    if spec == "str-list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("a list of strings")
        return value
    raise AssertionError(f"bad schema for {key}")  # pragma: no cover


# Keys that name files: relative paths in a config file are relative to that file's folder
# (so a CronJob's mounted config and the manifests beside it keep working from any cwd).
PATH_KEYS = (("sources", "kubernetes", "kubeconfig"), ("sources", "kubernetes", "manifests"),
             ("sources", "appmesh", "exported"), ("sources", "prometheus", "ca_file"),
             ("sources", "jaeger", "ca_file"), ("sources", "envoy", "ca_file"), ("drift", "intended"),
             ("drift", "state_dir"), ("drift", "textfile"))


def _resolve_paths(checked: dict[str, Any], base: Path) -> None:
    for keys in PATH_KEYS:
        node: Any = checked
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict) or keys[-1] not in node:
            continue
        value = node[keys[-1]]

        def fix(p: str) -> str:
            expanded = Path(p).expanduser()
            return str(expanded if expanded.is_absolute() else (base / expanded))

        node[keys[-1]] = [fix(v) for v in value] if isinstance(value, list) else fix(value)


_UNSET_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, key: str) -> str:
    """``${VAR}`` from the environment; an unset one is an error, not a literal sent to a server
    (``Bearer ${TOKEN}`` would otherwise come back as a puzzling 401)."""
    expanded = os.path.expandvars(value)
    missing = _UNSET_VAR.findall(expanded)
    if missing:
        raise ConfigError(f"{key}: environment variable {', '.join(sorted(set(missing)))} is not set")
    return expanded


def _utc(ts: datetime) -> datetime:
    """YAML reads ``2026-11-20 12:00:00`` as a naive datetime: meshobs means UTC, never local time."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def validate(raw: Any, path: Path | None = None) -> Config:
    """Check ``raw`` (parsed YAML) against the schema and build a :class:`Config`."""
    where = f"{path}: " if path else ""
    if raw is None:
        raw = {}
    try:
        checked = _check(raw, SCHEMA, "")
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    if path is not None:
        _resolve_paths(checked, path.parent)
    window = parse_duration(checked.get("window", "5m"))
    if window <= 0:
        raise ConfigError(f"{where}window: must be longer than 0s")
    if "timeout" in checked and parse_duration(checked["timeout"]) <= 0:
        raise ConfigError(f"{where}timeout: must be longer than 0s")
    if "max_response_mb" in checked and checked["max_response_mb"] <= 0:
        raise ConfigError(f"{where}max_response_mb: must be more than 0")
    _one_auth(checked, where)
    when = checked.get("time")
    t = _utc(when if isinstance(when, datetime) else parse_iso(str(when))) if when else None
    return Config(raw=checked, path=path, window_s=window, time=t, mesh=checked.get("mesh", "auto"))


def _one_auth(checked: dict[str, Any], where: str) -> None:
    """One way to authenticate per source: credentials in the URL and an Authorization header
    would have one silently win over the other."""
    for name, section in (checked.get("sources") or {}).items():
        if not isinstance(section, dict) or not isinstance(section.get("url"), str):
            continue
        parts = urlsplit(section["url"])
        headers = {str(k).lower() for k in (section.get("headers") or {})}
        if (parts.username or parts.password) and "authorization" in headers:
            raise ConfigError(f"{where}sources.{name}: credentials in the url (user:password@) and a "
                              f"headers.Authorization: give one of them")


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "meshobs" / "meshobs.yaml"


def find_config(explicit: str | None) -> Path | None:
    """The config file to use, or None when there is none anywhere (demo mode)."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file (from --config)")
        return p
    env = os.environ.get("MESHOBS_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file (from MESHOBS_CONFIG)")
        return p
    p = user_config_path()
    return p if p.is_file() else None


def load_config(explicit: str | None = None) -> Config | None:
    """Load and validate the config; None when no config exists at all."""
    import yaml

    path = find_config(explicit)
    if path is None:
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return validate(raw, path)
