"""Render scenarios into bundles, and regenerate the bundles shipped inside the package.

    python -m meshobs.demo.build            # rewrite meshobs/demo/bundles/<name>.tar.gz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshobs import __version__
from meshobs.bundle import Bundle, write_bundle
from meshobs.raw import iso

from .render_envoy import render_proxies
from .render_jaeger import jaeger_source
from .render_kubernetes import kubernetes_source
from .scenario import BUILTIN, Scenario, builtin_scenario

BUNDLES = Path(__file__).resolve().parent / "bundles"


def render_bundle(scenario: Scenario) -> Bundle:
    """Every source's raw payloads for ``scenario``: kubernetes, one envoy per pod, jaeger,
    prometheus. Deterministic: the same scenario gives the same bundle."""
    from .prometheus import prometheus_source

    sources = [kubernetes_source(scenario), *render_proxies(scenario), jaeger_source(scenario),
               prometheus_source(scenario.edges, scenario.time, scenario.window_s)]
    return Bundle(time=scenario.time, window_s=scenario.window_s, sources=sources,
                  config={"mesh": "istio"},
                  created=iso(scenario.time), meshobs_version=__version__,
                  description=scenario.description, name=scenario.name)


def build_all(directory: Path = BUNDLES) -> list[Path]:
    """Write one ``<name>.tar.gz`` per built-in scenario into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return [write_bundle(render_bundle(builtin_scenario(name)), directory / f"{name}.tar.gz")
            for name in BUILTIN]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshobs.demo.build", description=__doc__)
    parser.add_argument("--out", type=Path, default=BUNDLES, help="directory for the bundles")
    args = parser.parse_args(argv)
    for path in build_all(args.out):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
