"""Total time bounds for network calls made through any urllib3-based client.

``requests``, the kubernetes client and botocore all read sockets through urllib3, whose
timeouts apply to each read: a server that trickles one byte every two seconds never trips a
five-second read timeout and holds the caller forever. This module bounds the *whole* call:

    install(pool_manager)            # once per client: its connections become watchable
    with watch(seconds) as w:        # every connection this thread uses inside the block ...
        client.call(...)             # ... is shut down when the time is up
    if w.expired: ...                # the call was cut off (it raised whatever its library raises)

One daemon thread (the reaper) shuts down the sockets of expired watches, which wakes any read
blocked on them; a connection taken after expiry fails at once with :class:`DeadlineExceeded`.
The process-wide :class:`RunLimits` (the run's deadline and the response size cap, set by
:func:`meshobs.collect.collect`) bound every watch further, so code that never heard of the
run's ``--timeout`` still stops on time.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from meshobs.durations import seconds

DEFAULT_MAX_RESPONSE_MB = 64.0
DEFAULT_RUN_TIMEOUT_S = 120.0


class DeadlineExceeded(Exception):
    """A connection was requested after its watch expired."""


@dataclass(frozen=True)
class RunLimits:
    """What bounds a whole run: a ``time.monotonic()`` deadline and a per-response size cap."""

    deadline: float | None = None
    max_bytes: int = int(DEFAULT_MAX_RESPONSE_MB * 1024 * 1024)

    def remaining_s(self) -> float:
        return float("inf") if self.deadline is None else max(0.0, self.deadline - time.monotonic())


_run = RunLimits()
_run_lock = threading.Lock()


def current_run() -> RunLimits:
    """The limits of the run in progress (no deadline, the default cap outside a run)."""
    return _run


@contextmanager
def run_limits(limits: RunLimits) -> Iterator[RunLimits]:
    """Make ``limits`` the process's run limits inside the block (one run at a time)."""
    global _run
    with _run_lock:
        previous, _run = _run, limits
    try:
        yield limits
    finally:
        with _run_lock:
            _run = previous


def budget_s(timeout_s: float) -> float:
    """``timeout_s`` cut to what is left of the run."""
    return max(0.0, min(timeout_s, current_run().remaining_s()))


# -- the watch --------------------------------------------------------------------------------

class Watch:
    """Connections and sockets one thread uses for one bounded call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + max(0.0, seconds)
        self.expired = False
        self._lock = threading.Lock()
        self._conns: list[Any] = []  # urllib3 connections (their ``sock`` may change)
        self._socks: list[socket.socket] = []
        self._closers: list[Callable[[], None]] = []
        self._done = False

    def adopt_conn(self, conn: Any) -> None:
        with self._lock:
            if not self._done:
                self._conns.append(conn)
            expired = self.expired
        if expired:
            shutdown_socket(getattr(conn, "sock", None))
            raise DeadlineExceeded(f"no time left ({seconds(self.seconds)} s)")

    def adopt_socket(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._done:
                self._socks.append(sock)
            expired = self.expired
        if expired:
            shutdown_socket(sock)
            raise DeadlineExceeded(f"no time left ({seconds(self.seconds)} s)")

    def on_expiry(self, close: Callable[[], None]) -> None:
        """Call ``close`` when the time is up (for sockets urllib3 does not manage)."""
        with self._lock:
            self._closers.append(close)
            expired = self.expired
        if expired:
            close()

    def remaining_s(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def expire(self) -> None:
        """Shut down everything registered (called by the reaper, or by tests)."""
        with self._lock:
            if self._done or self.expired:
                return
            self.expired = True
            conns, socks, closers = list(self._conns), list(self._socks), list(self._closers)
        for conn in conns:
            shutdown_socket(getattr(conn, "sock", None))
        for sock in socks:
            shutdown_socket(sock)
        for close in closers:
            with contextlib.suppress(Exception):  # a closer on a dead socket has nothing left to do
                close()

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._conns.clear()
            self._socks.clear()
            self._closers.clear()


def shutdown_socket(sock: Any) -> None:
    """Wake any thread blocked reading ``sock``: the read sees end-of-file."""
    if sock is None:
        return
    # The plain socket's shutdown, also for TLS sockets: SSLSocket.shutdown would drop its SSL
    # object under a reader in another thread. Already closed, or not a socket: nothing to do.
    with contextlib.suppress(OSError, TypeError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _ReaperThread(threading.Thread):
    # A process may fork while this thread is alive (meshobs.engine.fanout: --all after a live
    # collection): the reaper's only lock is held by no one at the fork (see _Reaper), and the
    # child starts without watches, so a thread of its own is made if it ever needs one.
    survives_fork = True


class _Reaper:
    """One daemon thread that expires watches at their deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def before_fork(self) -> None:
        self._cond.acquire()  # not held by the reaper thread while the process is copied

    def after_fork_in_parent(self) -> None:
        self._cond.release()

    def after_fork_in_child(self) -> None:
        # The thread does not exist in the child, nor do the parent's requests it watched.
        self._heap, self._cond, self._thread = [], threading.Condition(), None

    def add(self, w: Watch) -> None:
        with self._cond:
            earliest = not self._heap or w.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (w.deadline, next(self._seq), w))
            if self._thread is None or not self._thread.is_alive():
                self._thread = _ReaperThread(target=self._run, name="meshobs-reaper", daemon=True)
                self._thread.start()
            if earliest:
                # The reaper sleeps until the earliest deadline; a later one changes nothing for
                # it. Waking it for every request cost a thread switch each (1,262 of them).
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _n, w = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            if not w._done:
                w.expire()


