"""Collection progress: a rich status line that several collector threads update at once."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from meshobs.cli.progress import Progress, progress_on_terminal
from meshobs.render.wrap import wrap, wrap_line


def test_threads_update_one_status_line_without_interleaving() -> None:
    out = io.StringIO()
    progress = Progress(Console(file=out, force_terminal=True, width=80))
    threads = [threading.Thread(target=lambda n=n: [progress(f"fetching envoy:{n}/{i}") for i in range(50)])
               for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress.close()
    progress.close()  # idempotent
    assert "fetching envoy:" in out.getvalue()


def test_nothing_is_drawn_when_stderr_is_not_a_terminal() -> None:
    assert progress_on_terminal() is None  # pytest captures stderr


def test_wrap_keeps_names_whole_and_hangs_continuations() -> None:
    name = "outbound|8080||database-service.shop.svc.cluster.local"
    lines = wrap_line(f"    clusters: {name} {name} {name}", 40)
    assert all(name in line for line in lines) and lines[0].startswith("    clusters:")
    assert all(line.startswith(" " * 8) for line in lines[1:])
    assert wrap("short\n\n  also short", 80) == "short\n\n  also short"
    coloured = "\x1b[31m×\x1b[0m " + "word " * 30
    plain = [line.replace("\x1b[31m", "").replace("\x1b[0m", "") for line in wrap(coloured, 40).split("\n")]
    assert all(len(line) <= 40 for line in plain)
