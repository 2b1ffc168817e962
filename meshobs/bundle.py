"""Recorded bundles: raw payloads plus the (credential-free) config and times of a collection.

Layout, as a directory or the same tree inside a ``.tar.gz``::

    bundle.json                 format, version, times, sanitised config, sources and payload index
    payloads/<source>/<n>.<ext> each body exactly as received
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .raw import Payload, RawSource, iso, parse_iso
from .redact import REDACTED, redact_text, scrub

__all__ = ["FORMAT", "REDACTED", "Bundle", "BundleError", "iter_bundle", "read_bundle", "scrub", "write_bundle"]

FORMAT = "meshobs-bundle/1"


class BundleError(Exception):
    """A bundle that cannot be read: says which path and why."""


@dataclass
class Bundle:
    """Raw sources with the time they describe."""

    time: datetime
    window_s: float
    sources: list[RawSource]
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    meshobs_version: str = ""
    description: str = ""
    name: str = ""
    # The neighbourhood a scoped collection (``diagnose SERVICE``) fetched, as
    # meshobs.collect.scope_to_dict writes it; None for a mesh-wide bundle.
    scope: dict[str, Any] | None = None


def _ext(payload: Payload) -> str:
    body = (payload.body or "").lstrip()
    return "json" if body[:1] in ("{", "[") else "txt"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "source"


def _index(bundle: Bundle) -> tuple[dict[str, Any], dict[str, str]]:
    files: dict[str, str] = {}
    sources = []
    for s_no, src in enumerate(bundle.sources):
        entries = []
        for p_no, p in enumerate(src.payloads):
            path = None
            if p.body is not None:
                path = f"payloads/{s_no:03d}-{_safe(src.name)}/{p_no:04d}-{_safe(p.key)[:80]}.{_ext(p)}"
                files[path] = p.body
            entries.append({
                "key": p.key, "file": path, "status": p.status,
                "error": redact_text(p.error) if p.error else None,
                "url": scrub(p.url), "params": scrub(p.params), "elapsed_s": round(p.elapsed_s, 6),
                "fetched_at": p.fetched_at, "meta": scrub(p.meta),
            })
        sources.append({"name": src.name, "kind": src.kind, "meta": scrub(src.meta),
                        "error": redact_text(src.error) if src.error else None, "duration_s": round(src.duration_s, 6),
                        "payloads": entries})
    index = {
        "format": FORMAT, "meshobs_version": bundle.meshobs_version, "created": bundle.created,
        "time": iso(bundle.time), "window_s": bundle.window_s, "name": bundle.name,
        "description": bundle.description, "config": scrub(bundle.config), "sources": sources,
    }
    if bundle.scope is not None:
        index["scope"] = bundle.scope
    return index, files


def write_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Write a directory, or a ``.tar.gz`` when the path ends so. Atomic for archives."""
    path = Path(path)
    index, files = _index(bundle)
    files["bundle.json"] = json.dumps(index, indent=1, sort_keys=False) + "\n"
    if path.name.endswith((".tar.gz", ".tgz")):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bundle-", suffix=".tmp")
        os.close(fd)
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                for name in sorted(files):
                    data = files[name].encode("utf-8")
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mtime = int(bundle.time.timestamp())
                    tar.addfile(info, io.BytesIO(data))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
    if path.exists() and any(path.iterdir()):
        raise BundleError(f"{path}: directory exists and is not empty; choose a new path")
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return path


def _reader(path: Path) -> dict[str, str] | Path:
    if path.is_dir():
        return path
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                out = {}
                for member in tar.getmembers():
                    if member.isfile():
                        f = tar.extractfile(member)
                        if f is not None:
                            out[member.name.removeprefix("./")] = f.read().decode("utf-8")
                return out
        except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"{path}: not a meshobs bundle archive ({exc})") from None
    raise BundleError(f"{path}: no such bundle (expected a directory or a .tar.gz)")


def _checked_reader(path: Path, src: dict[str, str] | Path | _ArchiveStream) -> Callable[[str], str]:
    def read(name: str) -> str:
        # Only files inside the bundle's payloads/ folder: a crafted index must not make
        # meshobs read (and re-record) files from elsewhere on the machine.
        if name != "bundle.json" and (not name.startswith("payloads/") or ".." in Path(name).parts
                                      or Path(name).is_absolute()):
            raise BundleError(f"{path}: payload file {name!r} is outside the bundle's payloads/")
        if isinstance(src, _ArchiveStream):
            return src.read(name)
        if isinstance(src, Path):
            try:
                return (src / name).read_text(encoding="utf-8")
            except OSError as exc:
                raise BundleError(f"{path}: cannot read {name} ({exc.strerror})") from None
        if name not in src:
            raise BundleError(f"{path}: {name} is missing from the bundle")
        return src[name]

    return read


