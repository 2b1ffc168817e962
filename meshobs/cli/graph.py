"""``meshobs graph``: the normalised service graph (all of it, or one neighbourhood)."""

from __future__ import annotations

import click

from .common import EXIT_UNCHECKED, UsageError, handle_errors, load_snapshot, source_options


@click.command()
@source_options
@click.option("-o", "--output", type=click.Choice(["text", "json", "dot", "mermaid"]), default="text",
              show_default=True, help="Output format.")
@click.option("--window", metavar="DURATION", help="Rate window for a live collection (e.g. 5m).")
@click.option("--service", metavar="NAME", help="Only this service, its callers and its callees.")
@click.option("--namespace", "-n", metavar="NS",
              help="Only the services of this namespace and their peers (with --service: where NAME is).")
@click.option("--health/--no-health", default=True, show_default=True,
              help="Mark each service's health (failing, degraded, healthy, unknown) from the diagnosis.")
@handle_errors
def graph(from_path: str | None, config_path: str | None, timeout: str | None, output: str,
          window: str | None,
          service: str | None, namespace: str | None, health: bool) -> None:
    """Show the service graph: edges with request rate, error %, p99 and mTLS; in DOT and
    Mermaid also each service's health, plaintext edges dashed and erroring edges red.

    Exits 3 when no source answered at all.
    """
    from dataclasses import replace

    from meshobs.render.graph import RENDERERS, focus, to_text
    from meshobs.render.wrap import output_width

    from .diagnose import resolve

    loaded = load_snapshot(from_path, config_path, window=window, timeout=timeout)
    snap = loaded.snapshot
    if namespace and not service and not any(s.namespace == namespace for s in snap.services):
        known = ", ".join(sorted({s.namespace for s in snap.services})) or "none"
        raise UsageError(f"no service in namespace {namespace!r} (namespaces: {known})")
    ref = resolve(snap, service, namespace) if service else None
    marks = focus(snap, ref, None if service else namespace)  # type: ignore[arg-type]
    if health:
        marks = replace(marks, health=_health(snap, marks.keep))
    if output == "text":
        click.echo(to_text(snap, marks, width=output_width()))
    else:
        click.echo(RENDERERS[output](snap, marks))
    if snap.sources and not any(s.ok for s in snap.sources):
        raise click.exceptions.Exit(EXIT_UNCHECKED)


def _health(snapshot: object, keep: frozenset[str] | None) -> dict[str, str]:
    """Each drawn service's status from the diagnosis engine, as `diagnose --all` and the
    dashboard judge it (the whole mesh is diagnosed: a root cause may lie outside the focus)."""
    from meshobs.engine import diagnose_all
    from meshobs.model import MeshSnapshot

    assert isinstance(snapshot, MeshSnapshot)
    return {str(r.service): r.status for r in diagnose_all(snapshot).reports
            if keep is None or str(r.service) in keep}
