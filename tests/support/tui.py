"""Waiting on a dashboard under test (Textual's pilot): shared by the dashboard's tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from meshobs.tui.app import MeshobsApp
from meshobs.tui.widgets.tables import SyncTable


async def until(pilot: Any, condition: Callable[[], bool], within_s: float = 60) -> None:
    """Let the app run until ``condition`` holds (generous: the suite runs two workers on two
    shared cores)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("the dashboard never got there")


def settled(app: MeshobsApp) -> bool:
    """The overview's table holds a load whole (no load running, no rows still queued)."""
    table = app.screen.query_one("#services", SyncTable)
    return app.analysis is not None and not app.loading and table.settled and table.row_count > 0
