"""Reading a bundle someone handed you, as the untrusted input it is.

A bundle arrives attached to a ticket or copied from another machine, so reading it must not:

* follow a symbolic link out of it (``payloads/x.json -> /etc/passwd`` would be read and
  re-exported by ``snapshot --from``), block on a FIFO or read a device (``/dev/zero``);
* read what the index does not reference, or more than :data:`MAX_FILE_BYTES` of any file
  (a 1 MB ``.tar.gz`` can hold a 1 GiB member); the archive is read member by member, in
  order, and never unpacked to disk;
* fail with anything but :class:`BundleError` saying what is wrong: a truncated archive, JSON
  nested beyond the parser's stack, ``"time": null`` or a payload list that is a string are
  bad bundles (exit 2), not internal errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .raw import Payload, RawSource, parse_iso
from .shape import loads

MAX_FILE_BYTES = 256 * 2**20  # per file: larger than any answer meshobs records
MAX_ARCHIVE_BYTES = 4 * 2**30  # all members together, as their headers declare them
MAX_MEMBERS = 200_000
INDEX = "bundle.json"


class BundleError(Exception):
    """A bundle that cannot be read: says which path and why."""


def _bad(path: Path, why: str) -> BundleError:
    return BundleError(f"bad bundle {path}: {why}")


def check_name(path: Path, name: Any) -> str:
    """A payload file name from the index, refused unless it is a plain path under payloads/."""
    if not isinstance(name, str) or not name:
        raise _bad(path, f"payload file name {name!r} is not a path")
    # Plain string tests (a 5,000-service bundle names 30,000 files, each checked twice): under
    # payloads/ it is relative, and its "/"-separated components hold ".." exactly when
    # PurePosixPath's parts do (that drops only empty and "." components).
    if name != INDEX and (not name.startswith("payloads/") or ".." in name.split("/")
                          or "\\" in name or "\x00" in name):
        raise _bad(path, f"payload file {name!r} is outside the bundle's payloads/")
    return name


# -- directories ---------------------------------------------------------------------------------
def _read_in_directory(root: Path, name: str) -> bytes:
    """``root/name`` when every step is a real directory and the file a regular file.

    Walks with ``O_NOFOLLOW`` from a descriptor of ``root``, so a link swapped in between the
    check and the open is refused too; ``O_NONBLOCK`` keeps a FIFO from blocking the open.
    """
    parts = PurePosixPath(name).parts
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _bad(root, f"cannot open the bundle directory ({exc.strerror})") from None
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                raise _bad(root, f"{name}: {part}/ is not a directory of the bundle ({exc.strerror}; "
                                 "symbolic links are not followed)") from None
            os.close(fd)
            fd = nxt
        try:
            info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise _bad(root, f"cannot read {name} ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            what = ("a symbolic link" if stat.S_ISLNK(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "not a regular file")
            raise _bad(root, f"{name} is {what}; a bundle holds regular files only")
        try:
            file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            raise _bad(root, f"cannot read {name} ({exc.strerror})") from None
        with os.fdopen(file_fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise _bad(root, f"{name} is not a regular file")
            data = f.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise _bad(root, f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB")
    return data


# -- archives ------------------------------------------------------------------------------------
def _members(path: Path, wanted: set[str]) -> dict[str, bytes]:
    """The regular members named in ``wanted``, read in one pass (see :func:`_iter_members`)."""
    return dict(_iter_members(path, wanted))


def _iter_members(path: Path, wanted: set[str], follow: tuple[str, ...] = ()) -> Iterator[tuple[str, bytes]]:
    """One pass over the archive yielding the regular members named in ``wanted``, in order.

    Members are visited in archive order; the others are skipped (decompressed, not kept) and
    the pass stops once every wanted member was found -- or, with ``follow``, it goes on while
    the next member is one of ``follow``'s names, each at most once and in that order (a packed
    bundle's model members, right after its index: looked for there only, so a bundle without
    them is not read further), yielding those that are regular files. Lazily: a member is
    decompressed only when the consumer asks for the next one. A member whose header declares more than
    :data:`MAX_FILE_BYTES`, or headers declaring more than :data:`MAX_ARCHIVE_BYTES` in all,
    stop the read before that data is decompressed. A gzip archive read to its end has its CRC
    and length checked, so a truncated or corrupted archive is refused.
    """
    # Only archives need these: a live run or a directory bundle never imports them.
    import gzip
    import tarfile
    import zlib

    total = members = 0
    remaining = set(wanted)
    following = False
    chain = list(follow)
    try:
        with path.open("rb") as raw:
            gz = gzip.GzipFile(fileobj=raw) if raw.read(2) == b"\x1f\x8b" else None
            raw.seek(0)
            with tarfile.open(fileobj=gz, mode="r:") if gz else tarfile.open(fileobj=raw, mode="r:*") as tar:
                while remaining or following:
                    member = tar.next()
                    if member is None:
                        break
                    members += 1
                    total += max(0, member.size)
                    if members > MAX_MEMBERS:
                        raise _bad(path, f"more than {MAX_MEMBERS:,} members")
                    if member.size > MAX_FILE_BYTES:
                        raise _bad(path, f"member {member.name!r} is {member.size / 2**20:.0f} MB, larger than "
                                         f"{MAX_FILE_BYTES // 2**20} MB (not written by meshobs)")
                    if total > MAX_ARCHIVE_BYTES:
                        raise _bad(path, f"members total more than {MAX_ARCHIVE_BYTES // 2**30} GB")
                    name = member.name.removeprefix("./")
                    if following:
                        if name not in chain:
                            break
                        del chain[:chain.index(name) + 1]
                        following = bool(chain)
                    # Links, devices and FIFOs in an archive are never read: a bundle holds files.
                    elif name not in remaining or not member.isreg():
                        continue
                    if not member.isreg():
                        continue
                    f = tar.extractfile(member)
                    if f is not None:
                        if name in remaining:
                            remaining.discard(name)
                            following = bool(chain) and not remaining
                        # A member yields at most the size its header declares (checked above):
                        # asking for just over that, not for MAX_FILE_BYTES + 1, spares a
                        # 256 MB buffer allocated and released per member (30k at 5,000 services).
                        try:
                            yield name, f.read(max(0, member.size) + 1)
                        except GeneratorExit:  # the consumer has what it needs: the CRC below still
                            break
                if gz is not None:
                    # What follows the last member a meshobs bundle needs is the end-of-archive
                    # padding: read it so gzip checks the CRC; never more than a few MB.
                    for _ in range(4):
                        if not gz.read(2**20):
                            break
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as exc:
        raise _bad(path, f"not a meshobs bundle archive, or a damaged one ({type(exc).__name__}: {exc})") from None


class _Archive:
    """Members read on demand: the index first, then (one more pass) the payloads it names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, bytes] = {}
        self.loaded: set[str] = set()
        self._following: Iterator[tuple[str, bytes]] = iter(())

    def read_index(self, follow: tuple[str, ...] = ()) -> bytes:
        """bundle.json; and with ``follow``, the members of those names that come right after it
        (taken with :meth:`take`, each decompressed only when asked for)."""
        self._following = _iter_members(self.path, {INDEX}, follow)
        for name, data in self._following:
            self.files[name] = data
            break
        if not follow:
            self.close()  # the pass ends (and a small archive has its CRC checked) now, as before
        if INDEX not in self.files:
            raise _bad(self.path, f"{INDEX} is missing (not a meshobs bundle archive)")
        return self.files[INDEX]

    def take(self, name: str) -> bytes | None:
        """A member that followed the index (None when it is not there), read if not yet."""
        while name not in self.files:
            got = next(self._following, None)
            if got is None:
                return None
            self.files[got[0]] = got[1]
        data = self.files.pop(name)
        if len(data) > MAX_FILE_BYTES:
            raise _bad(self.path, f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB")
        return data

    def close(self) -> None:
        """Stop the pass over the members following the index (none more is read; what follows
        the last one read is read a few MB further, so that a small archive has its CRC checked:
        a truncated one is a :class:`BundleError` here)."""
        close = getattr(self._following, "close", None)
        if close is not None:
            close()

    def load(self, names: set[str]) -> None:
        missing = names - self.loaded
        if missing:
            self.files.update(_members(self.path, missing))
            self.loaded |= missing

    def read(self, name: str) -> bytes:
        if name not in self.files:
            raise _bad(self.path, f"{name} is missing from the bundle (or is not a regular file)")
        data = self.files[name]
        if len(data) > MAX_FILE_BYTES:
            raise _bad(self.path, f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB")
        return data


# -- the index -----------------------------------------------------------------------------------
def _field(where: str, obj: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any = None,
           required: bool = False) -> Any:
    if key not in obj or obj[key] is None:
        if required:
            raise ValueError(f"{where}.{key} is missing")
        return default
    value = obj[key]
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError(f"{where}.{key}: expected {'/'.join(k.__name__ for k in kinds)}, got bool")
    if not isinstance(value, kinds):
        raise ValueError(f"{where}.{key}: expected {'/'.join(k.__name__ for k in kinds)}, "
                         f"got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}.{key}: not a finite number")
    return value


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_index(data: bytes, fmt: str | tuple[str, ...]) -> dict[str, Any]:
    """``bundle.json`` parsed and its top level checked (ValueError says what is wrong); ``fmt``
    is the layout, or the layouts, accepted."""
    try:
        index = loads(_text(data, INDEX))  # json.loads's values and errors, faster (~100 MB at 5,000)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{INDEX} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ValueError(f"{INDEX} is nested too deeply to read") from None
    formats = (fmt,) if isinstance(fmt, str) else fmt
    if not isinstance(index, dict) or not isinstance(index.get("format"), str) or index["format"] not in formats:
        raise ValueError(f"not a {' or '.join(formats)} bundle")
    return index


class _ArchiveStream:
    """Members read on demand in one pass after the index: bundles are written in payload order,
    so each member is read when its source is reached and let go once handed out (the checks of
    :func:`_iter_members` apply)."""

    def __init__(self, path: Path, names: set[str]) -> None:
        self.path = path
        self._members = _iter_members(path, names)
        self._waiting: dict[str, bytes] = {}

    def read(self, name: str) -> bytes:
        while name not in self._waiting:
            got = next(self._members, None)
            if got is None:
                raise _bad(self.path, f"{name} is missing from the bundle (or is not a regular file)")
            self._waiting[got[0]] = got[1]
        data = self._waiting.pop(name)
        if len(data) > MAX_FILE_BYTES:
            raise _bad(self.path, f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB")
        return data


def payload_files(index: dict[str, Any]) -> list[Any]:
    """Every payload file name the index references (unchecked: :func:`check_name` does that)."""
    files = []
    for s in index.get("sources") or []:
        if isinstance(s, dict) and isinstance(s.get("payloads"), list):
            files += [p.get("file") for p in s["payloads"] if isinstance(p, dict) and p.get("file") is not None]
    return files


def sources_from_index(index: dict[str, Any], read: Callable[[str], bytes], *,
                       packed: bool = False, parts: Mapping[int, Any] | None = None) -> list[RawSource]:
    """The RawSources an index describes, every field type-checked (ValueError naming it);
    ``parts``: see :func:`iter_sources_from_index`."""
    return list(iter_sources_from_index(index, read, packed=packed, parts=parts))


class _Packs:
    """Payload bodies cut out of pack members (a packed archive: the bodies of many payloads one
    after the other in one member, each entry naming its ``offset`` and ``length`` in bytes).

    One pack is held at a time, and the index must use each pack's bytes once, in order: its
    entries together, their slices ascending and not overlapping. So what is decoded never
    exceeds what the archive holds (an index pointing 100,000 entries at one big pack would
    otherwise make 100,000 copies of it), and a streamed read needs no member twice."""

    def __init__(self, read: Callable[[str], bytes]) -> None:
        self._read = read
        self._name: str | None = None
        self._data = b""
        self._end = 0
        self._done: set[str] = set()

    def body(self, where: str, name: str, offset: int, length: int) -> bytes:
        if name != self._name:
            if name in self._done:
                raise ValueError(f"{where}: {name} was used up by earlier payloads (a pack's entries "
                                 "come together)")
            if self._name is not None:
                self._done.add(self._name)
            self._data = b""  # let the previous pack go before the next one is read
            self._data, self._name, self._end = self._read(name), name, 0
        if offset < self._end or offset + length > len(self._data):
            raise ValueError(f"{where}: bytes {offset}-{offset + length} of {name} overlap an earlier "
                             f"payload or lie outside its {len(self._data)} bytes")
        self._end = offset + length
        return self._data[offset:self._end]


def _packed_body(packs: _Packs, where: str, p: dict[str, Any], file: str) -> bytes:
    offset = _field(where, p, "offset", (int,), required=True)
    length = _field(where, p, "length", (int,), required=True)
    if offset < 0 or length < 0:
        raise ValueError(f"{where}: negative offset or length")
    return packs.body(where, file, offset, length)


def _payload_as_written(p: Any, read: Callable[[str], bytes], packs: _Packs | None, pw: str) -> Payload | None:
    """The payload entry ``p`` when every field has the exact type meshobs writes (None
    otherwise: the caller checks it field by field, and names what is wrong). The same checks
    as :func:`_field`'s, by exact type and in one expression: a 5,000-service index has ~30,000
    entries of ten fields each."""
    if p.__class__ is not dict:
        return None
    get = p.get
    key, status, error, url = get("key"), get("status"), get("error"), get("url")
    params, elapsed, fetched, meta, file = (get("params"), get("elapsed_s"), get("fetched_at"), get("meta"),
                                            get("file"))
    if not (key.__class__ is str and (status is None or status.__class__ is int)
            and (error is None or error.__class__ is str) and (url is None or url.__class__ is str)
            and (params is None or params.__class__ is dict) and (meta is None or meta.__class__ is dict)
            and (fetched is None or fetched.__class__ is str) and (file is None or file.__class__ is str)
            and (elapsed is None or elapsed.__class__ is int
                 or (elapsed.__class__ is float and math.isfinite(elapsed)))):
        return None
    data = None
    if file:
        if packs is None:
            data = read(file)
        else:
            offset, length = get("offset"), get("length")
            if not (offset.__class__ is int and length.__class__ is int and offset >= 0 and length >= 0):
                return None
            data = packs.body(pw, file, offset, length)
    return Payload(key=key, body=_text(data, file) if file and data is not None else None, status=status,
                   error=error, url="" if url is None else url, params={} if params is None else params,
                   elapsed_s=0.0 if elapsed is None else float(elapsed),
                   fetched_at="" if fetched is None else fetched, meta={} if meta is None else meta)


def iter_sources_from_index(index: dict[str, Any], read: Callable[[str], bytes], *,
                            packed: bool = False, parts: Mapping[int, Any] | None = None,
                            bodies: bool = True) -> Iterator[RawSource]:
    """:func:`sources_from_index` one source at a time, each read when reached; each index entry
    is let go once read (a 5,000-service index is ~100 MB parsed). ``packed``: each ``file`` is a
    pack and the entry's ``offset`` and ``length`` say where its body is (see :class:`_Packs`).

    ``parts``: sources already normalised (a bundle's model, by source number), which get their
    ``part``; ``bodies`` False: their payloads are not read at all, neither entries nor bodies (a
    replay that only normalises: a model covering every source reads no pack)."""
    packs = _Packs(read) if packed else None
    parts = parts or {}
    raw_sources = _field("bundle", index, "sources", (list,), [])
    for i, s in enumerate(raw_sources):
        raw_sources[i] = None
        where = f"sources[{i}]"
        if not isinstance(s, dict):
            raise ValueError(f"{where}: expected an object, got {type(s).__name__}")
        raw = RawSource(name=_field(where, s, "name", (str,), required=True),
                        kind=_field(where, s, "kind", (str,), required=True),
                        meta=_field(where, s, "meta", (dict,), {}),
                        error=_field(where, s, "error", (str,)),
                        duration_s=float(_field(where, s, "duration_s", (int, float), 0.0)))
        # meshobs writes every source's payload list, empty when nothing was fetched; without
        # one the bundle does not say what was asked, and replaying it as "no data" would
        # pass a damaged index off as a mesh that answered nothing
        payloads = s.get("payloads")
        if payloads.__class__ is not list:
            if payloads is None:
                raise ValueError(f"{where}.payloads is missing: the bundle recorded no payloads "
                                 f"for source {raw.name!r}")
            _field(where, s, "payloads", (list,))
        part = parts.get(i)
        raw.part = part
        if part is not None and not bodies:
            yield raw  # normalised already: what its payloads were asked is not needed either
            continue
        for j, p in enumerate(payloads):
            pw = f"{where}.payloads[{j}]"
            if (payload := _payload_as_written(p, read, packs, pw)) is not None:
                raw.payloads.append(payload)
                continue
            if not isinstance(p, dict):
                raise ValueError(f"{pw}: expected an object, got {type(p).__name__}")
            file = _field(pw, p, "file", (str,))
            data = None if not file else read(file) if packs is None else _packed_body(packs, pw, p, file)
            raw.payloads.append(Payload(
                key=_field(pw, p, "key", (str,), required=True),
                body=_text(data, file) if file and data is not None else None,
                status=_field(pw, p, "status", (int,)), error=_field(pw, p, "error", (str,)),
                url=_field(pw, p, "url", (str,), ""), params=_field(pw, p, "params", (dict,), {}),
                elapsed_s=float(_field(pw, p, "elapsed_s", (int, float), 0.0)),
                fetched_at=_field(pw, p, "fetched_at", (str,), ""), meta=_field(pw, p, "meta", (dict,), {})))
        yield raw


def index_header(index: dict[str, Any]) -> dict[str, Any]:
    """time, window_s, config and the descriptive fields, checked."""
    text = _field("bundle", index, "time", (str,), required=True)
    try:
        time = parse_iso(text)
    except (ValueError, OverflowError):
        raise ValueError(f"bundle.time: not an RFC 3339 time: {text[:40]!r}") from None
    window = float(_field("bundle", index, "window_s", (int, float), required=True))
    if window < 0:
        raise ValueError("bundle.window_s: negative")
    return {"time": time, "window_s": window, "config": _field("bundle", index, "config", (dict,), {}),
            **{k: _field("bundle", index, k, (str,), "")
               for k in ("created", "meshobs_version", "description", "name")}}


def open_bundle(path: Path, fmt: str | tuple[str, ...], *,
                stream: bool = False) -> tuple[dict[str, Any], Callable[[str], bytes]]:
    """(parsed index, a reader of the payload files it references) for a directory or archive.

    ``stream``: an archive's payloads are read as they are asked for, in one pass, and not kept
    (ask in index order, as :func:`iter_sources_from_index` does); else all are read up front."""
    opened = open_bundle_and_models(path, fmt, stream=stream)
    return opened.index, opened.read


def open_bundle_and_model(path: Path, fmt: str | tuple[str, ...], *, stream: bool = False,
                          model: str | None = None) -> tuple[dict[str, Any], Callable[[str], bytes], bytes | None]:
    """:func:`open_bundle`, and the archive's member ``model`` when it comes right after
    bundle.json, or after the other model members (None otherwise, and always for a directory:
    its files may be edited by hand)."""
    from .modelcache import MEMBERS

    opened = open_bundle_and_models(path, fmt, stream=stream, follow=MEMBERS if model is not None else ())
    found = opened.take(model) if model is not None else None
    opened.close()
    return opened.index, opened.read, found


class Opened:
    """A bundle opened (:func:`open_bundle_and_models`): its parsed index, a reader of the payload
    files it references, and the members following bundle.json in an archive."""

    def __init__(self, path: Path, fmt: str | tuple[str, ...], *, stream: bool, data: bytes,
                 archive: _Archive | None = None, digest: bytes = b"") -> None:
        self.path = path
        self._fmt = fmt
        self._stream = stream
        self._data: bytes | None = data
        self._archive = archive
        self._index: dict[str, Any] | None = None
        self._read: Callable[[str], bytes] | None = None
        self.index_digest = digest  # blake2b of bundle.json's bytes, when members were to follow it

    @property
    def index(self) -> dict[str, Any]:
        """bundle.json parsed, and checked (:class:`BundleError`), when first asked for."""
        if self._index is None:
            assert self._data is not None
            try:
                self._index = parse_index(self._data, self._fmt)
            except ValueError as exc:
                self.close()
                raise _bad(self.path, str(exc)) from None
            self._data = None
        return self._index

    def ready(self) -> None:
        """Parse and check the index and the payload file names it references now (an archive
        not streamed: read every payload)."""
        if self._read is None:
            self._read = self._reader()

    def read(self, name: str) -> bytes:
        """A payload file the index references."""
        self.ready()
        assert self._read is not None
        return self._read(name)

    def _reader(self) -> Callable[[str], bytes]:
        path, archive = self.path, self._archive
        if archive is None:
            return lambda name: _read_in_directory(path, check_name(path, name))
        names = {check_name(path, f) for f in payload_files(self.index)}
        if self._stream:
            members = _ArchiveStream(path, names)
            return lambda name: members.read(check_name(path, name))
        archive.load(names)
        return lambda name: archive.read(check_name(path, name))

    def take(self, name: str) -> bytes | None:
        """A member of ``follow`` that comes right after bundle.json, read when first asked for
        (None: not there; always None for a directory, whose files may be edited by hand)."""
        return self._archive.take(name) if self._archive is not None else None

    def close(self) -> None:
        """No member following the index is read from now on."""
        if self._archive is not None:
            self._archive.close()


def open_bundle_and_models(path: Path, fmt: str | tuple[str, ...], *, stream: bool = False,
                           follow: tuple[str, ...] = (), lazy: bool = False) -> Opened:
    """:func:`open_bundle`, with the members named in ``follow`` that come right after bundle.json
    in an archive, in that order (a packed bundle's model members), read lazily. ``lazy``: the
    index is parsed (and checked) only when first needed, else at once."""
    if path.is_dir():
        opened = Opened(path, fmt, stream=stream, data=_read_in_directory(path, INDEX))
    elif path.is_file():
        archive = _Archive(path)
        data = archive.read_index(follow)
        archive.files.pop(INDEX, None)
        digest = hashlib.blake2b(data, digest_size=16).digest() if follow else b""
        opened = Opened(path, fmt, stream=stream, data=data, archive=archive, digest=digest)
    else:
        raise BundleError(f"{path}: no such bundle (expected a directory or a .tar.gz)")
    if not lazy:
        opened.ready()
    return opened
