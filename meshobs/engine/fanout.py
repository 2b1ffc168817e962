"""Work split over this machine's cores by ``fork``: ``diagnose --all`` on a big mesh.

    workers(jobs, count) -> int            how many processes (1: in this process only)
    fan_out(parts, work) -> list[result]   work(parts[0]) here, the other parts in forked children
    beside(part, work) -> (() -> result)   work(part) in a forked child while this process goes on
    Ends(n)                                items 0..n-1 taken from both ends by two processes

Why fork, and not a process pool: the work reads the whole snapshot (hundreds of MB at 5,000
services) and the caches built on it. A forked child shares all of it copy-on-write and nothing
of it is pickled; only each part's result travels back, pickled into a file in memory (stop 22
measured a half of a 5,000-service ``--all``'s reports at 6 MB, 0.09 s to pickle and 0.06 s to
read back). A pool would have to pickle the snapshot, or rebuild it, in every worker.

Fork is used only where it is safe, else everything runs in this process, as it always did:

* the platform is Linux: macOS has ``os.fork``, but its system frameworks (which ``requests``
  reaches through ``urllib``'s proxy lookup) are not safe to use in a forked child, which is why
  Python's own default there is ``spawn``; Windows has no fork;
* no other thread is alive, but those that declare they survive a fork: a child of a threaded
  process inherits locks held by threads that do not exist in it. The live collection's thread
  pools are shut down (and the CLI's warm-up threads joined) before diagnosing; what stays is the
  network deadline's reaper (meshobs.collectors.netbound), which releases its lock around a fork
  and starts afresh in the child. The dashboard's load process diagnoses with its worker threads
  alive, so it stays in-process. The run's deadline is a signal (``setitimer``) on the main
  thread, not a thread: see :mod:`meshobs.cutoff` for how it reaches the children;
* no OpenTelemetry tracer provider is configured: a child's spans would be lost with it.

The replay's loading (:mod:`meshobs.loadsplit`) forks the same way, before a streamed bundle is
read: each process reads the archive itself (its own file, no offset shared) and normalises its
share of the sources; the parent keeps the child's share's payloads until the child answers.

A child that fails, or dies (killed, out of memory), hands back nothing: its part is done here,
so the answer is the same, only later. Each child's check timings (``-v``), the run's
deadline lines it gave (:func:`meshobs.cutoff.cut`) and its peak memory come back with its part.
"""

from __future__ import annotations

import mmap
import os
import pickle
import resource
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from meshobs import cutoff, handback, telemetry

T = TypeVar("T")
R = TypeVar("R")

# Peak RSS (KiB, as getrusage says) of every child forked so far, 0 for one that handed nothing
# back (failed, died): benchmarks and tests read it and clear it. /usr/bin/time would count a
# child only once waited for, and as its maximum, not added to the parent's.
children_max_rss_kib: list[int] = []


_FORK_SAFE_PLATFORM = sys.platform.startswith("linux") and hasattr(os, "fork")
# At most this many processes: past it the parent's own part (what it builds before forking,
# the join) dominates, while every worker adds its copied pages (~90 MB at 5,000 services).
MAX_WORKERS = 4
CGROUP = Path("/sys/fs/cgroup")
# What a child's pickled result is written to its file in (the pickler's frames are ~64 KB).
_HANDBACK_BUFFER = 1 << 20


