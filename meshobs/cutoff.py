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


def stop(why: str) -> None:
    """From now on, checks and analyzers are not run: ``why`` is their "could not check" reason."""
    global reason
    _LINES.clear()
    reason = why


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
