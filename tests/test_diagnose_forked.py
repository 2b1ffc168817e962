"""``diagnose --all`` on several cores (meshobs.engine.fanout): forked workers give the same
reports as one process; a worker that dies or fails costs time, not answers; the run's deadline
reaches the workers; fork is not used where it is unsafe."""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from meshobs import cutoff, telemetry
from meshobs.catalogue import Category
from meshobs.checks.base import Analyzer, AnyCheck, Check, Finding, Settings, analyzer
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import MeshReport, checklist, diagnose_all, fanout
from meshobs.engine.runner import analyze, joined
from meshobs.model import MeshSnapshot, ServiceRef
from meshobs.render import json as json_render
from meshobs.render.json import render

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")

WHY = cutoff.deadline_reason(2)
CUT = f"could not check: {WHY}"


@pytest.fixture(autouse=True)
def _resumed() -> Iterator[None]:
    cutoff.resume()
    yield
    cutoff.resume()


@pytest.fixture(scope="module")
def snapshot() -> MeshSnapshot:
    # A generated mesh (its own names, faults and healthy services), big enough that each
    # worker's part calls into the others' (the walks below a service cross the split).
    return build_snapshot(load_demo("generated-90"), origin="demo:generated-90")


@pytest.fixture(scope="module")
def serial(snapshot: MeshSnapshot) -> str:
    return render(diagnose_all(snapshot, jobs=1))


def _in_children(action: Callable[[MeshSnapshot, ServiceRef], None], check_id: str = "") -> list[AnyCheck]:
    """The checklist, with one check (the first service check, or ``check_id``) calling
    ``action`` first when it runs in a forked worker (not in this test's own process)."""
    parent = os.getpid()
    target = check_id or next(c.id for c in checklist() if isinstance(c, Check))

    def wrap(c: Check) -> Check:
        @functools.wraps(c.run)
        def run(snap: MeshSnapshot, service: ServiceRef, settings: object) -> list[Finding]:
            if os.getpid() != parent:
                action(snap, service)
            return list(c.run(snap, service, settings))  # type: ignore[arg-type]

        return dataclasses.replace(c, run=run)

    return [wrap(c) if c.id == target and isinstance(c, Check) else c for c in checklist()]


def test_forked_workers_give_the_same_reports_as_one_process(snapshot: MeshSnapshot, serial: str) -> None:
    fanout.children_max_rss_kib.clear()
    forked = diagnose_all(snapshot, jobs=2)
    # One per phase: the analyzers from the back (beside the checks' indexes, then the analyzers
    # from the front), the checklists, the rankings.
    assert len(fanout.children_max_rss_kib) == 3 and min(fanout.children_max_rss_kib) > 0
    assert render(forked) == serial
    assert render(diagnose_all(snapshot, jobs=3)) == serial
    assert forked.status != "healthy" and any(r.findings for r in forked.reports)  # something to rank


