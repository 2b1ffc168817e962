"""Collection progress on a terminal: one live status line on stderr, drawn by rich.

Collectors report progress from several threads at once; rich's live display serialises the
redraws (and a lock here the updates), so lines never interleave. Nothing is drawn when stderr
is not a terminal (CI logs, pipes): stdout belongs to the command's output either way.
"""

from __future__ import annotations

import sys
import threading
from typing import Any


class Progress:
    """A callable ``progress(message)`` for :func:`meshobs.collect.collect`; ``close()`` clears it."""

    def __init__(self, console: Any) -> None:
        self._console = console
        self._status: Any = None
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            if self._status is None:
                self._status = self._console.status(message)
                self._status.start()
            else:
                self._status.update(message)

    def close(self) -> None:
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None


def progress_on_terminal() -> Progress | None:
    """A :class:`Progress` on stderr when it is a terminal, else None (print nothing)."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console

    return Progress(Console(stderr=True))
