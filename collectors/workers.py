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
from typing import TypeVar

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
                if state["done"] == n:  # the caller waits for all of them, not for each
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
