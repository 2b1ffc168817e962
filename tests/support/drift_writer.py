"""A drift run in a child process, for the SIGKILL tests: ``python -m tests.support.drift_writer DIR MODE``.

MODE ``loop``: record runs until killed (three drifts that come and go, so the state changes);
after the first run it creates ``$DRIFT_WRITER_READY/<pid>`` when that variable is set, so a test
kills it only once it is writing (not while a loaded machine is still importing it).
MODE ``die:<step>:<file>``: record one run and SIGKILL itself at ``step`` of writing ``file``:
``fsync`` (the temporary file is written, not yet in place), ``before`` or ``after`` the rename.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from meshobs.drift.compare import INTENDED_LIVE, LIVE_EFFECTIVE, Drift, Severity
from meshobs.drift.normalise import ResourceId
from meshobs.drift.state import StateStore

BOTH = {INTENDED_LIVE, LIVE_EFFECTIVE}


def drifts(n: int) -> list[Drift]:
    vs = ResourceId("istio", "VirtualService", "payments", "ledger")
    return [Drift(vs, INTENDED_LIVE, f"spec.http[{i}].timeout", "2s", f"{n}s", "timeout", Severity.WARNING)
            for i in range(n % 4)]


def die_at(step: str, target: str) -> None:
    """Make the next write of ``target`` end the process with SIGKILL at ``step``."""
    real_fsync, real_replace = os.fsync, os.replace

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if step == "fsync" and os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1].startswith(f".{target}."):
            kill()

    def replace(src: Any, dst: Any) -> None:
        hit = str(dst).endswith("/" + target)
        if hit and step == "before":
            kill()
        real_replace(src, dst)
        if hit and step == "after":
            kill()

    os.fsync, os.replace = fsync, replace  # type: ignore[assignment]


def main() -> None:
    directory, mode = sys.argv[1], sys.argv[2]
    store = StateStore(directory, history_limit=50)
    if mode.startswith("die:"):
        _, step, target = mode.split(":")
        die_at(step, target)
        store.record(drifts(3), checked=BOTH)
        return
    n = 0
    ready = os.environ.get("DRIFT_WRITER_READY")
    while True:
        n += 1
        store.record(drifts(n), checked=BOTH)
        if n == 1 and ready:
            open(os.path.join(ready, str(os.getpid())), "w").close()


if __name__ == "__main__":
    main()
