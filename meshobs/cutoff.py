"""The run's deadline inside the diagnosis: once it is near, no further check runs.

A live run's ``--timeout`` holds for the whole run, diagnosing and printing included
(:func:`meshobs.cli.common.hold_deadline`). Shortly before it, the CLI calls :func:`stop`;
from then on every check and analyzer not yet run is reported "could not check: the run's
deadline (...) was reached before it ran", as a gap in what the run judged (like a source
that timed out: the service is ``partial``, or ``unknown`` when nothing vouches for it, never
``healthy``), and what was judged is ranked and printed. Issue 9: a run that is cut short
uses what it has, rather than printing nothing.

The flag is read between checks and never raised into one: a check cut half-way would report
half of what it found as its verdict. A single check that never returns is the hard stop's
business (exit 3, no report).

One process runs one command, and only its main thread's command arms the deadline, so the
flag is the process's; :func:`resume` clears it when the command ends.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
from typing import TYPE_CHECKING

# Nothing heavy at import: the CLI imports this module for every live command (drift and
# snapshot diagnose nothing), and the engine is imported only where a diagnosis runs.
if TYPE_CHECKING:
    from meshobs.checks.base import AnyCheck
    from meshobs.engine.report import CheckResult

# Why the checks left are not run (None: they run). Read once per check: a plain global.
reason: str | None = None
# One shared line per check (a --all cut early gives the same line for thousands of services).
_LINES: dict[str, CheckResult] = {}


# Forked workers (meshobs.engine.fanout: --all on several cores) run checks too, and the CLI's
# timer fires in this process only (a timer is not inherited by fork): stop() writes the reason
# on a board shared with them (an anonymous shared mmap, made before they are forked) and sends
# each WORKER_SIGNAL, whose handler in the worker reads the board and stops there too.
WORKER_SIGNAL = signal.SIGUSR1
_BOARD_SIZE = 4096
_board: mmap.mmap | None = None
_workers: set[int] = set()


def stop(why: str) -> None:
    """From now on, checks and analyzers are not run: ``why`` is their "could not check" reason
    (in this process and in the workers it forked)."""
    global reason
    _LINES.clear()
    reason = why
    if _workers and _board is not None:
        text = why.encode()[: _BOARD_SIZE - 4]
        _board[4:4 + len(text)] = text
        _board[:4] = len(text).to_bytes(4, "little")
        for pid in list(_workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, WORKER_SIGNAL)


def share() -> None:
    """Before forking workers: the board they will read the reason from."""
    global _board
    if _board is None:
        _board = mmap.mmap(-1, _BOARD_SIZE)  # anonymous and shared (MAP_SHARED) with children


def forward_to(pid: int) -> None:
    """A worker just forked: :func:`stop` stops it too."""
    _workers.add(pid)
    if reason is not None:  # stopped while it was being forked: it may have copied the flag unset
        stop(reason)


def forget(pid: int) -> None:
    """A worker has ended (waited for): no more signals to its pid, which may be reused."""
    _workers.discard(pid)


def as_worker() -> None:
    """In a forked worker: :func:`stop` when the process that forked it stops (its signal)."""
    _workers.clear()

    def stopped(_signum: int, _frame: object) -> None:
        if _board is not None and reason is None:
            size = int.from_bytes(_board[:4], "little")
            stop(_board[4:4 + size].decode() or "the run's deadline was reached")

    signal.signal(WORKER_SIGNAL, stopped)


def lines() -> dict[str, CheckResult]:
    """The deadline's "could not check" lines given so far (a worker hands them back)."""
    return dict(_LINES)


def adopt(given: dict[str, CheckResult]) -> None:
    """Lines a worker gave count as given here (:func:`cut`: the CLI says the run was cut)."""
    for check_id, line in given.items():
        _LINES.setdefault(check_id, line)


def resume() -> None:
    """Checks run again (the command that armed the deadline has ended)."""
    global reason
    reason = None
    _LINES.clear()


def cut() -> bool:
    """Did the deadline leave a check unrun (not only pass: a drift or snapshot runs none)?"""
    return bool(_LINES)


def not_run(c: AnyCheck) -> CheckResult:
    """The checklist line of a check that the deadline left unrun."""
    from meshobs.engine.report import SKIPPED, CheckResult

    line = _LINES.get(c.id)
    if line is None or line.category is not c.category or line.description != c.doc or line.kind != c.kind:
        line = _LINES[c.id] = CheckResult(c.id, c.category, SKIPPED, f"could not check: {reason}", c.doc, c.kind,
                                          could_not_check=True, missing_data=True)
    return line


def deadline_reason(timeout_s: float) -> str:
    """The words every check left unrun by the deadline carries (after "could not check: ")."""
    return f"the run's deadline (--timeout {timeout_s:g}s) was reached before it ran"
