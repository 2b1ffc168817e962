"""What diagnosing imports: the warm-up's modules (the checks, the engine, the timeline, the JSON
renderer, the question's walks) and nothing a question about one service does not run. Each of
these cost a live question CPU on every run when it crept in: the HTTP and Kubernetes clients
belong to the collectors (imported by their preloader, only for configured sources), pydantic
to a config the cache has not seen, jsonschema to ``--all``, pandas to a big history, the drift
state directory to ``meshobs drift --state-dir``, and the rest to other commands."""

from __future__ import annotations

import subprocess
import sys

from meshobs.cli.diagnose import DIAGNOSIS_MODULES, QUESTION_MODULES, RENDERERS

NOT_IMPORTED = ("pandas", "jsonschema", "pydantic", "meshobs.drift.state", "cryptography", "requests", "urllib3",
                "kubernetes", "oauthlib", "boto3", "botocore", "prometheus_api_client", "textual", "rich",
                "numpy.ma", "meshobs.demo", "meshobs.tui")


def test_the_diagnosis_imports_only_what_a_question_runs() -> None:
    modules = (*QUESTION_MODULES, *DIAGNOSIS_MODULES, RENDERERS["json"], RENDERERS["text"])
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print([m for m in {NOT_IMPORTED!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_drift_run_still_carries_its_state_record() -> None:
    """The record's type is imported for type checking only; ``meshobs drift --state-dir``
    imports the store that makes one."""
    from meshobs.drift.run import DriftRun
    from meshobs.drift.state import RunRecord

    assert "record" in DriftRun.__dataclass_fields__ and RunRecord.__name__ == "RunRecord"
