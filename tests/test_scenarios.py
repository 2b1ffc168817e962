"""The acceptance harness: every scenario of the library, diagnosed from its bundle, must reach
the conclusion its Expectation states (the cause that must rank first, or no warning/error on a
healthy mesh, or "could not check").

Most fail today: each failing one carries ``xfail(strict=True)`` with what is missing. When a
check makes a scenario pass, the strict marker turns the unexpected pass into a failure: remove
the marker then. The codes of the checks do not appear here, only kinds of cause and subjects.
"""

from __future__ import annotations

import pytest

from meshobs.checks.base import Settings
from meshobs.demo.expect import first_subjects, judge_mesh, judge_report
from meshobs.demo.scenario import Scenario
from meshobs.demo.scenarios import LIBRARY
from meshobs.engine import diagnose, diagnose_all
from meshobs.model import MeshSnapshot, ServiceRef
from tests.support.scenarios import scenario, snapshot

# What each scenario needs that meshobs does not do yet. Remove an entry when its scenario passes.
MISSING: dict[str, str] = {}


def _params() -> list[object]:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=MISSING[name]))
            if name in MISSING else name for name in LIBRARY]


def problems_of(sc: Scenario, snap: MeshSnapshot) -> list[str]:
    """Everything the diagnosis of ``snap`` gets wrong against ``sc.expect``."""
    expect = sc.expect
    assert expect is not None
    problems: list[str] = []
    settings = Settings()
    if expect.target:
        ns, name = expect.target.split("/")
        report = diagnose(snap, ServiceRef(ns, name), settings)
        found = judge_report(expect, report)
        if found:
            problems += [*found, f"ranked: {first_subjects(report.findings)}"]
    if expect.healthy:
        problems += judge_mesh(expect, diagnose_all(snap, settings))
    return problems


def test_the_missing_list_names_only_library_scenarios() -> None:
    assert set(MISSING) <= set(LIBRARY)


@pytest.mark.parametrize("name", _params())
def test_diagnosis_reaches_the_known_cause(name: str) -> None:
    problems = problems_of(scenario(name), snapshot(name))
    assert not problems, f"{name}: " + "; ".join(problems)
