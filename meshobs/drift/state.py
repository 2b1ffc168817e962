"""Drift history in a state directory: what drifted since when, new / ongoing / resolved.

Files (both replaced atomically: written to a temporary file in the same directory, flushed,
fsynced, then ``os.replace``d, so a crash leaves the old or the new version, never half of one):

* ``state.json``: the drift currently active (by stable id, with ``first_seen``), the run and
  error counters and the last run / last success times (the metrics are derived from it);
* ``history.jsonl``: one JSON line per run (the newest ``limit`` runs are kept).

A run holds an exclusive ``fcntl`` lock on ``.lock`` from reading to writing, so two overlapping
runs (a slow cron job and the next one) are serialised instead of losing each other's updates.
Drift of a layer pair that this run could not check stays active (status ``unchecked``): it is
neither resolved nor forgotten because a source was down.
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
from datetime import datetime
from pathlib import Path
from typing import Any

from meshobs.raw import iso

from .compare import Drift

FORMAT = "meshobs-drift-state/1"
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
    """Replace ``path`` with ``text`` atomically (same-directory temp file + ``os.replace``)."""
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
        """The current state (an empty one when there is none or it is unreadable)."""
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self._empty()
        except (OSError, json.JSONDecodeError):
            # Keep the unreadable file for a person to look at; start over rather than fail forever.
            with contextlib.suppress(OSError):
                os.replace(self.state_path, self.state_path.with_suffix(f".corrupt-{int(time.time())}"))
            return self._empty()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return self._empty()
        return data

    def history(self) -> list[dict[str, Any]]:
        """Every recorded run, oldest first (unparsable lines skipped)."""
        try:
            lines = self.history_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {"format": FORMAT, "runs": 0, "check_errors_total": 0, "last_run": None,
                "last_success": None, "active": {}}

    def record(self, drifts: list[Drift] | None, *, checked: set[str], now: datetime,
               error: str | None = None, incomplete: bool = False) -> RunRecord:
        """Record one run: ``drifts`` found over the ``checked`` layer pairs, or an ``error``
        (nothing could be checked). ``incomplete``: some configured layer could not be read; the
        run counts as a check error and not as a success, but what was checked is recorded.

        Ignored drift is not tracked. Returns each drift with its status and first-seen time.
        """
        stamp = iso(now)
        with self.locked():
            state = self.read()
            state["runs"] = int(state.get("runs", 0)) + 1
            state["last_run"] = now.timestamp()
            active: dict[str, Any] = dict(state.get("active") or {})
            record = RunRecord(run_at=now, ok=error is None, error=error, runs=state["runs"])
            if error is not None:
                state["check_errors_total"] = int(state.get("check_errors_total", 0)) + 1
                record.unchecked = [dict(v, id=k, status=UNCHECKED) for k, v in sorted(active.items())]
                line: dict[str, Any] = {"run_at": stamp, "ok": False, "error": error}
            else:
                if incomplete:
                    state["check_errors_total"] = int(state.get("check_errors_total", 0)) + 1
                else:
                    state["last_success"] = now.timestamp()
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
                    if old.get("layers") in checked:
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
            history = self.history()[-(self.history_limit - 1):] if self.history_limit > 1 else []
            history.append(line)
            atomic_write(self.history_path, "".join(json.dumps(h, sort_keys=True) + "\n" for h in history))
            atomic_write(self.state_path, json.dumps(state, indent=1, sort_keys=True) + "\n")
        return record
