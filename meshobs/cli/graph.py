"""``meshobs graph``: the normalised service graph."""

from __future__ import annotations

import click

from .common import EXIT_UNCHECKED, handle_errors, load_snapshot, source_options


@click.command()
@source_options
@click.option("-o", "--output", type=click.Choice(["text", "json", "dot", "mermaid"]), default="text",
              show_default=True, help="Output format.")
@click.option("--window", metavar="DURATION", help="Rate window for a live collection (e.g. 5m).")
@handle_errors
def graph(from_path: str | None, config_path: str | None, timeout: str | None, output: str,
          window: str | None) -> None:
    """Show the service graph: edges with request rate, error % and p99.

    Exits 3 when no source answered at all.
    """
    from meshobs.render.graph import RENDERERS

    loaded = load_snapshot(from_path, config_path, window=window, timeout=timeout)
    click.echo(RENDERERS[output](loaded.snapshot))
    snap = loaded.snapshot
    if snap.sources and not any(s.ok for s in snap.sources):
        raise click.exceptions.Exit(EXIT_UNCHECKED)
