"""A validated meshobs.yaml remembered between runs, so a command does not pay for it again.

Every command loads the config before it asks anything. Parsing and validating it is pure
work on the same input each time, and it is not small: a served 5,000-service mesh's config
(1.2 MB, 7,418 static Envoy targets) takes ~0.4 s in libyaml and ~0.05 s to validate, and
importing pydantic and building the model costs ~0.13 s more on every command. So the
*outcome* of :func:`meshobs.config.validate` is kept in a file under the user's cache folder
(``$XDG_CACHE_HOME/meshobs/config``, else ``~/.cache/meshobs/config``; ``MESHOBS_CONFIG_CACHE=off``
turns it off), like Python's own ``__pycache__``.

The record is used only when everything validation reads is the same, so a hit returns exactly
what validating would have returned (the one model, :mod:`meshobs.config_model`, stays the only
definition of meshobs.yaml; this is its output, keyed by its input):

- the file's bytes and the path it was named by (relative paths resolve against its folder);
- the source of the modules that validate (:data:`VALIDATING`), pydantic's and PyYAML's
  versions and Python's (marshal's format);
- nothing from the environment: a config whose parsed text holds a ``$`` (``${VAR}`` expands
  from the environment) or a string starting with ``~`` (a home folder) is never recorded;
- no credential: a config that holds one itself (a token, a password in a URL: what
  :func:`meshobs.redact.config_secrets` finds) is never recorded either.

Only a valid config is recorded: a broken one is validated every time, so its errors are always
pydantic's own. The record is checked before it is written (read back, it must give the same
Config). A record that cannot be read, is stale or damaged (it carries a checksum), or is not
ours is ignored (and replaced); a cache folder that cannot be written, or that someone else owns
or can write, is not used.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

# The modules whose code decides what validation returns (tests/test_config_cache.py holds this
# equal to what loading and validating a config imports from meshobs).
# redact.py too: what it calls a credential decides whether a configuration is recorded at all,
# and a hit vouches that the configuration holds none (meshobs.redact.registered_clean).
VALIDATING = ("__init__.py", "config.py", "config_cache.py", "config_model.py", "config_types.py",
              "durations.py", "gc_pause.py", "raw.py", "redact.py", "shape.py", "catalogue")
_MAGIC = b"meshobs-config-1\n"
KEEP_S = 30 * 86400
_PACKAGE = Path(__file__).resolve().parent


def folder() -> Path | None:
    """Where records live, or None when the cache is turned off."""
    if os.environ.get("MESHOBS_CONFIG_CACHE", "").lower() in ("off", "0", "no", "false"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # no home (an arbitrary container uid): never a folder in the cwd
        return None
    return Path(base) / "meshobs" / "config"


def _sources() -> Iterator[Path]:
    for name in VALIDATING:
        path = _PACKAGE / name
        if path.is_dir():
            yield from sorted(path.glob("*.py"))
        else:
            yield path
    from importlib.util import find_spec

    # Their versions without importing them (pydantic is what a hit saves).
    for package, module in (("pydantic", "version.py"), ("yaml", "__init__.py")):
        spec = find_spec(package)
        if spec is not None and spec.origin:
            yield Path(spec.origin).parent / module


@functools.cache
def _code() -> bytes:
    """The validating code's digest (with Python's version), read once per process."""
    digest = hashlib.sha256(sys.version.encode() + b"\0")
    for source in _sources():
        try:
            digest.update(source.read_bytes())
        except OSError:
            digest.update(b"?" + str(source).encode())
    return digest.digest()


def key(text: bytes, path: Path) -> bytes:
    """What the record must have been made from: the file, its path and the validating code."""
    return hashlib.sha256(_code() + str(path).encode() + b"\0" + text).digest()


def _record_path(where: Path, path: Path) -> Path:
    # One record per config file and meshobs: a new version of the file replaces the old record,
    # while two installations (a venv per project, a checkout and its release) asking about the
    # same file keep one each, instead of replacing each other's on every run.
    name = hashlib.sha256(str(path.absolute()).encode() + b"\0" + _code()).hexdigest()[:32]
    return where / (name + ".marshal")


def _trusted(where: Path) -> bool:
    """Ours and writable by us only: a record is loaded as code-free data, but still as data
    that decides where meshobs connects."""
    try:
        st = where.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def read(text: bytes, path: Path) -> tuple[bytes, tuple[dict[str, Any], float, datetime | None, str] | None]:
    """The key, and the recorded (raw, window_s, time, mesh) when there is a valid record
    (no key when the cache is off: nothing will be written)."""
    where = folder()
    if where is None:
        return b"", None
    digest = key(text, path)
    if not _trusted(where):
        return digest, None
    try:
        blob = _record_path(where, path).read_bytes()
    except OSError:
        return digest, None
    head = _MAGIC + digest
    body = blob[len(head) + 32:]
    if not blob.startswith(head) or blob[len(head):len(head) + 32] != hashlib.sha256(body).digest():
        return digest, None  # another input, or damaged
    try:
        raw, window_s, at, mesh = marshal.loads(body)
        when = datetime.fromisoformat(at) if at is not None else None
    except (EOFError, ValueError, TypeError):
        return digest, None
    if not (isinstance(raw, dict) and isinstance(window_s, float) and isinstance(mesh, str)):
        return digest, None
    return digest, (raw, window_s, when, mesh)


def _pure(node: Any) -> bool:
    """No string that validation would read from the environment or the home folder."""
    if isinstance(node, str):
        return "$" not in node and not node.startswith("~")
    if isinstance(node, dict):
        return all(_pure(k) and _pure(v) for k, v in node.items())
    if isinstance(node, (list, tuple, set, frozenset)):
        return all(_pure(v) for v in node)
    return True


def _holds_credentials(raw: dict[str, Any]) -> bool:
    """A token, password or secret query value written in the file itself: not copied into the
    cache, so deleting or rotating it in the config leaves no copy behind (and a cache folder
    swept into a backup or a support tarball carries none)."""
    from .redact import config_secrets

    return bool(config_secrets(raw))


def write(digest: bytes, path: Path, parsed: Any, outcome: tuple[dict[str, Any], float, datetime | None, str]) \
        -> bool:
    """Record ``outcome`` (what validating ``parsed`` gave) under ``digest``; True when written.

    Never raises: a cache that cannot be written is a slower next run, not a failure."""
    where = folder()
    if where is None:
        return False
    try:  # first, so a read-only home (the drift CronJob's) costs one failed mkdir, nothing more
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return False
    if not _trusted(where) or not _pure(parsed) or _holds_credentials(outcome[0]):
        return False
    raw, window_s, at, mesh = outcome
    try:
        blob = marshal.dumps((raw, float(window_s), at.isoformat() if at is not None else None, mesh))
        again = marshal.loads(blob)
        when = datetime.fromisoformat(again[2]) if again[2] is not None else None
    except (ValueError, TypeError):
        return False  # something marshal cannot hold: not recorded
    if (again[0], again[1], repr(when), again[3]) != (raw, window_s, repr(at), mesh):
        return False  # would not read back the same
    try:
        fd, temp = tempfile.mkstemp(dir=where, prefix=".record-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + digest + hashlib.sha256(blob).digest() + blob)
            os.replace(temp, _record_path(where, path))  # atomic: a concurrent reader sees old or new
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        return False
    _prune(where)
    return True


def _prune(where: Path) -> None:
    """Drop records not read for :data:`KEEP_S` (a file per config path: demo workdirs and
    temporary configs would otherwise pile up). Only when writing, so a hit stays one read."""
    cutoff = time.time() - KEEP_S
    try:
        for entry in os.scandir(where):
            if entry.name.endswith(".marshal") and entry.stat().st_atime < cutoff and \
                    entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
    except OSError:
        pass
