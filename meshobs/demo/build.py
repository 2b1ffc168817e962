"""Render scenarios into bundles, and regenerate the bundles shipped inside the package.

    python -m meshobs.demo.build            # rewrite meshobs/demo/bundles/<name>.tar.gz
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from meshobs import __version__
from meshobs.bundle import Bundle, write_bundle
from meshobs.raw import RawSource, iso

from .render_envoy import render_proxies
from .render_jaeger import jaeger_source
from .render_kubernetes import kubernetes_source, pods
from .scenario import BUILTIN, Scenario, builtin_scenario

if TYPE_CHECKING:
    from .prom_timeline import Timeline
    from .traffic import EdgeTraffic

BUNDLES = Path(__file__).resolve().parent / "bundles"


def render_bundle(scenario: Scenario) -> Bundle:
    """Every source's raw payloads for ``scenario``: kubernetes, one envoy per pod, jaeger,
    prometheus. Deterministic: the same scenario gives the same bundle."""
    from .envoy_admin import recorded_proxies
    from .prometheus import prometheus_source

    if scenario.appmesh:
        sources = _mixed_sources(scenario)
    elif scenario.rich:
        sources = _rich_sources(scenario)
    else:
        proxies = recorded_proxies(scenario) if scenario.recorded else render_proxies(scenario)
        sources = [kubernetes_source(scenario), *proxies, jaeger_source(scenario),
                   prometheus_source(scenario.edges, scenario.time, scenario.window_s)]
    return Bundle(time=scenario.time, window_s=scenario.window_s, sources=sources,
                  config={"mesh": scenario.mesh_mode},
                  created=iso(scenario.time), meshobs_version=__version__,
                  description=scenario.description, name=scenario.name)


def _mixed_sources(scenario: Scenario) -> list[RawSource]:
    """Sources of a scenario with App Mesh workloads. Each edge goes to the telemetry of the mesh
    whose proxy reports it: the caller's (Istio -> Prometheus, Jaeger when both ends are Istio;
    App Mesh -> CloudWatch and X-Ray), so an edge across the boundary is reported once."""
    from .prometheus import prometheus_source
    from .render_appmesh import appmesh_kubernetes_source, mesh_of, render_appmesh_proxies
    from .render_cloudwatch import cloudwatch_source
    from .render_xray import xray_source

    on_appmesh = {(w.namespace, w.name) for w in scenario.workloads if scenario.on_appmesh(w)}
    gateways = {w.name for w in scenario.workloads if w.gateway and scenario.on_appmesh(w)}
    appmesh_edges = [e for e in scenario.edges if (e.source_namespace, e.source_workload) in on_appmesh]
    istio_edges = [e for e in scenario.edges if (e.source_namespace, e.source_workload) not in on_appmesh]
    istio_pods = {f"envoy:{p.namespace}/{p.name}" for p in pods(scenario) if not scenario.on_appmesh(p.workload)}
    mesh = mesh_of(scenario)
    sources = [appmesh_kubernetes_source(scenario)]
    if istio_edges:
        sources += [r for r in render_proxies(scenario) if r.name in istio_pods]
    sources += render_appmesh_proxies(scenario)
    if istio_edges:
        both = [e for e in istio_edges if e.destination_istio]
        sources += [jaeger_source(replace(scenario, edges=both)),
                    prometheus_source(istio_edges, scenario.time, scenario.window_s)]
    if scenario.appmesh_aws_names:  # CloudWatch dimensions and X-Ray segments carry awsNames
        appmesh_edges = [_aws_named(scenario, e) for e in appmesh_edges]
        gateways = {scenario.aws_name("node", g) for g in gateways}
    sources += [cloudwatch_source(appmesh_edges, scenario.time, scenario.window_s, mesh=mesh, gateways=gateways),
                xray_source(appmesh_edges, scenario.time, scenario.window_s, mesh=mesh, traces=scenario.traces // 2,
                            seed=scenario.seed)]
    return sources


def scenario_timeline(scenario: Scenario) -> Timeline:
    """Every Prometheus series of an authored scenario: its traffic and istiod's metrics."""
    from .prom_timeline import Timeline, traffic_series
    from .render_istiod import istiod_series

    return Timeline([*traffic_series(scenario.edges), *istiod_series(scenario)],
                    history_s=scenario.history_s, end_s_ago=scenario.metrics_end_s_ago)


def _rich_sources(scenario: Scenario) -> list[RawSource]:
    """Sources of an authored scenario, istiod's debug endpoints included when it declares a
    control plane (while a build has no istiod collector registered, they are left out: an
    unknown source kind would be an unreadable source)."""
    from meshobs.collect import MODULES

    from .prom_timeline import prometheus_source
    from .render_istiod import istiod_source

    sources = [kubernetes_source(scenario), *render_proxies(scenario), jaeger_source(scenario),
               prometheus_source(scenario_timeline(scenario), scenario.time, scenario.window_s)]
    if scenario.istiod is not None and "istiod" in MODULES:
        sources.append(istiod_source(scenario))
    return sources


def _aws_named(scenario: Scenario, edge: EdgeTraffic) -> EdgeTraffic:
    """``edge`` in App Mesh's own names: virtual node awsNames, virtual service awsNames."""
    dst = edge.destination_workload
    return replace(edge, source_workload=scenario.aws_name("node", edge.source_workload),
                   destination_workload=scenario.aws_name("node", dst) if dst else None,
                   destination_service=scenario.aws_name("service", edge.destination_service))


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
