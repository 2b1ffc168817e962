"""``meshobs.yaml``: where the sources are, the window and the evaluation time.

Looked up in order: ``--config FILE``, ``$MESHOBS_CONFIG``, ``<user config dir>/meshobs/meshobs.yaml``.
No file at all means "use the built-in demo". Validation is strict: an unknown key, a wrong
type or a value out of range is a :class:`ConfigError` that names the key
(``sources.prometheus.url``). The keys, their types, defaults and documentation are one pydantic
model, :mod:`meshobs.config_model` (add new keys there; its docstring says how). This module
stays free of pydantic so ``meshobs --help`` starts fast: the model loads with the first config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config_model import MeshobsConfig


class ConfigError(Exception):
    """A configuration problem a person can fix; the message names the key and the file.

    ``problems`` holds every problem found, one line each (the message shows them all)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class Config:
    """The validated configuration.

    ``raw`` is the validated input as plain dicts, with only the keys the user wrote (strings
    expanded, relative paths resolved, durations as written): what collectors read through
    :meth:`section` / :attr:`sources`. ``model`` is the same thing typed, with every default
    filled in (:class:`meshobs.config_model.MeshobsConfig`). ``raw`` is never printed unscrubbed.
    """

    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    window_s: float = 300.0
    time: datetime | None = None
    mesh: str = "auto"
    model: MeshobsConfig | None = field(default=None, repr=False, compare=False)

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

    def tls_warnings(self) -> list[str]:
        """One line per source whose TLS certificates go unverified (``verify_tls: false``), said
        once for the run instead of by urllib3 per request; naming the source's ``ca_file`` too
        when one is given, since ``verify_tls: false`` leaves it unused."""
        lines = []
        for name, section in sorted(self.sources.items()):
            if isinstance(section, dict) and section.get("verify_tls") is False:
                unused = "; its ca_file is not used" if section.get("ca_file") else ""
                lines.append(f"sources.{name}: TLS certificates are not verified (verify_tls: false{unused})")
        return lines

    @property
    def typed(self) -> MeshobsConfig:
        """The typed model (validated from ``raw`` when this Config was built by hand)."""
        return self.model if self.model is not None else validate(self.raw).typed


def validate(raw: Any, path: Path | None = None) -> Config:
    """Check ``raw`` (parsed YAML) against the model and build a :class:`Config`.

    Relative paths resolve against ``path``'s folder. Raises :class:`ConfigError` listing every
    problem, each line naming its key (``sources.prometheus.url: ...``).
    """
    from pydantic import ValidationError

    from .config_model import MeshobsConfig
    from .config_types import problems

    where = f"{path}: " if path else ""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}expected a mapping of settings at the top, got {type(raw).__name__}")
    context = {"base": str(path.parent)} if path is not None else {}
    try:
        model = MeshobsConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        lines = [f"{where}{line}" for line in problems(exc, MeshobsConfig)]
        raise ConfigError("\n".join(lines), lines) from None
    checked = model.model_dump(exclude_unset=True)
    return Config(raw=checked, path=path, window_s=float(model.window), time=model.time, mesh=model.mesh,
                  model=model)


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "meshobs" / "meshobs.yaml"


def find_config(explicit: str | None) -> Path | None:
    """The config file to use, or None when there is none anywhere (demo mode)."""
    if explicit:
        return _named_file(explicit, "--config")
    env = os.environ.get("MESHOBS_CONFIG")
    if env:
        return _named_file(env, "MESHOBS_CONFIG")
    p = user_config_path()
    return p if p.is_file() else None


def _named_file(name: str, origin: str) -> Path:
    """The config file a user named (``origin``: where), or why it is not one."""
    p = Path(name).expanduser()
    if p.is_dir():
        raise ConfigError(f"{p}: a directory, not a config file (from {origin}): give the meshobs.yaml in it")
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file (from {origin})")
    return p


def yaml_loader() -> Any:
    """PyYAML's safe loader, libyaml's (``CSafeLoader``) when PyYAML was built with it."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when PyYAML has it: a served 1,000-service mesh's
    config (1,500 static Envoy targets, 240 kB) takes a second in the pure-Python parser and
    0.1 s in C, and every command parses it."""
    import yaml

    return yaml.load(text, Loader=yaml_loader())


def load_config(explicit: str | None = None) -> Config | None:
    """Load and validate the config; None when no config exists at all.

    A config validated before, unchanged, is read from :mod:`meshobs.config_cache` instead
    (the same Config, without parsing the YAML or importing pydantic)."""
    path = find_config(explicit)
    if path is None:
        return None
    from . import config_cache
    from .gc_pause import gc_paused

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    # A served big mesh's config (1,500 static Envoy targets) is tens of thousands of acyclic
    # dicts and strings, parsed then validated (or read back): no work for the cycle collector.
    with gc_paused():
        digest, recorded = config_cache.read(data, path)
        if recorded is not None:
            from .redact import registered_clean

            raw, window_s, time, mesh = recorded
            registered_clean(raw)  # a record holds no credential: config_cache.write vouched for it
            return Config(raw=raw, path=path, window_s=window_s, time=time, mesh=mesh)
        import io

        import yaml

        try:
            # Decoded as Path.read_text decodes (UTF-8, universal newlines).
            parsed = load_yaml(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read())
        except UnicodeDecodeError as exc:
            # A binary or Latin-1 file is the user's mistake, not meshobs's: exit 2, not 3.
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); a meshobs.yaml is YAML in UTF-8") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{at}") from None
        config = validate(parsed, path)
        config_cache.write(digest, path, parsed, (config.raw, config.window_s, config.time, config.mesh))
    return config
