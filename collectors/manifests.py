"""Kubernetes YAML/JSON manifests as a source: ``kubectl get -o yaml`` dumps or a Git checkout.

``sources.kubernetes.manifests`` stands in for the live cluster (layer ``live``); the drift
command reads ``--intended DIR`` through :func:`read_manifest_tree` with layer ``intended``.
One payload per file, key = the file path, body = the file's objects (a ``List``) with only what
the normaliser reads (see :func:`read_manifest_tree`). Parsing keeps each object's line, and for
mesh configuration the line of every field (payload meta ``locations``), so a finding on a
manifest names ``file:line`` as ``istioctl analyze`` does.
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
from meshobs.collectors.k8s_minimise import minimise_object
from meshobs.collectors.k8s_objects import (
    WORKLOAD_KINDS,
    Sourced,
    flatten_objects,
    flatten_with_paths,
    mesh_of_api_version,
    objects_to_part,
)
from meshobs.config import Config, yaml_loader
from meshobs.model import Layer, SnapshotPart, SourceLocation, SourceState, SourceStatus, frozen_map
from meshobs.raw import Payload, RawSource, iso, utc_now
from meshobs.redact import is_credential_key

KIND = "manifests"
# Local files, read once, in the graph phase (they may define the services); meshobs.collect runs
# a collector in its PHASE only.
PHASE = "graph"
SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 64 * 1024 * 1024  # a manifest larger than this is not a manifest
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
OBJECTS = "objects"  # payload meta "format": the body is a minimised List of the file's objects
# Placeholders named like credentials are never filled: their value would sit in the object.
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
    """Values of the ``${VAR}`` placeholders in ``text`` that the environment sets, except those
    whose name says they hold a credential."""
    return {name: os.environ[name] for name in sorted(set(_PLACEHOLDER.findall(text)))
            if name in os.environ and not _SECRET_NAME.search(name) and not is_credential_key(name)}


def _read(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"cannot read manifest {path}: larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read manifest {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _location_meta(where: SourceLocation) -> dict[str, Any]:
    return {"line": where.line, "fields": dict(where.fields)} if where.fields else {"line": where.line}


def read_manifest_tree(paths: list[str], layer: str = "live") -> RawSource:
    """Read every manifest file under ``paths`` (files or directories, recursively).

    Each file is parsed here, ``${VAR}`` filled from the environment (never a variable named
    like a credential: ``DB_PASS``, ``API_TOKEN``...), and only what the normaliser reads is
    kept (:mod:`k8s_minimise`): the payload body is a ``List`` of the file's objects without
    Secrets, env values or last-applied copies, so neither those nor the values of the
    placeholders reach a bundle; each kept object's file lines go in ``meta["locations"]``.
    Never raises for a missing, unreadable or malformed file: the RawSource's ``error``
    (nothing could be read) or a payload's ``error`` names it.
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
                    text = _read(path)
                    located, unfilled = parse_located(text, str(path), _env_for(text))
                    kept: list[dict[str, Any]] = []
                    locations: list[dict[str, Any]] = []
                    for obj, where in located:
                        small = minimise_object(obj)
                        if small is not None:
                            kept.append(small)
                            locations.append(_location_meta(where))
                    payload.body = json.dumps({"apiVersion": "v1", "kind": "List", "items": kept},
                                              separators=(",", ":"))
                    payload.meta = {"format": OBJECTS, "objects": len(located), "unfilled": unfilled,
                                    "locations": locations}
                except OSError as exc:
                    payload.error = f"cannot read manifest {path}: {exc.strerror or exc}"
                except ValueError as exc:
                    payload.error = str(exc)
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
        return [read_manifest_tree(self.paths, self.layer)]


def from_config(config: Config, prior: list[RawSource]) -> ManifestsCollector | None:
    """A collector when ``sources.kubernetes.manifests`` lists paths, else None."""
    paths = config.section("sources", "kubernetes").get("manifests")
    return ManifestsCollector(list(paths)) if paths else None


# Kubernetes kinds whose field lines are kept besides mesh configuration: the analyzers of
# injection, ports and workloads point at a Service port, a pod template or a Namespace label.
LINED_KINDS = frozenset({"Service", "Namespace", "Pod", *WORKLOAD_KINDS})


# -- parsing --------------------------------------------------------------------------------

def _loader() -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = yaml_loader()
    return loader