def _load_index(path: Path, read: Callable[[str], str]) -> dict[str, Any]:
    try:
        index = json.loads(read("bundle.json"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: bundle.json is not valid JSON ({exc.msg})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise BundleError(f"{path}: not a {FORMAT} bundle")
    return index


def read_bundle(path: str | Path) -> Bundle:
    """Read a bundle written by :func:`write_bundle` (directory or archive)."""
    path = Path(path)
    read = _checked_reader(path, _reader(path))
    index = _load_index(path, read)
    try:
        bundle = _header(index)
        bundle.sources = list(_iter_sources(index, read))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: bundle.json is damaged ({type(exc).__name__}: {exc})") from None
    return bundle


def iter_bundle(path: str | Path) -> tuple[Bundle, Iterator[RawSource]]:
    """:func:`read_bundle`'s times, config and scope (``sources`` empty), and its sources one at a
    time, each read when the iterator reaches it (an archive in one sequential pass). A replay
    that normalises each source and lets it go never holds every body at once."""
    path = Path(path)
    src: Path | _ArchiveStream = path if path.is_dir() else _ArchiveStream(path)
    read = _checked_reader(path, src)
    index = _load_index(path, read)
    try:
        bundle = _header(index)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: bundle.json is damaged ({type(exc).__name__}: {exc})") from None

    def sources() -> Iterator[RawSource]:
        try:
            yield from _iter_sources(index, read)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{path}: bundle.json is damaged ({type(exc).__name__}: {exc})") from None

    return bundle, sources()


class _ArchiveStream:
    """An archive's members read in order, on demand: bundles are written in payload order, so
    each member is read when its source is reached and dropped when handed out."""

    def __init__(self, path: Path) -> None:
        import gzip

        if not path.is_file():
            raise BundleError(f"{path}: no such bundle (expected a directory or a .tar.gz)")
        self.path = path
        self._waiting: dict[str, bytes] = {}
        try:
            # Open for as long as sources are read; closed at the end of the archive (or with
            # the process when a reader stops early).
            raw = path.open("rb")
            gz = gzip.GzipFile(fileobj=raw) if raw.read(2) == b"\x1f\x8b" else None
            raw.seek(0)
            self._tar = (tarfile.open(fileobj=gz, mode="r:") if gz  # noqa: SIM115
                         else tarfile.open(fileobj=raw, mode="r:*"))  # noqa: SIM115
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(f"{path}: not a meshobs bundle archive ({exc})") from None

    def read(self, name: str) -> str:
        try:
            while name not in self._waiting:
                member = self._tar.next()
                if member is None:
                    self._tar.close()
                    raise BundleError(f"{self.path}: {name} is missing from the bundle")
                f = self._tar.extractfile(member) if member.isfile() else None
                if f is not None:
                    self._waiting[member.name.removeprefix("./")] = f.read()
            return self._waiting.pop(name).decode("utf-8")
        except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
            raise BundleError(f"{self.path}: not a meshobs bundle archive ({exc})") from None


def _header(index: dict[str, Any]) -> Bundle:
    return Bundle(time=parse_iso(index["time"]), window_s=float(index["window_s"]),
                  sources=[], config=index.get("config") or {},
                  created=index.get("created", ""), meshobs_version=index.get("meshobs_version", ""),
                  description=index.get("description", ""), name=index.get("name", ""),
                  scope=index.get("scope") if isinstance(index.get("scope"), dict) else None)


def _iter_sources(index: dict[str, Any], read: Callable[[str], str]) -> Iterator[RawSource]:
    entries = index.get("sources", [])
    for i, s in enumerate(entries):
        entries[i] = None  # a big mesh's index is ~100 MB parsed: let each entry go once used
        raw = RawSource(name=s["name"], kind=s["kind"], meta=s.get("meta") or {},
                        error=s.get("error"), duration_s=s.get("duration_s", 0.0))
        for p in s.get("payloads", []):
            raw.payloads.append(Payload(
                key=p["key"], body=read(p["file"]) if p.get("file") else None,
                status=p.get("status"), error=p.get("error"), url=p.get("url", ""),
                params=p.get("params") or {}, elapsed_s=p.get("elapsed_s", 0.0),
                fetched_at=p.get("fetched_at", ""), meta=p.get("meta") or {}))
        yield raw
