"""The core and the collectors never import textual: only meshobs.tui and the dashboard command do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import importlib, pkgutil, sys
    import meshobs
    skipped = ("meshobs.tui", "meshobs.cli.dashboard")
    names = []
    for info in pkgutil.walk_packages(meshobs.__path__, "meshobs."):
        if info.name.startswith(skipped) or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    assert len(names) > 30, names
    assert "meshobs.collectors.prometheus" in names and "meshobs.engine" in names, names
    leaked = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
    print("LEAKED" if leaked else "CLEAN", len(names), leaked[:5])
""")


def test_core_and_collectors_import_no_textual() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CLEAN"), out.stdout


def test_the_check_would_catch_a_leak() -> None:
    """The same probe reports textual once the dashboard is imported (so the test can fail)."""
    probe = "import meshobs.tui.app, sys; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True", out.stderr
