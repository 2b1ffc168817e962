"""Drift history in a state directory: what drifted since when, new / ongoing / resolved.

One file is the truth: ``state.json`` holds the drift currently active (by stable id, with
``first_seen``), the run and error counters, the last run / last success times (the metrics are
derived from it) and the history of the newest ``limit`` runs. It is replaced atomically
(written to a temporary file in the same directory, flushed, fsynced, ``os.replace``d, the
directory fsynced), so a crash or a SIGKILL at any point leaves the previous run or the new one,
never half of one and never a history that disagrees with the counters.

``history.jsonl`` (one JSON line per run) is an export of that history for people and log
shippers, rewritten after each run; if a run dies between the two writes, the next run rewrites
it from ``state.json``. It is read back only when ``state.json`` is unreadable.

A run holds an exclusive ``fcntl`` lock on ``.lock`` from reading to writing, so two overlapping
runs (a slow cron job and the next one) are serialised instead of losing each other's updates,
and takes its timestamp under that lock, never earlier than the previous run's: run numbers
and times only go forward. Drift of a layer pair that this run could not check, or checked
without part of a layer (a proxy that could not be read), stays active (status ``unchecked``):
it is neither resolved nor forgotten because a source was down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshobs.raw import iso, utc_now

from .compare import Drift

FORMAT = "meshobs-drift-state/2"
FORMATS = ("meshobs-drift-state/1", FORMAT)  # /1 kept its history in history.jsonl only
NEW, ONGOING, RESOLVED, UNCHECKED = "new", "ongoing", "resolved", "unchecked"


class StateError(Exception):
    """The state directory cannot be used (permissions, a lock held for too long)."""


@dataclass
class Tracked:
    """A drift with its history."""

    drift: Drift
    status: str
    first_seen: str


@dataclass
class RunRecord:
    """What one run saw, as recorded."""

    run_at: datetime
    ok: bool
    tracked: list[Tracked] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)  # previous entries now gone
    unchecked: list[dict[str, Any]] = field(default_factory=list)  # carried over, pair not checked
    runs: int = 0
    check_errors_total: int = 0
    last_success: float | None = None
    error: str | None = None


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (same-directory temp file + ``os.replace``),
    durably (the file and then its directory are fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut only then
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _entry(d: Drift, first_seen: str, last_seen: str) -> dict[str, Any]:
    r = d.resource
    return {"first_seen": first_seen, "last_seen": last_seen, "layers": d.layers, "path": d.path,
            "resource": {"mesh": r.mesh, "kind": r.kind, "namespace": r.namespace, "name": r.name},
            "severity": d.severity.value, "category": d.category}


class StateStore:
    """The state directory of one drift job (one per intended tree and cluster)."""

    def __init__(self, directory: str | Path, *, history_limit: int = 2000, lock_timeout_s: float = 120.0):
        self.dir = Path(directory)
        self.state_path = self.dir / "state.json"
        self.history_path = self.dir / "history.jsonl"
        self.history_limit = history_limit
        self.lock_timeout_s = lock_timeout_s

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's exclusive lock (waits up to ``lock_timeout_s``)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"cannot use state directory {self.dir} ({exc.strerror}); "
                             "check --state-dir and its permissions") from None
        try:
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StateError(f"{self.dir}/.lock held by another run for over "
                                         f"{self.lock_timeout_s:.0f}s; is a drift run stuck?") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> dict[str, Any]:
        """The current state, history included (an empty one when there is none; rebuilt from
        ``history.jsonl`` when ``state.json`` is unreadable, which is then set aside)."""
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self._recovered()
        except (OSError, ValueError, RecursionError):
            # Keep the unreadable file for a person to look at; start over rather than fail forever.
            with contextlib.suppress(OSError):
                os.replace(self.state_path, self.state_path.with_suffix(f".corrupt-{int(time.time())}"))
            return self._recovered()
        if not isinstance(data, dict) or data.get("format") not in FORMATS:
            return self._recovered()
        if data.get("format") != FORMAT or not isinstance(data.get("history"), list):
            data["history"] = self._exported()  # a /1 state: its history lived in history.jsonl
            data["format"] = FORMAT
        return data

    def history(self) -> list[dict[str, Any]]:
        """Every recorded run, oldest first."""
        return list(self.read()["history"])

    def _exported(self) -> list[dict[str, Any]]:
        """history.jsonl, as far as it parses."""
        try:
            lines = self.history_path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError, RecursionError):
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("run"), int):
                    out.append(entry)
        return out[-self.history_limit:] if self.history_limit > 0 else []

    def _recovered(self) -> dict[str, Any]:
        state = self._empty()
        history = self._exported()
        if history:  # keep counting where the export stopped: run numbers never repeat
            state["runs"] = max(h["run"] for h in history)
            state["history"] = history
        return state

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {"format": FORMAT, "runs": 0, "check_errors_total": 0, "last_run": None,
                "last_success": None, "active": {}, "history": []}

    def _clean_temporaries(self) -> None:
        # Left by a run killed mid-write; under the lock no other run is writing one.
        for name in (self.state_path.name, self.history_path.name):
            for tmp in self.dir.glob(f".{name}.*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def record(self, drifts: list[Drift] | None, *, checked: set[str], now: datetime | None = None,
               error: str | None = None, incomplete: bool = False,
               partly: set[str] | frozenset[str] = frozenset()) -> RunRecord:
        """Record one run: ``drifts`` found over the ``checked`` layer pairs, or an ``error``
        (nothing could be checked). ``incomplete``: some configured layer could not be read; the
        run counts as a check error and not as a success, but what was checked is recorded.
        ``partly``: checked pairs compared without part of a layer (Envoy proxies, a live source,
        resources that could not be read): an earlier drift of theirs not found again may sit in
        the part left out, so it is unchecked, never resolved.

        The run's time is taken under the lock (``now``, when given, is the earliest it can be)
        and is never before the previous run's. Ignored drift is not tracked. Returns each drift
        with its status and first-seen time.
        """
        with self.locked():
            self._clean_temporaries()
            state = self.read()
            previous = state.get("last_run")
            when = now if now is not None else utc_now()
            if isinstance(previous, int | float) and when.timestamp() < previous:
                when = datetime.fromtimestamp(previous, UTC)  # a clock step back, or a late writer
            stamp = iso(when)
            state["runs"] = int(state.get("runs", 0)) + 1
            state["last_run"] = when.timestamp()
            active: dict[str, Any] = dict(state.get("active") or {})
            record = RunRecord(run_at=when, ok=error is None, error=error, runs=state["runs"])
            if error is not None:
                state["check_errors_total"] = int(state.get("check_errors_total", 0)) + 1
                record.unchecked = [dict(v, id=k, status=UNCHECKED) for k, v in sorted(active.items())]
                line: dict[str, Any] = {"run_at": stamp, "ok": False, "error": error}
            else:
                if incomplete:
                    state["check_errors_total"] = int(state.get("check_errors_total", 0)) + 1
                else:
                    state["last_success"] = when.timestamp()
                current: dict[str, Any] = {}
                for d in drifts or []:
                    if d.ignored is not None or d.id in current:
                        continue
                    before = active.get(d.id)
                    first = before["first_seen"] if before else stamp
                    current[d.id] = _entry(d, first, stamp)
                    record.tracked.append(Tracked(d, ONGOING if before else NEW, first))
                for key, old in sorted(active.items()):
                    if key in current:
                        continue
                    if old.get("layers") in checked and old.get("layers") not in partly:
                        record.resolved.append(dict(old, id=key, status=RESOLVED, resolved_at=stamp))
                    else:
                        current[key] = old
                        record.unchecked.append(dict(old, id=key, status=UNCHECKED))
                active = current
                line = {"run_at": stamp, "ok": True, "checked": sorted(checked),
                        "new": [t.drift.id for t in record.tracked if t.status == NEW],
                        "ongoing": [t.drift.id for t in record.tracked if t.status == ONGOING],
                        "resolved": [r["id"] for r in record.resolved],
                        "unchecked": [r["id"] for r in record.unchecked]}
            state["active"] = active
            record.check_errors_total = int(state.get("check_errors_total", 0))
            record.last_success = state.get("last_success")
            line["run"] = state["runs"]
            history = list(state.get("history") or [])
            history = (history[-(self.history_limit - 1):] if self.history_limit > 1 else []) + [line]
            state["history"] = history
            # The one write that counts; the export after it is rebuilt by the next run if lost.
            atomic_write(self.state_path, json.dumps(state, indent=1, sort_keys=True) + "\n")
            atomic_write(self.history_path, "".join(json.dumps(h, sort_keys=True) + "\n" for h in history))
        return record
