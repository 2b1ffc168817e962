"""Recorded bundles: raw payloads plus the (credential-free) config and times of a collection.

Two layouts. A directory (``meshobs-bundle/1``)::

    bundle.json                 format, version, times, sanitised config, sources and payload index
    payloads/<source>/<n>.<ext> each body exactly as received

A ``.tar.gz`` is packed (``meshobs-bundle/2``): the same ``bundle.json``, and the bodies, each
exactly as received, one after the other in ``payloads/pack-<n>.pack`` members of about
:data:`PACK_BYTES`; each payload entry names its pack and its ``offset`` and ``length`` in bytes.
One member per body made a 5,000-service archive 30,000 members, and walking their tar headers
cost more CPU than decompressing the whole archive. Archives written before (one member per
body, ``meshobs-bundle/1``) are read as before; so is an unpacked copy of either.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .bundle_read import (
    BundleError,
    Opened,
    index_header,
    iter_sources_from_index,
    open_bundle_and_model,
    open_bundle_and_models,
    parse_index,
    sources_from_index,
)
from .modelcache import ASSEMBLED, MEMBERS, Snapshot
from .modelcache import MEMBER as MODEL  # the normalised model, after bundle.json (and ASSEMBLED)
from .raw import Payload, RawSource, iso
from .redact import REDACTED, mask_known, redact_text, scrub
from .schemas import VERSIONS

__all__ = ["FORMAT", "FORMATS", "PACKED_FORMAT", "REDACTED", "Bundle", "BundleError", "iter_bundle", "read_bundle",
           "scrub", "write_bundle"]

FORMAT = "meshobs-bundle/1"  # one file per body: directories, and archives written before packing
PACKED_FORMAT = "meshobs-bundle/2"  # bodies packed into a few members: archives
FORMATS = (FORMAT, PACKED_FORMAT)
# A pack's size: a streamed replay holds one at a time, and 4 MB makes a 5,000-service archive
# ~100 members instead of 30,000. A bigger body gets a pack of its own.
PACK_BYTES = 4 * 2**20


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
    # Sources still to be read, one at a time (iter_bundle); build_snapshot consumes them.
    stream: Iterator[RawSource] | None = field(default=None, repr=False, compare=False)
    # How many of ``stream``'s sources are of each kind (from the index), so that a replay can
    # decide how to share their normalisation before reading them, and the same sources read
    # again from the start, for a share whose process failed (meshobs.loadsplit).
    stream_kinds: dict[str, int] | None = field(default=None, repr=False, compare=False)
    stream_again: Callable[[], Iterator[RawSource]] | None = field(default=None, repr=False, compare=False)
    # The archive's assembled snapshot (meshobs.modelcache), which build_snapshot returns instead
    # of reading ``stream`` (still unread then).
    assembled: Snapshot | None = field(default=None, repr=False, compare=False)


def config_for_bundle(raw: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """The configuration as a bundle keeps it: ``${VAR}`` left as written, never its value.

    ``raw`` is the validated config (placeholders filled from the environment); the file at
    ``path`` still has them. Wherever the file wrote a placeholder, the bundle keeps the
    placeholder: a token passed as ``${PROM_TOKEN}`` (under any key, of any name) stays in the
    environment. ``mesh`` keeps its value (istio/appmesh/auto) since a replay needs it.
    """
    if path is None:
        return raw
    import yaml

    from meshobs.config import load_yaml

    try:
        text = path.read_text(encoding="utf-8")
        if "${" not in text:
            # No placeholder anywhere: the validated config is what the bundle keeps. Parsing the
            # file again only to learn that cost a live question 0.2-0.4 s on a served
            # 1,000-service mesh (240 kB of static Envoy targets, parsed on a big heap).
            return raw
        written = load_yaml(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        # The file changed or went since it was validated: keep nothing that may be a value.
        return {k: v for k, v in raw.items() if k in ("mesh", "window", "time")}
    out: dict[str, Any] = _unexpand(raw, written, top=True)
    return out


def _unexpand(value: Any, written: Any, top: bool = False) -> Any:
    if isinstance(value, dict):
        section = written if isinstance(written, dict) else {}
        return {k: (v if top and k == "mesh" else _unexpand(v, section.get(k))) for k, v in value.items()}
    if isinstance(value, list):
        items = written if isinstance(written, list) and len(written) == len(value) else [None] * len(value)
        return [_unexpand(v, x) for v, x in zip(value, items)]
    if isinstance(written, str) and "${" in written:
        return written
    return value


def _ext(payload: Payload) -> str:
    body = (payload.body or "").lstrip()
    return "json" if body[:1] in ("{", "[") else "txt"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "source"


def _index(bundle: Bundle, *, packed: bool = False) -> tuple[dict[str, Any], dict[str, bytes | bytearray]]:
    files: dict[str, bytes | bytearray] = {}
    pack, pack_name = bytearray(), ""
    sources = []
    for s_no, src in enumerate(bundle.sources):
        entries = []
        for p_no, p in enumerate(src.payloads):
            path = None
            where: dict[str, int] = {}
            if p.body is not None:
                data = mask_known(p.body).encode("utf-8")  # a server may echo a credential it was sent
                if not packed:
                    path = f"payloads/{s_no:03d}-{_safe(src.name)}/{p_no:04d}-{_safe(p.key)[:80]}.{_ext(p)}"
                    files[path] = data
                else:
                    if not pack_name or (pack and len(pack) + len(data) > PACK_BYTES):
                        pack, pack_name = bytearray(), f"payloads/pack-{len(files):05d}.pack"
                        files[pack_name] = pack
                    path = pack_name
                    where = {"offset": len(pack), "length": len(data)}
                    pack += data
            entries.append({
                "key": p.key, "file": path, **where, "status": p.status,
                "error": redact_text(p.error) if p.error else None,
                "url": scrub(p.url), "params": scrub(p.params), "elapsed_s": round(p.elapsed_s, 6),
                "fetched_at": p.fetched_at, "meta": scrub(p.meta),
            })
        sources.append({"name": src.name, "kind": src.kind, "meta": scrub(src.meta),
                        "error": redact_text(src.error) if src.error else None, "duration_s": round(src.duration_s, 6),
                        "payloads": entries})
    index = {
        "format": PACKED_FORMAT if packed else FORMAT, "schema_version": VERSIONS["bundle"],
        "meshobs_version": bundle.meshobs_version,
        "created": bundle.created,
        "time": iso(bundle.time), "window_s": bundle.window_s, "name": bundle.name,
        "description": bundle.description, "config": scrub(bundle.config), "sources": sources,
    }
    if bundle.scope is not None:
        index["scope"] = bundle.scope
    return index, files


def write_bundle(bundle: Bundle, path: str | Path, *, packed: bool | None = None, model: bool = True) -> Path:
    """Write a directory, or a ``.tar.gz`` when the path ends so. Atomic for archives.

    ``packed``: the layout (default: packed for an archive, one file per body for a directory);
    ``packed=False`` writes an archive that meshobs releases before the packed layout can read.
    ``model``: a packed archive carries the normalised model of its sources
    (:mod:`meshobs.modelcache`), made from the payloads as written."""
    path = Path(path)
    archive = path.name.endswith((".tar.gz", ".tgz"))
    packed = archive if packed is None else packed
    index, files = _index(bundle, packed=packed)
    files["bundle.json"] = (json.dumps(index, indent=1, sort_keys=False) + "\n").encode("utf-8")
    if archive and packed and model:
        files.update(model_of(files))
    if archive:
        import tarfile  # only an archive needs it: a live run that writes nothing never imports it
        import tempfile

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bundle-", suffix=".tmp")
        os.close(fd)
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                # The index first, then the payloads in source order (not sorted by name: past
                # 999 sources "1000-" sorts before "101-"), so a streamed replay finds each
                # member as it reaches its source instead of holding the ones read ahead.
                # The model right after the index: a reader finds it without reading further
                # (the assembled snapshot first: a replay that uses it reads nothing more).
                first = ["bundle.json", *(m for m in MEMBERS if m in files)]
                for name in [*first, *(n for n in files if n not in first)]:
                    data = files[name]
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
    for name, data in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return path


def model_of(files: dict[str, bytes | bytearray]) -> dict[str, bytes]:
    """The model members of a packed bundle whose members are ``files``: its sources read back
    exactly as a replay reads them (masked bodies, rounded durations) and normalised (MODEL),
    and those parts assembled (ASSEMBLED, when it comes back exact)."""
    from . import bundle_read, modelcache
    from .collect import assemble_parts, normalize_source
    from .gc_pause import gc_paused
    from .loadsplit import normalize_all

    index = parse_index(bytes(files["bundle.json"]), PACKED_FORMAT)
    entries = list(index.get("sources") or [])
    bundle = _header(index)

    def sources() -> Iterator[RawSource]:  # one at a time, each body decoded when reached
        # (iter_sources_from_index lets each entry of the list it is given go)
        return iter_sources_from_index({**index, "sources": list(entries)}, lambda name: bytes(files[name]),
                                       packed=True)

    proxies = sum(1 for s in entries if s.get("kind") == "envoy" and not s.get("error"))
    with gc_paused():
        parts = normalize_all(sources(), lambda raw: normalize_source(raw, bundle.time, bundle.window_s),
                              keep_raw=False, proxies=proxies, again=sources)
        out = {MODEL: modelcache.encode(index, parts)}
        assembled = modelcache.encode_assembled(bytes(files["bundle.json"]), index, assemble_parts(parts, bundle))
    if assembled is not None:
        out[ASSEMBLED] = assembled
    # A member past the readers' cap would make the whole archive a bad bundle: left out (the
    # replay then uses what is left of the model, or the payloads).
    return {name: data for name, data in out.items() if len(data) <= bundle_read.MAX_FILE_BYTES}


def _assembled(opened: Opened) -> tuple[tuple[Bundle, Snapshot] | None, str | None]:
    """A packed bundle's assembled snapshot (:mod:`meshobs.modelcache`) with the header it was
    made for, when there is one and it is used; else why not (None: there is none)."""
    from . import modelcache

    data = opened.take(ASSEMBLED)
    if data is None:
        return None, None
    try:
        header, snap = modelcache.decode_assembled(opened.index_digest, data)
        if header.get("format") != PACKED_FORMAT:
            raise modelcache.ModelRefused(f"{ASSEMBLED} was made for another layout than {PACKED_FORMAT}")
        try:
            bundle = _header(header)
        except ValueError as exc:
            raise modelcache.ModelRefused(f"{ASSEMBLED} is damaged ({exc})") from None
    except modelcache.ModelRefused as exc:
        return None, f"bundle's assembled model not used: {exc}"
    return (bundle, snap), None


def _model_parts(opened: Opened, refused: str | None) -> tuple[dict[int, Any], str | None]:
    """The parts of a packed bundle's model that a replay uses instead of normalising (none when
    it has none, or when they are refused: then why, which replaces the assembled snapshot's)."""
    from . import modelcache

    data = opened.take(MODEL)
    opened.close()
    if data is None:
        return {}, refused
    try:
        return modelcache.decode(opened.index, data), refused
    except modelcache.ModelRefused as exc:
        return {}, f"bundle's model not used: {exc}"


