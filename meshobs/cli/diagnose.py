"""``meshobs diagnose SERVICE``: the checklist, the ranked root cause, the evidence."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from .checks import check_options, selected
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_UNCHECKED,
    Loaded,
    UsageError,
    handle_errors,
    load_bundle,
    load_snapshot,
    note,
    source_options,
)

if TYPE_CHECKING:
    from meshobs.bundle import Bundle
    from meshobs.collectors.base import Scope
    from meshobs.graph_phase import GraphPhase
    from meshobs.model import MeshSnapshot, ServiceRef

EXIT_HELP = """\b
Exit codes:
  0  nothing at or above --fail-on (status healthy, or partial: a configured
     source left part of the data out, or the run's deadline came before every
     check ran, and the status line says what; or clean: configuration only
     was judged (--config-only, -f manifests alone), or no check of requests
     applies to the service (a waypoint): traffic not checked)
  1  findings at or above --fail-on (default: error)
  2  usage or configuration error (bad flag, bad config, unknown service)
  3  could not check (status unknown): no source answered, or nothing vouches
     for the service: its traffic checks found no data (a window without
     samples is never healthy; a source that could not be read, MSH0002,
     is listed but is no verdict)

\b
Configuration analysis in CI (no cluster, no metrics):
  meshobs diagnose --all --config-only -f manifests/ --fail-on warning"""

FAIL_ON = {"error": 3, "warning": 2, "never": 99}


def resolve(snapshot: object, name: str, namespace: str | None) -> object:
    """The ServiceRef for ``name``; unknown or ambiguous names are a usage error with suggestions."""
    from meshobs.model import MeshSnapshot, ServiceRef

    assert isinstance(snapshot, MeshSnapshot)
    if "/" in name and namespace and name.split("/", 1)[0] != namespace:
        raise UsageError(f"{name!r} names namespace {name.split('/', 1)[0]}, but --namespace says {namespace}")
    found = snapshot.find_services(name, namespace)
    if len(found) == 1:
        return found[0].ref
    if len(found) > 1:
        options = ", ".join(str(s.ref) for s in found)
        raise UsageError(f"{name!r} exists in several namespaces ({options}); pass --namespace")
    # A namespace given in the name (shop/cart, cart.shop, the FQDN) is asked for as --namespace is.
    typed = name.strip().lower()
    qualified = "/" in typed or typed.endswith(".svc.cluster.local") or typed.count(".") == 1
    bare, in_namespace = (name, namespace) if not qualified else (
        (ref := ServiceRef.parse(typed)).name, ref.namespace)
    elsewhere = [s for s in snapshot.find_services(bare) if s.namespace != in_namespace] if in_namespace else []
    if elsewhere:
        where = ", ".join(s.namespace for s in elsewhere)
        try_ = f"{elsewhere[0].namespace}/{bare}" if qualified else f"--namespace {elsewhere[0].namespace}"
        raise UsageError(f"no service {bare!r} in namespace {in_namespace}; it exists in {where} (try {try_})")
    # Suggest short names; the namespaced form only where a short name is ambiguous.
    counts: dict[str, int] = {}
    for s in snapshot.services:
        counts[s.name] = counts.get(s.name, 0) + 1
    known = sorted({s.name if counts[s.name] == 1 else str(s.ref) for s in snapshot.services})
    short = name.lower().split("/")[-1].split(".")[0]
    close = difflib.get_close_matches(short, known, n=3, cutoff=0.5)
    where = f" in namespace {namespace}" if namespace else ""
    hint = f"; did you mean {', '.join(close)}?" if close else (
        f"; known services: {', '.join(known[:10])}" + (" ..." if len(known) > 10 else "")
        if snapshot.services else "; the snapshot has no services")
    raise UsageError(f"unknown service {name!r}{where}{hint}")


def scoped_question(service: str, namespace: str | None, asked: Callable[[], None] | None = None
                    ) -> Callable[[MeshSnapshot | GraphPhase], Scope | None]:
    """What a live ``diagnose SERVICE`` asks of the graph phase: resolve the name (an unknown
    one is a usage error before anything heavy is fetched), then the neighbourhood to collect.

    None (collect the rest mesh-wide) when nothing answered, or when no source gave traffic
    edges: without the graph, the callers and callees cannot be told, and narrowing would lose
    what a mesh-wide collection sees. ``asked`` is called once the name is resolved, just
    before the scoped phase starts.
    """

    def question(graph: MeshSnapshot | GraphPhase) -> Scope | None:
        from meshobs.callgraph import answered
        from meshobs.model import MeshSnapshot, ServiceRef
        from meshobs.neighbourhood import neighbourhood

        # The graph phase's answers are read no further than the question needs (every
        # service's name, then the edges the neighbourhood can reach: meshobs.graph_phase).
        names = graph if isinstance(graph, MeshSnapshot) else graph.names()
        if not answered(names) or not names.services:
            scope = None  # nothing to look the name up in: the diagnosis says "could not check"
        else:
            ref = resolve(names, service, namespace)
            assert isinstance(ref, ServiceRef)
            snapshot = graph if isinstance(graph, MeshSnapshot) else graph.around(ref)
            scope = neighbourhood(snapshot, ref) if snapshot.edges else None
        if asked is not None:
            asked()
        return scope

    return question


def scope_note(bundle: Bundle, target: ServiceRef | None) -> str | None:
    """What to say when a bundle recorded for one service's neighbourhood answers another question."""
    recorded = (bundle.scope or {}).get("target")
    if not recorded or (target is not None and str(target) == recorded):
        return None
    asked = f"{target}" if target is not None else "every service"
    return (f"this bundle holds the neighbourhood of {recorded} only (it was recorded for that service); "
            f"what it says about {asked} may be incomplete")


