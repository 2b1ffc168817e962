"""A packed bundle's normalised model: what ``normalize`` made of each of its sources, written
next to the raw payloads so that a replay reads it instead of normalising them again.

    encode(index, sources, parts) -> bytes | None      (the ``model.msgpack`` member)
    decode(index, data) -> {source number: SnapshotPart}  (ModelRefused: why it is not used)
    encode_assembled(index bytes, parsed index, snapshot) -> bytes | None   (``assembled.msgpack``)
    decode_assembled(index digest, data) -> (header, Snapshot)            (ModelRefused)

The parts assembled (:mod:`meshobs.assemble`) are kept too, right after bundle.json and before
the parts: a replay that uses them neither decompresses the parts, assembles them nor parses the
index (:class:`Assembled`: tied to the blake2b of bundle.json's bytes, which hold everything
assembly reads besides the parts; exact over every field the snapshot is made from; the same
version). Refused, the parts are used as before.

The raw payloads stay the source of truth: the model is a cache of their normalisation, used
only when everything about it matches, and otherwise left aside (one line on stderr) while the
payloads are normalised as before.

* **Typed, never pickled.** The member is msgpack decoded by msgspec into the model's own
  classes (:class:`~meshobs.model.SnapshotPart` and what it holds), so a wrong type anywhere is
  a decode error, and a hostile bundle can make nothing but model objects. Its size is capped
  like every member's (:data:`meshobs.bundle_read.MAX_FILE_BYTES`).
* **Exact.** Each part written is decoded back at once and kept only when it comes back the
  same, byte for byte in msgpack (an int stays an int, a float a float) and in JSON (a time
  keeps its UTC offset): a part that would not come back exact is left out, and its source
  normalised from its payloads at replay. ``tests/test_modelcache.py`` holds it type for type.
* **Versioned.** :func:`version` digests every model class's qualified name, fields and
  annotations (and enum values), plus :data:`REVISION`, bumped whenever a normaliser's (or
  assembly's) output changes (``tests/test_modelcache.py`` fails on the shipped demo archives until it is), and
  meshobs's version: a model of another version is not used.
* **Tied to its bundle.** It records the bundle's time and window (``normalize`` reads them)
  and, per source it covers, the source's number, name, kind and a digest of its index entry
  (its payload entries: key, pack, offset, length, status ...). One mismatch and none of it is
  used. Only packed archives carry it (written at once, atomically); a directory never does,
  since its payloads may be edited by hand.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib
import json
import os
import pkgutil
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

import msgspec

from .gc_pause import gc_paused
from .model import (
    EMPTY,
    Cert,
    ConfigResource,
    ControlPlane,
    Edge,
    FrozenDict,
    History,
    InjectionWebhook,
    IstiodReplica,
    MeshSnapshot,
    MetricSeries,
    Pod,
    Proxy,
    Service,
    SnapshotPart,
    SourceStatus,
    Trace,
    Workload,
    XdsReject,
    XdsSync,
    freeze,
)
from .model.frozen import _LEAVES

MEMBER = "model.msgpack"  # the parts: after bundle.json (and ASSEMBLED) in a packed archive
FORMAT = "meshobs-model/1"
# The parts assembled (the snapshot but its origin): right after bundle.json, so that a replay
# that uses it reads neither the parts nor any payload.
ASSEMBLED = "assembled.msgpack"
ASSEMBLED_FORMAT = "meshobs-assembled/1"
MEMBERS = (ASSEMBLED, MEMBER)  # in archive order, right after bundle.json
# Bump whenever a normaliser's or assembly's output changes for the same payloads (a model
# class's change is caught by version() on its own): a bundle's model made by the older code is
# then not used.
REVISION = 3
# MESHOBS_MODEL_CACHE=0 (or --no-model-cache): never read a bundle's model.
ENV = "MESHOBS_MODEL_CACHE"

_disabled = False


class ModelRefused(Exception):
    """A bundle's model that is not used, and why (in words)."""


class Covered(msgspec.Struct, array_like=True, frozen=True):
    """One source the model covers, and its part (decoded only when all of the model matches)."""

    number: int
    name: str
    kind: str
    entry: bytes  # entry_digest() of the source's index entry
    part: msgspec.Raw


class Model(msgspec.Struct, frozen=True):
    format: str
    version: str
    time: str  # bundle.json's, as written
    window_s: int | float
    sources: list[Covered]