def cores() -> int:
    """The cores this process may use: its affinity (not the machine's count), lowered to its
    cgroup's CPU quota. A pod limited to one CPU on a 16-core node sees 16 in its affinity;
    forking 16 workers there would only be throttled, and multiply its memory towards the
    pod's limit (a drift CronJob killed for memory)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpus(CGROUP)
    return max(1, min(n, quota)) if quota is not None else n


def cgroup_cpus(root: Path) -> int | None:
    """The whole CPUs a cgroup's quota allows (rounded up), or None when it sets none or cannot
    be read: cgroup v2's ``cpu.max`` ("max 100000" or "150000 100000"), else v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (a quota of -1: none)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None  # "max": no quota
    return -(-q // p) if q > 0 and p > 0 else None


def workers(jobs: int | None, count: int, minimum: int) -> int:
    """How many processes share ``count`` items: ``jobs`` if given, else one per core when there
    are at least ``minimum`` items (below it a fork costs more than it saves); 1 where forking is
    not safe (see the module docstring)."""
    n = (min(cores(), MAX_WORKERS) if count >= minimum else 1) if jobs is None else jobs
    if n <= 1 or not _FORK_SAFE_PLATFORM or telemetry.tracing() or not _only_fork_safe_threads():
        return 1
    return min(n, count)


def _only_fork_safe_threads() -> bool:
    """No thread but this one is alive, or only threads that say they survive a fork
    (``survives_fork``: they take part in ``os.register_at_fork`` so that no lock of theirs is
    held at the fork, e.g. the network deadline's reaper, meshobs.collectors.netbound)."""
    me = threading.current_thread()
    return all(t is me or getattr(t, "survives_fork", False) for t in threading.enumerate())


def split(items: Sequence[T], n: int) -> list[list[T]]:
    """``n`` parts, dealt in turn (neighbours in sorted order often cost alike: a namespace's
    services share a shape), so that the parts take about the same time."""
    return [list(items[k::n]) for k in range(n)]


def join(parts: Sequence[Sequence[R]]) -> list[R]:
    """The items of :func:`split` parts back in their first order."""
    out: list[Any] = [None] * sum(len(p) for p in parts)
    for k, part in enumerate(parts):
        out[k::len(parts)] = part
    return out


def fan_out(parts: Sequence[T], work: Callable[[T], R]) -> list[R]:
    """``[work(p) for p in parts]``: the first part in this process, each other one in a forked
    child (its result pickled back), run at the same time. A child that fails or dies: its part
    is done here afterwards. Children still running when this process is interrupted (the
    deadline's hard stop, Ctrl-C) are killed and reaped."""
    children = _start(parts[1:], work)
    try:
        results: list[Any] = [work(parts[0])]
        results += [_result(children, k, part, work) for k, part in enumerate(parts[1:])]
        return results
    finally:
        _reap_all(children)


@contextmanager
def beside(part: T, work: Callable[[T], R]) -> Iterator[Callable[[], R]]:
    """``work(part)`` in a forked child while this process goes on with the ``with`` block, which
    calls what it is given for the result when it needs it (a child that failed or died: its
    part is done here then). A child still running when the block ends, by an error or
    interrupted, is killed and reaped. Where one process is all there is (:func:`workers`), the
    caller does not use this."""
    children = _start([part], work)
    try:
        yield lambda: _result(children, 0, part, work)
    finally:
        _reap_all(children)


class Ends:
    """Items ``0..n-1`` shared by this process and a child it forks after making this: one takes
    them from the front (:meth:`front`), the other from the back (:meth:`back`), each as it gets
    to them, until they meet. Neither knows in advance how long its other work or the other
    process takes (a loaded machine), so where they meet is decided as they go.

    The two ends live in a page shared across the fork (an anonymous ``MAP_SHARED`` mapping),
    each written by one process only. At most the one item where they meet can be taken by both
    (each read the other's end before the other moved it): the work must be pure, and the
    caller keeps either result. Every item is taken by one at least: each stops only when it
    sees the other's end at or past its own, and an end only moves on past items taken."""

    _FORMAT = "qq"  # front, back

    def __init__(self, n: int) -> None:
        self._shared = mmap.mmap(-1, mmap.PAGESIZE)
        struct.pack_into(self._FORMAT, self._shared, 0, 0, n)

    def front(self) -> Iterator[int]:
        """The items from the front, each taken (the front moved past it) before it is given."""
        while True:
            front, back = struct.unpack_from(self._FORMAT, self._shared, 0)
            if front >= back:
                return
            struct.pack_into("q", self._shared, 0, front + 1)
            yield front

    def back(self) -> Iterator[int]:
        """The items from the back, each taken (the back moved before it) before it is given."""
        while True:
            front, back = struct.unpack_from(self._FORMAT, self._shared, 0)
            if back - 1 < front:
                return
            struct.pack_into("q", self._shared, 8, back - 1)
            yield back - 1

    def close(self) -> None:
        self._shared.close()


def _start(parts: Sequence[T], work: Callable[[T], Any]) -> list[tuple[int, int]]:
    """A forked child doing ``work`` on each of ``parts`` (fewer when no process or memory is
    left: the rest are done here by :func:`_result`): (pid, the file it writes its result to)."""
    children: list[tuple[int, int]] = []  # (pid, the file it writes its result to), not yet waited for
    cutoff.share()
    handback.reducers()  # worked out once, here, not in every child
    parent = os.getpid()
    # The deadline's signal to the children is blocked until each has its handler (a child
    # signalled before would die of it, see cutoff.forward_to).
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {cutoff.WORKER_SIGNAL})
    try:
        for part in parts:
            try:
                handed = _handback_file()
            except OSError:  # no memory or file left for a child: the rest is done here
                break
            try:
                pid = os.fork()
            except OSError:  # no memory or process left for a child: the rest is done here
                os.close(handed)
                break
            if pid == 0:  # the child: never returns
                _child(part, work, handed, blocked, parent)
            children.append((pid, handed))
            cutoff.forward_to(pid)
    except BaseException:
        _reap_all(children)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return children


