"""Bounded fan-out on daemon threads that a deadline can walk away from.

``concurrent.futures.ThreadPoolExecutor`` threads are joined when the interpreter exits, so a
worker stuck in a read keeps a finished command from exiting (a CronJob never gets its exit
code). Here workers are daemon threads, and :func:`fan_out` returns at the deadline with a
stand-in result for every item not done: the caller reports what it has and the process can
exit; a worker still busy dies with it. One item's exception costs that item only
(``failed``): a fan-out over 1,500 proxies or 40 Kubernetes lists never loses the other
items' results to one surprise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_MISSING = object()


def fan_out(fn: Callable[[T], R], items: Sequence[T], *, workers: int, late: Callable[[T, bool], R],
            failed: Callable[[T, Exception], R], deadline: float | None = None,
            name: str = "meshobs-worker") -> list[R]:
    """``[fn(item) for item in items]`` on at most ``workers`` daemon threads, in item order.

    Items not started by ``deadline`` (a ``time.monotonic()`` value) get ``late(item, False)``
    without being run; the call returns at ``deadline`` even when some ``fn`` calls are still
    running (they get ``late(item, True)``). An item whose ``fn`` raises an Exception gets
    ``failed(item, exc)`` (on the worker's thread) and the others go on. What ``failed`` itself
    raises, and a BaseException that is not an Exception (KeyboardInterrupt), is re-raised here.
    """
    n = len(items)
    results: list[object] = [_MISSING] * n
    errors: list[BaseException] = []
    cond = threading.Condition()
    state = {"next": 0, "done": 0}

    def work() -> None:
        while True:
            with cond:
                i = state["next"]
                if i >= n or errors:
                    return
                state["next"] = i + 1
            try:
                if deadline is not None and time.monotonic() >= deadline:
                    result: object = late(items[i], False)
                else:
                    try:
                        result = fn(items[i])
                    except Exception as exc:  # one item's surprise costs that item only
                        result = failed(items[i], exc)
            except BaseException as exc:  # handed to the caller, like Future.result()
                with cond:
                    errors.append(exc)
                    cond.notify_all()
                return
            with cond:
                results[i] = result
                state["done"] += 1
                cond.notify_all()

    for k in range(max(1, min(workers, n))):
        threading.Thread(target=work, name=f"{name}-{k}", daemon=True).start()
    with cond:
        while state["done"] < n and not errors:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                break
            cond.wait(wait)
        if errors:
            raise errors[0]
        snapshot, started = list(results), state["next"]
    return [r if r is not _MISSING else late(items[i], i < started)  # type: ignore[misc]
            for i, r in enumerate(snapshot)]


class OneBehind(Generic[T, R]):
    """``fn`` run on each item pushed, in order, on a daemon thread beside the caller: while the
    caller produces item ``i + 1`` (waits for the next page of a list), item ``i`` is worked on.
    At most one item is in the works, so at most two are held besides the results: a pushed
    item waits for the one before it to be done. What ``fn`` raises is re-raised to the caller
    by the next :meth:`push` or by :meth:`results`."""

    def __init__(self, fn: Callable[[T], R], name: str = "meshobs-behind") -> None:
        self._fn, self._name = fn, name
        self._thread: threading.Thread | None = None
        self._out: list[R] = []
        self._error: BaseException | None = None

    def _run(self, item: T) -> None:
        try:
            self._out.append(self._fn(item))
        except BaseException as exc:  # handed to the caller, like Future.result()
            self._error = exc

    def _wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def push(self, item: T) -> None:
        """Hand ``item`` over once the one before it is done."""
        self._wait()
        self._thread = threading.Thread(target=self._run, args=(item,), name=self._name, daemon=True)
        self._thread.start()

    def results(self) -> list[R]:
        """``fn``'s result for every item pushed, in order, once the last is done."""
        self._wait()
        return self._out