def allow(use: bool) -> None:
    """``--no-model-cache`` (``use`` False): this process (and its forked children) normalise
    the payloads of every bundle it reads."""
    global _disabled
    _disabled = not use


def enabled() -> bool:
    return not _disabled and os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "off", "false")


@cache
def version() -> str:
    """A digest of the model's type definitions, :data:`REVISION` and meshobs's own version (a
    release never reads another release's model: a normaliser changed without a REVISION bump
    costs that release's replays their speed, never their answer)."""
    from . import __version__, model

    h = hashlib.blake2b(f"{FORMAT} {REVISION} {__version__}".encode(), digest_size=16)
    for info in sorted(pkgutil.iter_modules(model.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{model.__name__}.{info.name}")
        for _name, obj in sorted(vars(module).items()):
            if not isinstance(obj, type) or obj.__module__ != module.__name__:
                continue
            h.update(f"\n{obj.__module__}.{obj.__qualname__}".encode())
            if dataclasses.is_dataclass(obj):
                for f in dataclasses.fields(obj):
                    h.update(f" {f.name}:{f.type}:{f.init}".encode())
            elif issubclass(obj, msgspec.Struct):
                for field in msgspec.structs.fields(obj):
                    h.update(f" {field.name}:{field.type}".encode())
            elif issubclass(obj, enum.Enum):
                for member in obj:
                    h.update(f" {member.name}={member.value!r}".encode())
            else:
                h.update(f" {sorted(getattr(obj, '__annotations__', {}).items())}".encode())
    return h.hexdigest()


def entry_digest(entry: Any) -> bytes:
    """A source's index entry (as parsed from bundle.json), digested."""
    return hashlib.blake2b(_encoder().encode(entry), digest_size=16).digest()


def _digest(entry: Any) -> bytes | None:
    """:func:`entry_digest`, None for an entry msgpack cannot hold (an int past 64 bits, JSON
    nested deeper than the encoder goes)."""
    try:
        return entry_digest(entry)
    except (msgspec.MsgspecError, TypeError, ValueError, OverflowError, RecursionError):
        return None


def _dec_hook(tp: type, obj: Any) -> Any:
    """A FrozenDict (msgspec decodes the map, this freezes it): ~400,000 at 5,000 services."""
    if tp is FrozenDict and obj.__class__ is dict:
        if not obj:
            return EMPTY
        if _LEAVES.issuperset(map(type, obj.values())):  # the usual case: counters (str -> number)
            return FrozenDict(obj)
        return freeze(obj)
    raise TypeError(f"expected {tp.__name__}, got {type(obj).__name__}")


@cache
def _encoder() -> msgspec.msgpack.Encoder:
    return msgspec.msgpack.Encoder()


@cache
def _decoder() -> msgspec.msgpack.Decoder[SnapshotPart]:
    return msgspec.msgpack.Decoder(SnapshotPart, dec_hook=_dec_hook)


@cache
def _sorted_encoders() -> tuple[msgspec.msgpack.Encoder, msgspec.json.Encoder]:
    # A frozenset's order is its hashes' (History.signals): compared sorted. A map's order is
    # kept by the decoder, so sorting its keys hides nothing.
    return msgspec.msgpack.Encoder(order="deterministic"), msgspec.json.Encoder(order="deterministic")


def exact(part: SnapshotPart) -> bytes | None:
    """``part`` encoded, when it decodes back exactly (the same msgpack: an int stays an int;
    the same JSON: a time keeps its UTC offset); else None."""
    packer, jsoner = _sorted_encoders()
    try:
        data = _encoder().encode(part)
        back = _decoder().decode(data)
        if packer.encode(back) != packer.encode(part) or jsoner.encode(back) != jsoner.encode(part):
            return None
    except (msgspec.MsgspecError, TypeError, ValueError, OverflowError, RecursionError):
        return None
    return data


def encode(index: dict[str, Any], parts: Sequence[SnapshotPart]) -> bytes:
    """The model member of a bundle whose parsed ``bundle.json`` is ``index``: ``parts[i]`` is
    what normalising its source ``i`` (read back from that index and its payloads) made."""
    entries = index.get("sources") or []
    covered = []
    for number, (part, entry) in enumerate(zip(parts, entries, strict=True)):
        data = exact(part)
        digest = _digest(entry)
        if data is not None and digest is not None:
            covered.append(Covered(number, entry["name"], entry["kind"], digest, msgspec.Raw(data)))
    return _encoder().encode(Model(FORMAT, version(), str(index.get("time")), index.get("window_s") or 0,
                                   covered))



_M = TypeVar("_M", "Model", "Assembled")


def _decode_member(data: bytes, kind: type[_M], member: str, fmt: str) -> _M:
    """One of the model's members decoded as ``kind``, refused (:class:`ModelRefused`) when it
    is damaged or was written for another format or model version."""
    try:
        doc = msgspec.msgpack.decode(data, type=kind)
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise ModelRefused(f"{member} is damaged ({exc})") from None
    if doc.format != fmt or doc.version != version():
        raise ModelRefused(f"{member} was written by a meshobs with another model version "
                           f"({doc.format} {doc.version[:12]}; this one reads {fmt} {version()[:12]})")
    return doc

def decode(index: dict[str, Any], data: bytes) -> dict[int, SnapshotPart]:
    """The parts of the sources the model covers, by source number, when every one of them
    matches ``index`` (the bundle's parsed bundle.json); else :class:`ModelRefused`."""
    model = _decode_member(data, Model, MEMBER, FORMAT)
    if model.time != index.get("time") or model.window_s != index.get("window_s"):
        raise ModelRefused(f"{MEMBER} was made for another time or window than bundle.json's")
    entries = index.get("sources")
    if not isinstance(entries, list):
        raise ModelRefused("bundle.json lists no sources")
    with gc_paused(promote=True):  # millions of acyclic objects (see meshobs.gc_pause)
        return _parts(model, entries)


def _parts(model: Model, entries: list[Any]) -> dict[int, SnapshotPart]:
    parts: dict[int, SnapshotPart] = {}
    dec = _decoder()
    last = -1
    for c in model.sources:
        if not last < c.number < len(entries):
            raise ModelRefused(f"{MEMBER} covers source {c.number}, which bundle.json does not list "
                               "(or not in order)")
        last = c.number
        entry = entries[c.number]
        if (not isinstance(entry, dict) or entry.get("name") != c.name or entry.get("kind") != c.kind
                or _digest(entry) != c.entry):
            raise ModelRefused(f"{MEMBER} does not match source {c.number} ({c.name}) of bundle.json")
        try:
            parts[c.number] = dec.decode(c.part)
        except (msgspec.MsgspecError, TypeError, ValueError, RecursionError) as exc:
            raise ModelRefused(f"{MEMBER}: source {c.number} ({c.name}) is damaged ({exc})") from None
    return parts


# -- the assembled snapshot ----------------------------------------------------------------------
class Assembled(msgspec.Struct, frozen=True):
    """The ASSEMBLED member: what :func:`meshobs.assemble.assemble` made of every source's part,
    tied to the very bytes of bundle.json (its times, its config's ``mesh``, every source's entry:
    all that assembly reads besides the parts, and what the parts were made from)."""

    format: str
    version: str
    index: bytes  # blake2b of bundle.json
    # bundle.json but its sources (times, config, scope ...), as JSON: a replay that uses the
    # snapshot reads no source, and parsing the whole index (100 MB of objects at 5,000 services)
    # only for these cost a fifth of its load.
    header: bytes
    snapshot: msgspec.Raw  # a Snapshot


class Snapshot(msgspec.Struct, array_like=True, frozen=True):
    """A MeshSnapshot's fields but time, window_s (bundle.json's) and origin (the replay's),
    its control plane by its own fields (the rest of it is derived)."""

    services: tuple[Service, ...]
    workloads: tuple[Workload, ...]
    pods: tuple[Pod, ...]
    edges: tuple[Edge, ...]
    proxies: tuple[Proxy, ...]
    certs: tuple[Cert, ...]
    config: tuple[ConfigResource, ...]
    traces: tuple[Trace, ...]
    sources: tuple[SourceStatus, ...]
    series: tuple[MetricSeries, ...]
    history: History | None
    replicas: tuple[IstiodReplica, ...]
    syncs: tuple[XdsSync, ...]
    rejects: tuple[XdsReject, ...]
    webhooks: tuple[InjectionWebhook, ...] | None

    @classmethod
    def of(cls, snap: MeshSnapshot) -> Snapshot:
        cp = snap.control_plane
        return cls(snap.services, snap.workloads, snap.pods, snap.edges, snap.proxies, snap.certs, snap.config,
                   snap.traces, snap.sources, snap.series, snap.history, cp.replicas, cp.syncs, cp.rejects,
                   cp.webhooks)

    def snapshot(self, time: Any, window_s: float, origin: str) -> MeshSnapshot:
        return MeshSnapshot(
            time=time, window_s=window_s, services=self.services, workloads=self.workloads, pods=self.pods,
            edges=self.edges, proxies=self.proxies, certs=self.certs, config=self.config, traces=self.traces,
            sources=self.sources, origin=origin, series=self.series, history=self.history,
            control_plane=ControlPlane(replicas=self.replicas, syncs=self.syncs, rejects=self.rejects,
                                       webhooks=self.webhooks))


def _init_fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields given to its constructor, by name (a MeshSnapshot's derived indexes
    are not): what the exactness check compares, so a field Snapshot does not carry is seen."""
    return {f.name: (_init_fields(v) if isinstance(v := getattr(obj, f.name), ControlPlane) else v)
            for f in dataclasses.fields(obj) if f.init}


@cache
def _snapshot_decoder() -> msgspec.msgpack.Decoder[Snapshot]:
    return msgspec.msgpack.Decoder(Snapshot, dec_hook=_dec_hook)


def encode_assembled(index: bytes, parsed: dict[str, Any], snap: MeshSnapshot) -> bytes | None:
    """The ASSEMBLED member for the bundle whose bundle.json is ``index`` (its bytes; ``parsed``
    as :func:`meshobs.bundle_read.parse_index` reads it) and whose replay from the payloads makes
    ``snap``; None when it would not come back exact (as :func:`exact`: the same msgpack and the
    same JSON, over every field MeshSnapshot is made from but its origin; the header read back
    the same JSON as written)."""
    from .shape import loads

    packer, jsoner = _sorted_encoders()
    head = {k: v for k, v in parsed.items() if k != "sources"}
    try:
        header = json.dumps(head, allow_nan=False).encode("utf-8")
        if json.dumps(loads(header), allow_nan=False) != header.decode("utf-8"):
            return None
        data = _encoder().encode(Snapshot.of(snap))
        back = _snapshot_decoder().decode(data).snapshot(snap.time, snap.window_s, snap.origin)
        mine, theirs = _init_fields(snap), _init_fields(back)
        if list(mine) != list(theirs):
            return None
        for name, value in mine.items():  # field by field: a 5,000-service mesh's JSON is ~100 MB
            back_value = theirs[name]
            if packer.encode(back_value) != packer.encode(value) or jsoner.encode(back_value) != jsoner.encode(value):
                return None
    except (msgspec.MsgspecError, TypeError, ValueError, OverflowError, RecursionError):
        return None
    return _encoder().encode(Assembled(ASSEMBLED_FORMAT, version(), _index_digest(index), header,
                                       msgspec.Raw(data)))


def _index_digest(index: bytes) -> bytes:
    return hashlib.blake2b(index, digest_size=16).digest()


def decode_assembled(index_digest: bytes, data: bytes) -> tuple[dict[str, Any], Snapshot]:
    """bundle.json but its sources, and the assembled snapshot, when they were made for the
    bundle.json whose blake2b (16 bytes) is ``index_digest`` by this model version; else
    :class:`ModelRefused`."""
    from .shape import loads

    doc = _decode_member(data, Assembled, ASSEMBLED, ASSEMBLED_FORMAT)
    if not index_digest or doc.index != index_digest:
        raise ModelRefused(f"{ASSEMBLED} was made for another bundle.json")
    try:
        header = loads(doc.header)
    except (ValueError, RecursionError) as exc:  # written by this version for this very index: not seen
        raise ModelRefused(f"{ASSEMBLED} is damaged ({exc})") from None
    if not isinstance(header, dict):
        raise ModelRefused(f"{ASSEMBLED} is damaged (its header is not an object)")
    with gc_paused(promote=True):  # millions of acyclic objects (see meshobs.gc_pause)
        try:
            return header, _snapshot_decoder().decode(doc.snapshot)
        except (msgspec.MsgspecError, TypeError, ValueError, RecursionError) as exc:
            raise ModelRefused(f"{ASSEMBLED} is damaged ({exc})") from None