def _result(children: list[tuple[int, int]], k: int, part: T, work: Callable[[T], R]) -> R:
    """The result of the ``k``-th part: its child's (waited for, its timings and deadline lines
    taken in), or ``work(part)`` done here when the child failed, died or was never started."""
    got = None
    if k < len(children):
        pid, handed = children[k]
        got = _collect(pid, handed)
        children[k] = (0, -1)  # waited for
        cutoff.forget(pid)
    children_max_rss_kib.append(got[3] if got is not None else 0)
    if got is None:
        return work(part)  # the child failed or was never started: done here
    result, times, cut_lines, _rss = got
    for phase, rows in times.items():
        telemetry.add_times(phase, rows)
    cutoff.adopt(cut_lines)
    done: R = result
    return done


def _reap_all(children: list[tuple[int, int]]) -> None:
    for pid, handed in children:
        if pid:
            _reap(pid, handed)


def _handback_file() -> int:
    """A file in memory a child writes its whole result to before it exits, read once it has.
    Not a pipe: a pipe holds 64 KB, so a result of 17 MB (a 5,000-service replay's proxies,
    meshobs.loadsplit) crossed it in 270 turns of writer and reader, each waiting for a core;
    on a loaded 2-core machine that was 1.7 s for 3 MB."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("meshobs-fanout", os.MFD_CLOEXEC)
    import tempfile

    with tempfile.TemporaryFile() as file:  # deleted already; the descriptor keeps it
        return os.dup(file.fileno())


def _child(part: Any, work: Callable[[Any], Any], handed: int, mask: set[int | signal.Signals],
           parent: int) -> None:
    """In the forked child: do the part, write (result, timings, deadline lines, peak RSS)
    pickled to the file ``handed``, and leave without running anything of the parent's (``os._exit``: no
    atexit, no flushing of stdio buffers copied from the parent)."""
    code = 1
    try:
        _die_with_parent(parent)
        cutoff.as_worker()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        telemetry.reset()  # only this child's own timings go back
        result = work(part)
        times: dict[str, dict[str, list[float]]] = {}
        for t in telemetry.timings():
            times.setdefault(t.phase, {})[t.name] = [t.seconds, t.calls, t.failures]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # The model's dataclasses go back as calls of their constructors (meshobs.handback):
        # the same objects, read back in less time than pickle's field-by-field __setstate__.
        # Written as pickled, not pickled whole first: the JSON writer's half of a 5,000-service
        # document is 33 MB, whose fresh pages cost more than pickling it (stop 27: 0.05 s
        # against 0.02 s). A child failing halfway exits 1: the parent reads none of it.
        with os.fdopen(handed, "wb", buffering=_HANDBACK_BUFFER) as out:
            handback.dump((result, times, cutoff.lines(), rss), out)
        code = 0
    except BaseException:  # whatever went wrong, the parent does the part itself
        code = 1
    finally:
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    """Linux: this child is killed when the process that forked it ends (killed by a CronJob's
    limit, SIGTERM), rather than computing a part nobody will read."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the call: nobody will read the part
        os._exit(1)


def _collect(pid: int, handed: int) -> tuple[Any, dict[str, dict[str, list[float]]], dict[str, Any], int] | None:
    """A child's hand-back, or None when it failed or died (its exit status says)."""
    _pid, status = os.waitpid(pid, 0)
    done = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    size = os.fstat(handed).st_size if done else 0
    # Read where the child wrote it (the file's pages mapped), not copied into a buffer first;
    # the mapping holds the file open on its own.
    data = mmap.mmap(handed, size, prot=mmap.PROT_READ) if size else None
    os.close(handed)  # last: interrupted before, the caller's _reap closes it and kills
    if data is None:
        return None
    with data:
        try:
            got: tuple[Any, dict[str, dict[str, list[float]]], dict[str, Any], int] = pickle.loads(data)
        except Exception:  # a truncated hand-back is a failed child
            return None
    return got


def _reap(pid: int, handed: int) -> None:
    """Kill and wait for a child not collected (this process was interrupted)."""
    os.close(handed)
    cutoff.forget(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
