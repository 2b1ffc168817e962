"""Kubernetes YAML/JSON manifests as a source: ``kubectl get -o yaml`` dumps or a Git checkout.

``sources.kubernetes.manifests`` stands in for the live cluster (layer ``live``); the drift
command reads ``--intended DIR`` through :func:`read_manifest_tree` with layer ``intended``.
One payload per file, key = the file path, body = the file text exactly as read.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.k8s_objects import flatten_objects, objects_to_part
from meshobs.config import Config
from meshobs.model import Layer, SnapshotPart, SourceState, SourceStatus
from meshobs.raw import Payload, RawSource, iso, utc_now

KIND = "manifests"
SUFFIXES = (".yaml", ".yml", ".json")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Environment values that look like credentials are never copied into a payload.
_SECRET_NAME = re.compile(r"(?i)token|secret|password|passwd|credential|private|_key$|^key$")


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root  # named explicitly: read whatever its suffix (e.g. manifest.yaml.template)
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUFFIXES and not any(
                part.startswith(".") for part in path.relative_to(root).parts):
            yield path


def _env_for(text: str) -> dict[str, str]:
    """Values of the ``${VAR}`` placeholders in ``text`` that the environment sets."""
    return {name: os.environ[name] for name in sorted(set(_PLACEHOLDER.findall(text)))
            if name in os.environ and not _SECRET_NAME.search(name)}


def read_manifest_tree(paths: list[str], layer: str = "live") -> RawSource:
    """Read every manifest file under ``paths`` (files or directories, recursively).

    Never raises for a missing or unreadable path: the RawSource's ``error`` (nothing could be
    read) or a payload's ``error`` names the path.
    """
    raw = RawSource(name=KIND, kind=KIND, meta={"layer": layer, "roots": list(paths)})
    with raw.timed():
        missing = [p for p in paths if not Path(p).expanduser().exists()]
        if missing:
            raw.error = (f"manifest path not found: {', '.join(missing)} "
                         f"(check sources.kubernetes.manifests or --intended)")
            return raw
        for root in paths:
            for path in _files(Path(root).expanduser()):
                start = time.perf_counter()
                payload = Payload(key=str(path), url=path.resolve().as_uri(), fetched_at=iso(utc_now()))
                try:
                    payload.body = path.read_text(encoding="utf-8")
                    env = _env_for(payload.body)
                    if env:
                        payload.meta["env"] = env
                except (OSError, UnicodeDecodeError) as exc:
                    payload.error = f"cannot read manifest {path}: {getattr(exc, 'strerror', None) or exc}"
                payload.elapsed_s = time.perf_counter() - start
                raw.add(payload)
        if not raw.payloads:
            raw.error = f"no .yaml, .yml or .json files under {', '.join(paths)}"
    return raw


@dataclass
class ManifestsCollector:
    paths: list[str]
    layer: str = "live"
    kind: str = KIND

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        if not ctx.runs("graph"):
            return []  # local files, read once in the graph phase (they may define the services)
        return [read_manifest_tree(self.paths, self.layer)]


def from_config(config: Config, prior: list[RawSource]) -> ManifestsCollector | None:
    """A collector when ``sources.kubernetes.manifests`` lists paths, else None."""
    paths = config.section("sources", "kubernetes").get("manifests")
    return ManifestsCollector(list(paths)) if paths else None


# -- parsing --------------------------------------------------------------------------------

def parse_manifest(text: str, name: str,
                   env: Mapping[str, str] | None = None) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The Kubernetes objects in one file and the ``${VAR}`` placeholders left unfilled.

    Raises ValueError naming the file and line when it is neither YAML nor JSON.
    """
    env = env or {}
    text = _PLACEHOLDER.sub(lambda m: env.get(m.group(1), m.group(0)), text)
    unfilled = sorted(set(_PLACEHOLDER.findall(text)))
    docs = parse_documents(text, name)
    objects = [o for d in docs for o in flatten_objects(d) if o.get("kind") and o.get("apiVersion")]
    return objects, unfilled


def parse_documents(text: str, name: str) -> list[Any]:
    """Every document of a YAML (or, by its name, JSON) file; ValueError names the file and line."""
    try:
        if name.lower().endswith(".json"):
            return [json.loads(text)]
        return list(yaml.safe_load_all(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{name}: not valid YAML{at} ({getattr(exc, 'problem', None) or exc})") from None


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Every file -> objects -> pods, workloads, services and mesh config (layer from meta)."""
    layer = Layer(raw.meta.get("layer", "live"))
    objects: list[tuple[Mapping[str, Any], str]] = []
    problems: list[str] = []
    notes: list[str] = []
    for payload in raw.payloads:
        if payload.failure() or payload.body is None:
            problems.append(payload.failure() or f"{payload.key}: empty")
            continue
        try:
            found, unfilled = parse_manifest(payload.body, payload.key, payload.meta.get("env"))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if unfilled:
            notes.append(f"{payload.key}: unfilled placeholders "
                         f"{', '.join('${' + v + '}' for v in unfilled)} (set them in the environment)")
        objects.extend((o, payload.key) for o in found)
    part = objects_to_part(objects, layer)
    if problems:
        state = SourceState.ERROR
    elif not objects:
        state = SourceState.NO_DATA
        notes.append(f"no Kubernetes objects in {len(raw.payloads)} manifest file(s)")
    else:
        state = SourceState.OK
    part.sources.append(SourceStatus(raw.name, state, "; ".join(problems + notes), raw.duration_s, raw.kind))
    return part
