"""``meshobs demo``: the built-in demo meshes."""

from __future__ import annotations

import time

import click

from .common import UsageError, handle_errors, note


@click.group()
def demo() -> None:
    """Built-in demo meshes: use them with --from demo:NAME on any command."""


@demo.command("list")
@handle_errors
def list_() -> None:
    """List the built-in demo bundles with a one-line description."""
    from meshobs.demo.catalog import list_demos

    demos = list_demos()
    width = max(len(n) for n, _ in demos)
    for name, description in demos:
        click.echo(f"{name:<{width}}  {description}")


@demo.command("export")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@handle_errors
def export(name: str, directory: str) -> None:
    """Write the intended (Git) manifests of demo NAME into DIRECTORY.

    Then: meshobs drift --intended DIRECTORY --from demo:NAME
    """
    from meshobs.demo.catalog import DemoNotFound, export_intended

    try:
        paths = export_intended(name, directory)
    except DemoNotFound as exc:
        raise UsageError(str(exc)) from None
    note(f"wrote {len(paths)} manifests to {directory}")


@demo.command("serve")
@click.argument("name", default="ecommerce")
@click.option("--workdir", type=click.Path(file_okay=False), help="Where to write meshobs.yaml and data.")
@click.option("--for", "duration", default=None, metavar="DURATION",
              help="Stop after this long (default: until Ctrl-C).")
@handle_errors
def serve(name: str, workdir: str | None, duration: str | None) -> None:
    """Serve demo NAME live on loopback (Envoy admin, Jaeger, Kubernetes API, and a real
    Prometheus when one is installed) and write a meshobs.yaml that points at it."""
    import tempfile
    from pathlib import Path

    from meshobs.demo.catalog import DemoNotFound
    from meshobs.demo.serve import serve_scenario
    from meshobs.durations import parse_duration

    limit = parse_duration(duration) if duration else None
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="meshobs-demo-"))
    try:
        live = serve_scenario(name, base)
    except DemoNotFound as exc:
        raise UsageError(str(exc)) from None
    with live:
        note(f"serving demo {name}; try: meshobs graph --config {live.config_path}")
        click.echo(str(live.config_path))
        start = time.monotonic()
        try:
            while limit is None or time.monotonic() - start < limit:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