_reaper = _Reaper()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_reaper.before_fork, after_in_parent=_reaper.after_fork_in_parent,
                        after_in_child=_reaper.after_fork_in_child)
_local = threading.local()


def current_watch() -> Watch | None:
    stack: list[Watch] = getattr(_local, "stack", [])
    return stack[-1] if stack else None


@contextmanager
def watch(seconds: float) -> Iterator[Watch]:
    """Bound everything this thread does on watched connections inside the block to
    ``seconds`` (cut to the run's deadline)."""
    w = Watch(budget_s(seconds))
    if w.seconds <= 0:
        w.expired = True  # nothing left: fail at the first connection instead of racing the reaper
    stack: list[Watch] = getattr(_local, "stack", None) or []
    _local.stack = stack
    stack.append(w)
    _reaper.add(w)
    try:
        yield w
    finally:
        stack.pop()
        w.finish()


# -- making urllib3 connections watchable ------------------------------------------------------

_watched_classes: dict[type, type] = {}
_classes_lock = threading.RLock()  # a pool class makes its connection class inside


def _watched_connection(cls: type) -> type:
    def _new_conn(self: Any) -> Any:
        sock = cls._new_conn(self)  # type: ignore[attr-defined]
        w = current_watch()
        if w is not None:
            w.adopt_socket(sock)
        return sock

    return type(f"Watched{cls.__name__}", (cls,), {"_new_conn": _new_conn})


def _watched_pool(cls: type) -> type:
    conn_cls = watched_class(cls.ConnectionCls)  # type: ignore[attr-defined]

    def _get_conn(self: Any, timeout: float | None = None) -> Any:
        conn = cls._get_conn(self, timeout)  # type: ignore[attr-defined]
        w = current_watch()
        if w is not None:
            try:
                w.adopt_conn(conn)
            except DeadlineExceeded:
                self._put_conn(conn)
                raise
        return conn

    return type(f"Watched{cls.__name__}", (cls,), {"ConnectionCls": conn_cls, "_get_conn": _get_conn})


def watched_class(cls: type) -> type:
    """The watchable subclass of a urllib3 connection or connection-pool class (cached)."""
    if getattr(cls, "_meshobs_watched", False):
        return cls
    with _classes_lock:
        if cls not in _watched_classes:
            made = _watched_pool(cls) if hasattr(cls, "ConnectionCls") else _watched_connection(cls)
            made._meshobs_watched = True  # type: ignore[attr-defined]
            _watched_classes[cls] = made
        return _watched_classes[cls]


def install(pool_manager: Any, pool_classes: dict[str, type] | None = None) -> bool:
    """Make a urllib3 PoolManager's future connections watchable; False when it cannot be done
    (then only the client's own per-read timeouts apply). ``pool_classes`` is a mapping to
    patch in place when a client shares one between its managers (botocore does)."""
    if pool_classes is not None:
        for scheme, cls in list(pool_classes.items()):
            pool_classes[scheme] = watched_class(cls)
        return True
    mapping = getattr(pool_manager, "pool_classes_by_scheme", None)
    if not isinstance(mapping, dict):
        return False
    # A copy: urllib3's default mapping is module-wide, and other clients must stay untouched.
    pool_manager.pool_classes_by_scheme = {scheme: watched_class(cls) for scheme, cls in mapping.items()}
    return True


def install_boto(client: Any) -> bool:
    """Make a botocore client's connections watchable (its HTTP session is not public API:
    when a botocore release moves it, this returns False and a test says so)."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    mapping = getattr(session, "_pool_classes_by_scheme", None)
    if not isinstance(mapping, dict):
        return False
    return install(None, mapping)