def read_bundle(path: str | Path) -> Bundle:
    """Read a bundle written by :func:`write_bundle` (directory or archive).

    Safely (see :mod:`meshobs.bundle_read`): regular files only, no links followed, files
    capped in size, archive members streamed and read only when the index names them. Any
    problem is a :class:`BundleError` that says what is wrong.
    """
    path = Path(path)
    # Never the model: a bundle read whole is one to edit or write again (snapshot --from, the
    # demos, tests changing a payload), whose sources must be normalised from what they hold.
    index, read, _model = open_bundle_and_model(path, FORMATS)
    try:
        bundle = _header(index)
        bundle.sources = sources_from_index(index, read, packed=index["format"] == PACKED_FORMAT)
    except ValueError as exc:
        raise BundleError(f"bad bundle {path}: bundle.json is damaged: {exc}") from None
    return bundle


def iter_bundle(path: str | Path) -> tuple[Bundle, Iterator[RawSource]]:
    """:func:`read_bundle`'s times, config and scope (``sources`` empty), and its sources one at a
    time, each read when the iterator reaches it (an archive in one sequential pass, with the
    same checks). A replay that normalises each source and lets it go never holds every body
    at once. A source the archive's model covers (:mod:`meshobs.modelcache`) comes with its
    ``part`` and without its payloads: the replay does not normalise it. When the archive's
    assembled snapshot is used instead (``Bundle.assembled``: build_snapshot returns it and
    reads no source), the sources, if read after all, come with their payloads."""
    return _iter_bundle(Path(path), None)