def load_baseline(when: str, loaded: Loaded) -> MeshSnapshot:
    """The snapshot to compare latency against (``--baseline``).

    A duration re-queries the configured Prometheus for the same window that much earlier
    (Prometheus keeps history; the other sources only know the present). Anything else is a
    bundle path or demo:NAME recorded earlier.
    """
    from meshobs.collect import build_snapshot, collect
    from meshobs.config import Config
    from meshobs.durations import parse_duration

    try:
        offset = parse_duration(when)
    except ValueError:
        bundle, _config, origin = load_bundle(when, None, quiet_demo=True)
        return build_snapshot(bundle, origin=f"baseline {origin}")
    config = loaded.config
    if loaded.origin != "live" or config is None or "prometheus" not in config.sources:
        raise UsageError("--baseline DURATION re-queries Prometheus, so it needs a live run with "
                         "sources.prometheus; with --from, pass an earlier bundle as --baseline PATH")
    earlier = loaded.bundle.time - timedelta(seconds=offset)
    only_prometheus = Config(raw={**config.raw, "sources": {"prometheus": config.sources["prometheus"]}},
                             path=config.path, window_s=config.window_s, time=earlier, mesh=config.mesh)
    return build_snapshot(collect(only_prometheus), origin=f"baseline -{when}")


# What diagnosing and printing import, per output format (each several hundred modules' worth
# of checks: ~0.3 s of CPU at start-up), in steps of at most ~0.08 s of CPU: the heavy library
# the checks use (numpy, for the timeline; its medians are taken without numpy.ma, which
# np.median imports on its first call: meshobs.timeline.onset._median), then the checks themselves.
DIAGNOSIS_MODULES = ("numpy", "meshobs.checks.registry", "meshobs.engine", "meshobs.timeline.frame")
# What only a diagnosis of every service uses: jsonschema, which validates
# each Istio resource against its schema (--all). A question about one service validates none
# (meshobs.checks.analyzers_schema, given a focus, asks only whether a schema exists), and
# importing it cost such a question ~30 ms of CPU; in the rare case its ranking reads the whole
# run's findings, the validator imports it where it is built.
MESH_WIDE_MODULES = ("jsonschema",)
# What a question about one service imports between its phases, on the critical path (the
# graph's assembly, the neighbourhood): first, so it is done before the graph phase answers.
QUESTION_MODULES = ("meshobs.assemble", "meshobs.callgraph", "meshobs.neighbourhood")
RENDERERS = {"text": "meshobs.render.text", "json": "meshobs.render.json", "markdown": "meshobs.render.markdown",
             "junit": "meshobs.render.junit"}


