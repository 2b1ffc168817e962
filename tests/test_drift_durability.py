"""Drift state survives SIGKILL at any point of a write: no duplicate run numbers, no time
going backwards, history and counters agreeing. Real child processes, really killed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from meshobs.drift.state import FORMAT, StateStore
from tests.support.drift_writer import BOTH, drifts

REPO = Path(__file__).resolve().parents[1]


def _child(directory: Path, mode: str, ready: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if ready is not None:
        env["DRIFT_WRITER_READY"] = str(ready)
    return subprocess.Popen([sys.executable, "-m", "tests.support.drift_writer", str(directory), mode],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _assert_consistent(directory: Path) -> list[dict[str, object]]:
    """The invariants a reader relies on, after one clean run has tidied up."""
    StateStore(directory, history_limit=50).record(drifts(1), checked=BOTH)
    state = json.loads((directory / "state.json").read_text())
    assert state["format"] == FORMAT
    history = state["history"]
    runs = [h["run"] for h in history]
    assert runs == list(range(runs[0], runs[0] + len(runs))), runs  # no duplicate, no gap
    assert state["runs"] == runs[-1]
    times = [datetime.fromisoformat(h["run_at"].replace("Z", "+00:00")) for h in history]
    assert times == sorted(times), "a run's time went backwards"
    assert state["last_run"] == times[-1].timestamp()
    exported = [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]
    assert exported == history  # the export is rebuilt from the truth
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    return history


@pytest.mark.parametrize("mode", [f"die:{step}:{target}" for target in ("state.json", "history.jsonl")
                                  for step in ("fsync", "before", "after")])
def test_sigkill_at_each_step_of_a_write(tmp_path: Path, mode: str) -> None:
    store = StateStore(tmp_path, history_limit=50)
    for n in range(1, 4):
        store.record(drifts(n), checked=BOTH)
    child = _child(tmp_path, mode)
    assert child.wait(30) == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    history = _assert_consistent(tmp_path)
    killed_after_state = mode.startswith(("die:after:state", "die:fsync:history", "die:before:history",
                                          "die:after:history"))
    # The killed run counts exactly when its state.json was in place, and never twice.
    assert [h["run"] for h in history] == list(range(1, 6 if killed_after_state else 5))


def test_concurrent_writers_killed_at_random(tmp_path: Path) -> None:
    state, ready = tmp_path / "state", tmp_path / "ready"
    state.mkdir()
    ready.mkdir()
    rng = random.Random(15)
    writers = [_child(state, "loop", ready) for _ in range(3)]
    kills = 0
    # Kill only writers that are writing (they say so after their first run): on a loaded
    # machine a child can take seconds to import, and a kill then would test nothing.
    deadline = time.monotonic() + 90.0
    try:
        while kills < 12 and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.02, 0.1))
            i = rng.randrange(len(writers))
            if not (ready / str(writers[i].pid)).exists():
                continue
            writers[i].send_signal(signal.SIGKILL)
            writers[i].wait(10)
            kills += 1
            writers[i] = _child(state, "loop", ready)
    finally:
        for w in writers:
            w.send_signal(signal.SIGKILL)
            w.wait(10)
    assert kills >= 12
    history = _assert_consistent(state)
    assert len(history) > kills  # each killed writer had recorded at least one run


def test_time_never_goes_back(tmp_path: Path) -> None:
    """A run recorded after another (the lock's order) never carries an earlier time, whatever
    the clock said when it started (NTP step, a slow run overtaken by a fast one)."""
    store = StateStore(tmp_path)
    late = store.record(drifts(1), checked=BOTH, now=datetime.fromisoformat("2026-11-21T12:05:00+00:00"))
    early = store.record(drifts(2), checked=BOTH, now=datetime.fromisoformat("2026-11-21T12:00:00+00:00"))
    assert early.run_at == late.run_at and early.runs == late.runs + 1
    first_seen = {t.drift.id: t.first_seen for t in early.tracked}
    assert all(v >= "2026-11-21T12:05" for v in first_seen.values())