def test_a_big_meshs_json_is_written_by_two_processes_with_the_same_text(
        snapshot: MeshSnapshot, serial: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mesh = diagnose_all(snapshot, jobs=1)
    monkeypatch.setattr(json_render, "FORK_MIN_SERVICES", 2)
    fanout.children_max_rss_kib.clear()
    assert render(mesh) == serial
    assert len(fanout.children_max_rss_kib) == 1 and fanout.children_max_rss_kib[0] > 0  # its half, beside


def test_a_json_writer_killed_leaves_its_half_to_the_parent(
        snapshot: MeshSnapshot, serial: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mesh = diagnose_all(snapshot, jobs=1)
    parent, service = os.getpid(), json_render._service_text

    def die_in_child(report: object, lines: object) -> object:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return service(report, lines)  # type: ignore[arg-type]

    monkeypatch.setattr(json_render, "FORK_MIN_SERVICES", 2)
    monkeypatch.setattr(json_render, "_service_text", die_in_child)
    fanout.children_max_rss_kib.clear()
    assert render(mesh) == serial
    assert fanout.children_max_rss_kib == [0]  # the child handed nothing back


def test_each_checks_time_is_counted_once_whatever_the_process(snapshot: MeshSnapshot) -> None:
    def calls() -> dict[str, int]:
        return {t.name: t.calls for t in telemetry.timings() if t.phase == "check"}

    telemetry.reset()
    diagnose_all(snapshot, jobs=1)
    one = calls()
    telemetry.reset()
    diagnose_all(snapshot, jobs=2)
    assert calls() == one and sum(one.values()) > len(snapshot.services)
    telemetry.reset()


def test_a_worker_killed_mid_run_leaves_its_part_to_the_parent(snapshot: MeshSnapshot, serial: str) -> None:
    def die(_snap: MeshSnapshot, _service: ServiceRef) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    checks = _in_children(die)
    fanout.children_max_rss_kib.clear()
    forked = render(diagnose_all(snapshot, checks=checks, jobs=2))
    assert fanout.children_max_rss_kib[1] == 0  # phase 1's worker handed nothing back
    assert forked == serial  # the wrapped check is the same check


def test_the_analyzers_child_killed_leaves_the_analyzers_to_the_parent(snapshot: MeshSnapshot, serial: str) -> None:
    """The child forked beside the checks' indexes takes analyzers from the last one back: killed
    on the first it runs, the parent runs every analyzer it did not take. (The parent's first
    service check waits a little, so the child has taken one before the parent could take all.)"""
    parent = os.getpid()

    def dying(a: Analyzer) -> Analyzer:
        def run(*args: Any, **kwargs: Any) -> Iterable[Finding]:
            if os.getpid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            return a.run(*args, **kwargs)

        return dataclasses.replace(a, run=run)

    waited: list[bool] = []

    def slow_in_parent(c: Check) -> Check:
        def run(snap: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
            if os.getpid() == parent and not waited:
                waited.append(True)
                time.sleep(0.3)
            return c.run(snap, service, settings)

        return dataclasses.replace(c, run=run)

    checks = [dying(c) if isinstance(c, Analyzer) else slow_in_parent(c) for c in checklist()]
    fanout.children_max_rss_kib.clear()
    assert render(diagnose_all(snapshot, checks=checks, jobs=2)) == serial
    assert fanout.children_max_rss_kib[0] == 0  # the analyzers' child handed nothing back


def test_each_analyzers_own_run_joined_is_the_run_of_all() -> None:
    """What prepare's two processes join (each analyzer run alone, in checklist order) is one run
    of all: the same results, findings (mesh-level, by service, an analyzer's crash), and order
    of the services they are filed under."""
    from tests.test_engine_analyzers import mesh

    @analyzer("test.broken", Category.CONFIG, ("VirtualService",), ())
    def broken(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
        """Always raises."""
        raise RuntimeError("bad spec")

    snap = mesh()
    analyzers = [c for c in checklist() if isinstance(c, Analyzer)]
    analyzers.insert(len(analyzers) // 2, broken)
    whole = analyze(snap, Settings(), analyzers)
    parts = joined(analyze(snap, Settings(), [a]) for a in analyzers)
    assert parts == whole and list(parts.by_service) == list(whole.by_service)
    assert list(parts.results) == list(whole.results)
    assert len(whole.mesh_level) > 2 and whole.by_service  # something to join


def test_items_taken_from_both_ends_are_each_taken_once_in_one_process() -> None:
    ends = fanout.Ends(5)
    front, back = ends.front(), ends.back()
    taken = [next(front), next(back), next(back), next(front), next(front)]
    assert taken == [0, 4, 3, 1, 2]
    assert list(front) == [] and list(back) == []
    ends.close()
    assert list(_taken(fanout.Ends(0))) == []


def _taken(ends: fanout.Ends) -> Iterator[int]:
    yield from ends.front()
    yield from ends.back()


def test_two_processes_taking_from_both_ends_take_every_item() -> None:
    """A forked child takes from the back while this process takes from the front, each at its
    own pace: every item is taken, by one of them except at most the one where they met."""
    ends = fanout.Ends(40)

    def take(from_front: bool) -> list[int]:
        out = []
        for k in (ends.front() if from_front else ends.back()):
            out.append(k)
            time.sleep(0.001 if from_front else 0.003)
        return out

    mine, theirs = fanout.fan_out([True, False], take)
    ends.close()
    assert mine and theirs and sorted(set(mine) | set(theirs)) == list(range(40))
    assert len(set(mine) & set(theirs)) <= 1
    assert mine == sorted(mine) and theirs == sorted(theirs, reverse=True)


def test_a_worker_that_fails_leaves_its_part_to_the_parent(snapshot: MeshSnapshot, serial: str) -> None:
    def leave(_snap: MeshSnapshot, _service: ServiceRef) -> None:
        raise SystemExit(4)  # not a check's failure (MSH0001): the worker itself gives up

    fanout.children_max_rss_kib.clear()
    assert render(diagnose_all(snapshot, checks=_in_children(leave), jobs=2)) == serial
    assert fanout.children_max_rss_kib[1] == 0


def test_the_runs_deadline_reaches_the_workers(snapshot: MeshSnapshot, tmp_path: Path) -> None:
    """The CLI's timer fires in the parent only (a timer is not inherited by fork): the reason
    travels to the workers, their checks not yet run say "could not check", and the run ends
    long before the slow checks would have.

    The parent's alarm is raised by the worker itself once it has judged a few services, not by
    a wall-clock timer: on a loaded machine a fixed timer could fire before the worker judged
    anything, or the parent's own part outlast it. Each slow check leaves a mark in a file, so
    how many ran is counted, not timed."""
    marks = tmp_path / "ran"
    raise_after = 3

    def slow(_snap: MeshSnapshot, _service: ServiceRef) -> None:
        with marks.open("a") as f:
            f.write(".")
        if marks.stat().st_size == raise_after:  # this worker's third service: the deadline
            os.kill(os.getppid(), signal.SIGALRM)
        time.sleep(0.05)

    services = [s.ref for s in sorted(snapshot.services, key=lambda s: s.ref)]

    def fired(_signum: int, _frame: object) -> None:
        cutoff.stop(WHY)

    before = signal.signal(signal.SIGALRM, fired)
    try:
        mesh = diagnose_all(snapshot, checks=_in_children(slow), jobs=2)
    finally:
        signal.signal(signal.SIGALRM, before)
    worker_part = set(fanout.split(services, 2)[1])
    cut = {r.service for r in mesh.reports if any(c.reason == CUT for c in r.checks)}
    assert cut & worker_part, "no report of the worker's part was cut"
    judged_there = {r.service for r in mesh.reports if r.service in worker_part and r.service not in cut}
    assert len(judged_there) >= raise_after - 1, "the worker judged nothing before the deadline"
    assert cutoff.cut()  # the CLI says the run was cut
    assert all(r.status != "healthy" for r in mesh.reports if r.service in cut)
    # The worker stopped running its checks (it would have run one per service of its part).
    ran = marks.stat().st_size
    assert raise_after <= ran < len(worker_part), (ran, len(worker_part))
    assert isinstance(mesh, MeshReport)


def test_no_fork_where_it_is_unsafe_or_does_not_pay() -> None:
    assert fanout.workers(1, 5000, 300) == 1
    assert fanout.workers(None, 10, 300) == 1  # a small mesh: the fork costs more than it saves
    assert fanout.workers(2, 5000, 300) == 2
    assert fanout.workers(4, 3, 300) == 3  # never more processes than services
    held = threading.Event()
    alive = threading.Thread(target=held.wait)
    alive.start()
    try:
        assert fanout.workers(2, 5000, 300) == 1  # a thread alive: its locks would be copied held
    finally:
        held.set()
        alive.join()


def test_parts_are_dealt_in_turn_and_joined_in_order() -> None:
    items = list(range(11))
    parts = fanout.split(items, 3)
    assert [len(p) for p in parts] == [4, 4, 3]
    assert fanout.join(parts) == items


def test_the_network_deadlines_reaper_does_not_stop_a_fork() -> None:
    """After a live collection the reaper thread of meshobs.collectors.netbound is still alive:
    it declares it survives a fork, and a child that needs one starts its own."""
    from meshobs.collectors import netbound

    with netbound.watch(30):
        pass
    assert any(t.name == "meshobs-reaper" for t in threading.enumerate())
    assert fanout.workers(2, 5000, 300) == 2

    def work(seconds: float) -> bool:
        with netbound.watch(seconds) as w:
            return not w.expired and w.remaining_s() > 0

    assert fanout.fan_out([30.0, 30.0], work) == [True, True]


@pytest.mark.parametrize(("files", "cpus"), [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "100000 100000\n"}, 1),
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
    ({"cpu.max": "garbage\n"}, None),
    ({}, None),
])
def test_a_cgroup_cpu_quota_bounds_the_workers(tmp_path: Path, files: dict[str, str], cpus: int | None) -> None:
    """A pod limited to one CPU on a many-core node forks no worker (its affinity says the node's
    cores; each worker would only be throttled and add its copied pages towards the memory limit)."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert fanout.cgroup_cpus(tmp_path) == cpus


def test_one_cpu_of_quota_means_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    monkeypatch.setattr(fanout, "CGROUP", tmp_path)
    assert fanout.cores() == 1
    assert fanout.workers(None, 5000, 500) == 1


def test_no_fork_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has os.fork, but its system frameworks are not safe in a forked child (Python's own
    default there is spawn): everything stays in this process."""
    monkeypatch.setattr(fanout, "_FORK_SAFE_PLATFORM", False)
    assert fanout.workers(None, 5000, 500) == 1
    assert fanout.workers(2, 5000, 500) == 1
