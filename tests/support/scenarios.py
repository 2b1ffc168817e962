"""The scenario library's bundles and snapshots, rendered once per test session (the grid and
the signal tests read the same ones)."""

from __future__ import annotations

from functools import cache

from meshobs.bundle import Bundle
from meshobs.collect import build_snapshot
from meshobs.demo.build import render_bundle
from meshobs.demo.scenario import Scenario
from meshobs.demo.scenarios import library_scenario
from meshobs.model import MeshSnapshot


@cache
def scenario(name: str) -> Scenario:
    return library_scenario(name)


@cache
def bundle(name: str) -> Bundle:
    return render_bundle(scenario(name))


@cache
def snapshot(name: str) -> MeshSnapshot:
    return build_snapshot(bundle(name), origin=f"demo:{name}")