def warm_up(output: str, waiting: threading.Event | None = None, *, scoped: bool = False) -> threading.Thread:
    """Import the diagnosis's modules on a daemon thread, started during a live collection.

    A live question waits on its backends (Prometheus evaluating, the proxies answering) for a
    good part of its wall time with the interpreter idle; the imports fill those gaps instead of
    running after the last answer. With ``waiting`` (see :func:`meshobs.collect.collect`), each
    step waits until the collection is only waiting again: between its phases the collection
    is on the critical path, and a second thread would halve its share of the interpreter.
    The thread only imports: nothing it runs depends on the run.
    No thread can wait for it while holding an import lock it needs: no collector imports a
    diagnosis module, no check imports the engine, and the main thread starts its own imports
    of them (the diagnosis) from outside any import. A module that fails to import fails
    again, with its error, where it is used.
    """

    def run() -> None:
        import importlib

        for name in (*(QUESTION_MODULES if scoped else ()), *DIAGNOSIS_MODULES,
                     *(() if scoped else MESH_WIDE_MODULES), RENDERERS[output]):
            if waiting is not None:
                waiting.wait()
            try:
                importlib.import_module(name)
            except Exception:  # said where the module is used, by the import there
                return

    thread = threading.Thread(target=run, name="meshobs-warm-up", daemon=True)
    thread.start()
    return thread


def use_color(no_color: bool) -> bool:
    """Colour only on a terminal, never with --no-color or $NO_COLOR."""
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


@click.command(epilog=EXIT_HELP)
@click.argument("service", required=False)
@source_options
@click.option("-n", "--namespace", metavar="NS", help="Namespace of SERVICE when its name is ambiguous.")
@click.option("--window", metavar="DURATION", help="Rate window for a live collection (e.g. 5m).")
@click.option("-o", "--output", type=click.Choice(["text", "json", "markdown", "junit"]),
              default="text", show_default=True, help="Output format.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error",
              show_default=True, help="Lowest severity that makes the exit code 1.")
@click.option("--no-color", is_flag=True, help="No colour even on a terminal (also: $NO_COLOR).")
@click.option("--all", "all_services", is_flag=True, help="Diagnose every service in the mesh.")
@click.option("--baseline", metavar="WHEN",
              help="Compare latency with an earlier window: a duration (1d: the same window one day "
                   "earlier, queried from Prometheus) or an earlier bundle / demo:NAME.")
@check_options
@click.option("-f", "--filename", "manifests", multiple=True, metavar="PATH",
              help="Manifest file or directory to analyze (YAML/JSON, recursively; repeatable); added "
                   "to sources.kubernetes.manifests.")
@click.option("--config-only", is_flag=True,
              help="Judge configuration only: read only the configuration sources (Kubernetes, App Mesh, "
                   "-f) and run the analyzers and the checks that need nothing else.")
@click.option("--hops", is_flag=True,
              help="Also say where the time of requests through the service goes (the largest hop on "
                   "their critical path, MSH0502), even when nothing is slow.")
