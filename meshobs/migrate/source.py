"""Where the App Mesh configuration comes from: a directory (or file) of CRDs and exports, or a
bundle (a recorded collection, or ``demo:NAME``).

Files: ``.yaml``/``.yml`` (``appmesh.k8s.aws/v1beta2`` CRDs, any number of documents),
``.json`` (``describe-*`` responses saved with ``aws appmesh describe-... > file.json``,
``create-*`` inputs, ``kubectl get -o json`` lists) and ``*.template`` files whose ``${VAR}``
placeholders the environment fills. Everything goes through the App Mesh collectors'
normaliser (:func:`meshobs.collectors.appmesh_config.from_document`), so the translation reads
the same layout as every App Mesh check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshobs.collectors import appmesh_config as ac
from meshobs.collectors.manifests import parse_documents
from meshobs.model import ConfigResource, Layer, Mesh

SUFFIXES = (".yaml", ".yml", ".json", ".template")


class SourceError(ValueError):
    """Input that cannot be read: says which file and why."""


@dataclass
class AppMeshSource:
    resources: list[ConfigResource]
    origin: str
    files: list[str] = field(default_factory=list)
    kubernetes: list[dict[str, Any]] = field(default_factory=list)  # Namespaces, Deployments... seen beside


def from_documents(docs: Iterable[Any], origin: str) -> list[ConfigResource]:
    """App Mesh resources in parsed documents (anything else is ignored)."""
    out: list[ConfigResource] = []
    for doc in docs:
        try:
            out.extend(ac.from_document(doc, Layer.INTENDED, origin))
        except ValueError as exc:
            raise SourceError(str(exc)) from None
    return out


def _parse(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if ac.placeholders(text):
        try:
            text = ac.fill_template(text, origin=str(path))
        except ac.TemplateError as exc:
            raise SourceError(str(exc)) from None
    try:
        docs = parse_documents(text, str(path).removesuffix(".template"))
    except ValueError as exc:
        raise SourceError(str(exc)) from None
    return [d for d in docs if d is not None]


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return [p for p in sorted(root.rglob("*")) if p.is_file() and p.name.endswith(SUFFIXES)
            and not any(part.startswith(".") for part in p.relative_to(root).parts)]


def from_directory(path: str | Path) -> AppMeshSource:
    root = Path(path).expanduser()
    if not root.exists():
        raise SourceError(f"{root}: no such file or directory")
    files = _files(root)
    if not files:
        raise SourceError(f"{root}: no .yaml, .yml, .json or .template files")
    resources: list[ConfigResource] = []
    kubernetes: list[dict[str, Any]] = []
    for f in files:
        docs = _parse(f)
        resources.extend(from_documents(docs, str(f)))
        kubernetes.extend(d for d in docs if isinstance(d, dict) and d.get("kind") in ("Namespace", "Deployment",
                                                                                        "Service"))
    return AppMeshSource(resources, str(root), [str(f) for f in files], kubernetes)


def from_snapshot_config(config: Iterable[ConfigResource], origin: str) -> AppMeshSource:
    """The App Mesh resources of a snapshot, one per identity (the live layer wins)."""
    chosen: dict[tuple[str, str, str], ConfigResource] = {}
    for r in sorted(config, key=lambda r: r.layer is not Layer.LIVE):
        if r.mesh is Mesh.APPMESH:
            chosen.setdefault(r.key, r)
    return AppMeshSource(list(chosen.values()), origin)


def is_bundle(path: str) -> bool:
    p = Path(path)
    return path == "demo" or path.startswith("demo:") or path.endswith((".tar.gz", ".tgz")) or \
        (p.is_dir() and (p / "bundle.json").exists())


def load(path: str) -> AppMeshSource:
    """App Mesh configuration from ``--from PATH`` (bundle, ``demo:NAME``, directory or file)."""
    if not is_bundle(path):
        return from_directory(path)
    from meshobs.bundle import BundleError, read_bundle
    from meshobs.collect import build_snapshot

    if path == "demo" or path.startswith("demo:"):
        from meshobs.demo.catalog import DemoNotFound, load_demo

        try:
            bundle = load_demo(path.partition(":")[2] or None)
        except DemoNotFound as exc:
            raise SourceError(str(exc)) from None
    else:
        try:
            bundle = read_bundle(path)
        except BundleError as exc:
            raise SourceError(str(exc)) from None
    snapshot = build_snapshot(bundle, origin=path)
    return from_snapshot_config(snapshot.config, path)