def _documents(text: str) -> Iterator[tuple[Any, yaml.Node]]:
    """Each YAML document with its node tree (the nodes carry the line numbers)."""
    loader = _loader()(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield loader.construct_document(node), node
    finally:
        loader.dispose()


def _lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    """Field path -> 1-based line: a mapping entry's line is its key's, a list item's its own."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            out[child] = key.start_mark.line + 1
            _lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            out[child] = item.start_mark.line + 1
            _lines(item, child, out)


def _locate(name: str, root: str, lines: dict[str, int], first_line: int, fields: bool) -> SourceLocation:
    """The location of the object at ``root`` in a document whose field lines are ``lines``;
    ``fields`` keeps the per-field lines (only mesh configuration needs them)."""
    line = lines.get(root, first_line) if root else first_line
    if not fields:
        return SourceLocation(name, line)
    prefix = f"{root}." if root else ""
    own = {p[len(prefix):]: n for p, n in lines.items() if p.startswith(prefix)} if prefix else lines
    return SourceLocation(name, line, frozen_map(own))


def parse_located(text: str, name: str, env: Mapping[str, str] | None = None
                  ) -> tuple[list[tuple[Mapping[str, Any], SourceLocation]], list[str]]:
    """The Kubernetes objects in one file, each with its file and line (and, for Istio and App
    Mesh resources, the line of every field), and the ``${VAR}`` placeholders left unfilled.

    Multi-document files, ``kind: List`` and kubectl's typed lists give each object its own
    line. Raises ValueError naming the file and line when it is neither YAML nor JSON.
    """
    env = env or {}
    text = _PLACEHOLDER.sub(lambda m: env.get(m.group(1), m.group(0)), text)
    unfilled = sorted(set(_PLACEHOLDER.findall(text)))
    out: list[tuple[Mapping[str, Any], SourceLocation]] = []
    for doc, node in _parse_nodes(text, name):
        lines: dict[str, int] = {}
        if node is not None:
            _lines(node, "", lines)
        first = node.start_mark.line + 1 if node is not None else 0
        for root, obj in flatten_with_paths(doc):
            if obj.get("kind") and obj.get("apiVersion"):
                fields = (mesh_of_api_version(str(obj.get("apiVersion"))) is not None
                          or obj.get("kind") in LINED_KINDS)
                out.append((obj, _locate(name, root, lines, first, fields)))
    return out, unfilled


def parse_documents(text: str, name: str) -> list[Any]:
    """Every document of a YAML (or, by its name, JSON) file; ValueError names the file and line."""
    return [doc for doc, _node in _parse_nodes(text, name)]


def _parse_nodes(text: str, name: str) -> list[tuple[Any, yaml.Node | None]]:
    """Every document with its node tree (for the line numbers); ValueError names the file and
    line when the text is neither YAML nor JSON."""
    try:
        if name.lower().endswith(".json"):
            return [(json.loads(text), _json_node(text))]
        return list(_documents(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{name}: not valid YAML{at} ({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise ValueError(f"{name}: nested too deeply to read") from None


def _json_node(text: str) -> yaml.Node | None:
    """JSON is YAML: compose it for the line numbers only (values come from ``json``); None
    when the YAML parser disagrees, and then only the file is known."""
    try:
        return yaml.compose(text, Loader=_loader())
    except yaml.YAMLError:
        return None


def parse_manifest(text: str, name: str,
                   env: Mapping[str, str] | None = None) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The Kubernetes objects in one file and the ``${VAR}`` placeholders left unfilled."""
    located, unfilled = parse_located(text, name, env)
    return [obj for obj, _ in located], unfilled


def _objects(payload: Payload) -> tuple[list[tuple[Mapping[str, Any], SourceLocation]], list[str]]:
    """A payload's objects with their file lines: the minimised List of current bundles, or
    (bundles written before that) the file's text with the non-secret placeholder values the
    payload kept."""
    if payload.meta.get("format") != OBJECTS:
        env = payload.meta.get("env")
        return parse_located(payload.body or "", payload.key, env if isinstance(env, Mapping) else None)
    objects = list(flatten_objects(payload.json()))
    locations = payload.meta.get("locations")
    if not isinstance(locations, list) or len(locations) != len(objects):
        locations = [{}] * len(objects)  # a bundle edited by hand: the file is still known
    out = []
    for obj, loc in zip(objects, locations):
        loc = loc if isinstance(loc, Mapping) else {}
        line = loc.get("line")
        fields = loc.get("fields")
        out.append((obj, SourceLocation(payload.key, line if isinstance(line, int) else 0, frozen_map(
            {str(k): v for k, v in fields.items() if isinstance(v, int)} if isinstance(fields, Mapping) else {}))))
    unfilled = payload.meta.get("unfilled")
    return out, [str(v) for v in unfilled] if isinstance(unfilled, list) else []


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Every file -> objects -> pods, workloads, services and mesh config (layer from meta)."""
    layer = Layer(raw.meta.get("layer", "live"))
    objects: list[Sourced] = []
    problems: list[str] = []
    notes: list[str] = []
    for payload in raw.payloads:
        if payload.failure() or payload.body is None:
            problems.append(payload.failure() or f"{payload.key}: empty")
            continue
        try:
            found, unfilled = _objects(payload)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if unfilled:
            notes.append(f"{payload.key}: unfilled placeholders "
                         f"{', '.join('${' + v + '}' for v in unfilled)} (set them in the environment)")
        objects.extend((o, payload.key, where) for o, where in found)
    items: list[str] = []
    part = objects_to_part(objects, layer, items)
    if problems:
        state = SourceState.ERROR
    elif not objects:
        state = SourceState.NO_DATA
        notes.append(f"no Kubernetes objects in {len(raw.payloads)} manifest file(s)")
    else:
        state = SourceState.OK
    part.sources.append(SourceStatus(raw.name, state, "; ".join(problems + notes), raw.duration_s, raw.kind,
                                     problems=tuple(items)))
    return part
