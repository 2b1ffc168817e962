"""Drift history: new -> ongoing -> resolved, unchecked pairs kept, concurrent runs serialised."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meshobs.drift.compare import INTENDED_LIVE, LIVE_EFFECTIVE, Drift, Severity
from meshobs.drift.normalise import ResourceId
from meshobs.drift.state import NEW, ONGOING, RESOLVED, UNCHECKED, StateStore

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
VS = ResourceId("istio", "VirtualService", "shop", "reviews")
BOTH = {INTENDED_LIVE, LIVE_EFFECTIVE}


def _drift(path: str, layers: str = INTENDED_LIVE, right: int = 50) -> Drift:
    return Drift(VS, layers, path, 90, right, "weight", Severity.ERROR)


def test_new_ongoing_resolved_over_three_runs(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    weight, retries = _drift("spec.http[0].route[a].weight"), _drift("spec.http[0].retries.attempts")
    r1 = store.record([weight], checked=BOTH, now=T0)
    assert [(t.drift.id, t.status, t.first_seen) for t in r1.tracked] == [
        (weight.id, NEW, "2026-11-21T12:00:00.000000Z")]
    # The value changed but the field is the same: still the same drift, first seen at run 1.
    r2 = store.record([_drift(weight.path, right=60), retries], checked=BOTH, now=T0 + timedelta(minutes=5))
    assert {t.drift.id: (t.status, t.first_seen[:16]) for t in r2.tracked} == {
        weight.id: (ONGOING, "2026-11-21T12:00"), retries.id: (NEW, "2026-11-21T12:05")}
    r3 = store.record([retries], checked=BOTH, now=T0 + timedelta(minutes=10))
    assert [(t.drift.id, t.status) for t in r3.tracked] == [(retries.id, ONGOING)]
    assert [(r["id"], r["status"], r["first_seen"][:16]) for r in r3.resolved] == [
        (weight.id, RESOLVED, "2026-11-21T12:00")]
    history = store.history()
    assert [(h["run"], h["new"], h["ongoing"], h["resolved"]) for h in history] == [
        (1, [weight.id], [], []), (2, [retries.id], [weight.id], []), (3, [], [retries.id], [weight.id])]
    state = store.read()
    assert set(state["active"]) == {retries.id} and state["runs"] == 3 and state["check_errors_total"] == 0


def test_failed_or_partial_runs_resolve_nothing_they_did_not_check(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    eff = _drift("spec.http[0].route[a].weight", LIVE_EFFECTIVE)
    store.record([eff], checked=BOTH, now=T0)
    failed = store.record(None, checked=set(), now=T0 + timedelta(minutes=1), error="kubernetes unreachable")
    assert not failed.ok and [u["id"] for u in failed.unchecked] == [eff.id] and failed.check_errors_total == 1
    partial = store.record([], checked={INTENDED_LIVE}, now=T0 + timedelta(minutes=2), incomplete=True)
    assert partial.resolved == [] and [u["status"] for u in partial.unchecked] == [UNCHECKED]
    assert partial.check_errors_total == 2 and partial.last_success == T0.timestamp()
    done = store.record([], checked=BOTH, now=T0 + timedelta(minutes=3))
    assert [r["id"] for r in done.resolved] == [eff.id] and done.last_success == (T0 + timedelta(minutes=3)).timestamp()


def test_ignored_drift_is_not_tracked(tmp_path: Path) -> None:
    rec = StateStore(tmp_path).record([_drift("labels.x").with_ignore("controller")], checked=BOTH, now=T0)
    assert rec.tracked == [] and StateStore(tmp_path).read()["active"] == {}


def test_corrupt_state_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{half", encoding="utf-8")
    rec = StateStore(tmp_path).record([_drift("p")], checked=BOTH, now=T0)
    assert rec.runs == 1 and rec.tracked[0].status == NEW
    assert list(tmp_path.glob("state.corrupt-*"))


def _worker(directory: str, n: int, start: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    start.wait()
    store = StateStore(directory)
    for i in range(n):
        store.record([_drift("spec.http[0].route[a].weight")], checked=BOTH,
                     now=T0 + timedelta(seconds=i))


def test_concurrent_runs_leave_a_consistent_history(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), 10, start)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = StateStore(tmp_path)
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == 40 and all(json.loads(line) for line in lines)
    history = store.history()
    # Runs were serialised: numbered 1..40 in order, exactly one saw the drift as new.
    assert [h["run"] for h in history] == list(range(1, 41))
    assert sum(len(h["new"]) for h in history) == 1 and sum(len(h["ongoing"]) for h in history) == 39
    assert store.read()["runs"] == 40
    assert not list(tmp_path.glob(".*.tmp"))


def test_history_is_bounded(tmp_path: Path) -> None:
    store = StateStore(tmp_path, history_limit=3)
    for i in range(5):
        store.record([], checked=BOTH, now=T0 + timedelta(minutes=i))
    assert [h["run"] for h in store.history()] == [3, 4, 5]


def test_a_pair_checked_in_part_resolves_nothing(tmp_path: Path) -> None:
    """A pair compared without some proxies (or resources) cannot tell an earlier drift gone
    from one in the part it did not read: unchecked, still active, not counted resolved."""
    store = StateStore(tmp_path)
    eff, cfg = _drift("spec.http[0].route[a].weight", LIVE_EFFECTIVE), _drift("spec.http[0].timeout")
    store.record([eff, cfg], checked=BOTH, now=T0)
    part = store.record([], checked=BOTH, now=T0 + timedelta(minutes=1), incomplete=True, partly={LIVE_EFFECTIVE})
    assert [r["id"] for r in part.resolved] == [cfg.id]
    assert [(u["id"], u["status"]) for u in part.unchecked] == [(eff.id, UNCHECKED)]
    assert set(store.read()["active"]) == {eff.id} and store.history()[-1]["resolved"] == [cfg.id]
    whole = store.record([], checked=BOTH, now=T0 + timedelta(minutes=2))
    assert [r["id"] for r in whole.resolved] == [eff.id]