@handle_errors
def diagnose(service: str | None, from_path: str | None, config_path: str | None, timeout: str | None,
             namespace: str | None, window: str | None, output: str, fail_on: str,
             no_color: bool, all_services: bool, baseline: str | None, check: tuple[str, ...],
             skip: tuple[str, ...], manifests: tuple[str, ...], config_only: bool, hops: bool) -> None:
    """Diagnose SERVICE: run the checklist (proxy health, configuration, certificates,
    traffic, slow hops), rank the root causes across the service graph, show the evidence.

    With no configuration at all it diagnoses the built-in demo mesh.
    """
    from meshobs.gc_pause import gc_paused

    if not service and not all_services:
        raise UsageError("name a SERVICE to diagnose, or pass --all")
    if service and all_services:
        raise UsageError("pass either a SERVICE or --all, not both")
    from .config_only import collection_label, configuration_view

    # A live run imports the diagnosis (checks, engine, renderer) while the backends answer:
    # right after the collectors' own modules (one thread imports those first, see
    # meshobs.collectors.preload), so in a question about one service while Prometheus
    # evaluates the graph phase's queries, the longest wait of the run, pausing while the
    # collection works between its phases. Started once: by the preloader, or when the name is
    # resolved (a fallback: the preloader has always started it by then).
    warm: list[threading.Thread] = []
    starting = threading.Lock()

    def start_warm_up(waiting: threading.Event | None = None) -> None:
        with starting:
            if not warm:
                warm.append(warm_up(output, waiting, scoped=bool(service)))

    # One question, then the process ends: the cycle collector stays paused throughout. What it
    # would walk is the config, the payloads, the model, millions of findings and results of a
    # --all and its JSON document, all acyclic: its passes over that heap cost ~20% of a --all
    # run, and a live diagnose SERVICE at 1,000 services 0.6 s (0.2 s when paused step by step,
    # in the young collection after each step: hence ``promote``).
    with gc_paused(promote=True):
        # A selection is checked before anything is collected (a typo is a usage error now);
        # all checks, the default, are looked up once the collection is under way.
        checks = selected(check, skip, config_only) if check or skip or config_only else None
        # A live question about one service collects its neighbourhood only (two phases).
        question = scoped_question(service, namespace, start_warm_up) if service else None
        loaded = load_snapshot(from_path, config_path, window=window, timeout=timeout, question=question,
                               adjust=configuration_view(manifests, config_only, from_path is not None),
                               label=collection_label if manifests or config_only else None,
                               imported=start_warm_up)
        with starting:
            started = list(warm)
        for thread in started:
            thread.join()
        from meshobs.checks.base import Settings
        from meshobs.engine import MeshReport, Report, diagnose_all
        from meshobs.engine import diagnose as run_diagnosis
        from meshobs.engine.inputs import answered
        from meshobs.model import ServiceRef
        from meshobs.suppress import parse as parse_suppressions

        if checks is None:
            checks = selected((), ())
        raw = loaded.config.raw if loaded.config else {}
        settings = Settings.from_thresholds(raw.get("thresholds"),
                                            baseline=load_baseline(baseline, loaded) if baseline else None)
        if hops:
            settings = dataclasses.replace(settings, explain_hops=True)
        suppressions = parse_suppressions(raw.get("suppress"))
        snapshot = loaded.snapshot
        report: Report | MeshReport
        if all_services:
            if (said := scope_note(loaded.bundle, None)) is not None:
                note(said)
            report = diagnose_all(snapshot, settings, suppressions, checks)
        else:
            assert service is not None
            if answered(snapshot) and snapshot.services:
                ref = resolve(snapshot, service, namespace)
            else:
                # Nothing answered, or the sources know no service at all (a window without
                # samples): nothing can be looked up, so report "could not check" (exit 3) for the
                # service as named rather than calling it unknown.
                ref = ServiceRef.parse(service, namespace or "default")
            assert isinstance(ref, ServiceRef)
            if (said := scope_note(loaded.bundle, ref)) is not None:
                note(said)
            report = run_diagnosis(snapshot, ref, settings, suppressions, checks)
        # Only the chosen renderer is imported (the others cost a few ms, xml.etree for junit).
        renderer = importlib.import_module(RENDERERS[output])
        if output == "text":
            from meshobs.render.wrap import output_width, wrap

            color = use_color(no_color)
            click.echo(wrap(renderer.render(report, color=color), output_width()), color=color)
        elif output == "json":
            # Written as it is made: a --all document is tens of MB at thousands of services.
            for part in renderer.render_parts(report, window_s=snapshot.window_s):
                click.echo(part, nl=False)
            click.echo()
        else:
            click.echo(renderer.render(report))
        from .main import keep_until_exit

        keep_until_exit(loaded, report)
        if report.status == "unknown":
            raise click.exceptions.Exit(EXIT_UNCHECKED)
        threshold = FAIL_ON[fail_on]
        if any(f.severity.weight >= threshold for f in report.findings):
            raise click.exceptions.Exit(EXIT_FINDINGS)
        raise click.exceptions.Exit(EXIT_OK)
