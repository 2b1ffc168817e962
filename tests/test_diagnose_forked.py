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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshobs import cutoff, telemetry
from meshobs.checks.base import AnyCheck, Check, Finding
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import MeshReport, checklist, diagnose_all, fanout
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
    # One per phase: the analyzers (beside the checks' indexes), the checklists, the rankings.
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