def _iter_bundle(path: Path, parts: dict[int, Any] | None) -> tuple[Bundle, Iterator[RawSource]]:
    """:func:`iter_bundle`; ``parts``: its model's, decoded already (the same archive read again,
    by :mod:`meshobs.loadsplit`'s child), else read from the archive.

    What of a packed archive's model is used: its assembled snapshot (``Bundle.assembled``, which
    build_snapshot returns instead of reading the sources; bundle.json is then parsed only if the
    sources are read after all), else the parts of its sources, else nothing. A model there but
    not used is one line on stderr: why the parts were not, else why the assembled snapshot was not."""
    from . import modelcache

    use = parts is None and modelcache.enabled()
    opened = open_bundle_and_models(path, FORMATS, stream=True, follow=MEMBERS if use else (), lazy=True)
    refused = None
    if use:
        found, refused = _assembled(opened)
        if found is not None:
            opened.close()  # the parts are not needed: not even decompressed
            bundle, snap = found
            bundle.assembled = snap
            bundle.stream_again = lambda: _iter_bundle(path, {})[1]
            return bundle, _sources(path, opened, True, {})
    index = opened.index
    try:
        bundle = _header(index)
    except ValueError as exc:
        opened.close()
        raise BundleError(f"bad bundle {path}: bundle.json is damaged: {exc}") from None
    packed = index["format"] == PACKED_FORMAT
    if parts is None:
        parts, refused = _model_parts(opened, refused) if use and packed else ({}, refused)
    opened.close()
    if refused is not None:
        print(f"meshobs: {path}: {refused}", file=sys.stderr)
    opened.ready()  # the payload file names checked now
    used = parts
    listed = index.get("sources")
    # The kinds of the sources left to normalise (meshobs.loadsplit shares out their work).
    bundle.stream_kinds = dict(Counter(str(s.get("kind")) for i, s in enumerate(listed)
                                       if isinstance(s, dict) and i not in parts)
                               if isinstance(listed, list) else {})
    bundle.stream_again = lambda: _iter_bundle(path, used)[1]
    return bundle, _sources(path, opened, packed, parts)


def _sources(path: Path, opened: Opened, packed: bool, parts: dict[int, Any]) -> Iterator[RawSource]:
    try:
        yield from iter_sources_from_index(opened.index, opened.read, packed=packed, parts=parts, bodies=False)
    except ValueError as exc:
        raise BundleError(f"bad bundle {path}: bundle.json is damaged: {exc}") from None


def _header(index: dict[str, Any]) -> Bundle:
    scope = index.get("scope")
    return Bundle(sources=[], scope=scope if isinstance(scope, dict) else None, **index_header(index))
