"""What a live diagnose SERVICE imports before its scoped phase: the question between the phases
(resolve the name, walk the call graph) runs without the engine and its checks, whose import
(~230 modules) is left to the warm-up thread while the scoped phase's backends answer."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from meshobs.callgraph import answered, callees_of, downstream
from meshobs.cli.diagnose import scoped_question
from meshobs.collect import build_snapshot
from meshobs.neighbourhood import neighbourhood
heavy = sorted(n for n in sys.modules if n == "meshobs.engine" or n.startswith(("meshobs.engine.", "numpy")))
print(" ".join(heavy) or "none")
"""


def test_the_question_between_the_phases_does_not_import_the_engine() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["none"]


def test_the_engine_uses_the_same_walks() -> None:
    import meshobs.callgraph as graph
    import meshobs.engine as engine
    from meshobs.engine import inputs, ranking

    assert engine.callees_of is graph.callees_of and engine.callers_of is graph.callers_of
    assert ranking.downstream is graph.downstream and ranking.nearest is graph.nearest
    assert inputs.answered is graph.answered and ranking.MAX_DEPTH == graph.MAX_DEPTH


def test_the_warm_up_starts_once_the_name_is_resolved() -> None:
    import pytest

    from meshobs.cli.common import UsageError
    from meshobs.cli.diagnose import scoped_question
    from meshobs.collect import build_snapshot
    from meshobs.demo.catalog import load_demo

    snapshot = build_snapshot(load_demo("ecommerce"), origin="demo")
    target = snapshot.services[0].ref
    calls: list[str] = []
    scope = scoped_question(str(target), None, lambda: calls.append("asked"))(snapshot)
    assert scope is not None and scope.target == target and calls == ["asked"]
    with pytest.raises(UsageError):  # an unknown name stops the run: nothing to warm up for
        scoped_question("no-such-service-x9", None, lambda: calls.append("asked"))(snapshot)
    assert calls == ["asked"]
