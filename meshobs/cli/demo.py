"""``meshobs demo``: the built-in demo meshes."""

from __future__ import annotations

import sys
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
    from meshobs.demo.catalog import list_demos, list_library

    demos = [*list_demos(), *list_library(),
             ("generated-N", "a generated mesh of N services (e.g. generated-200), built on the fly for scale tests")]
    width = max(len(n) for n, _ in demos)
    for name, description in demos:
        click.echo(f"{name:<{width}}  {description}")


@demo.command("export")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Write into DIRECTORY even when it is not empty "
              "(files of the same name are overwritten).")
@handle_errors
def export(name: str, directory: str, force: bool) -> None:
    """Write the intended (Git) manifests of demo NAME into DIRECTORY (new or empty, unless
    --force).

    Then: meshobs drift --intended DIRECTORY --from demo:NAME
    """
    from meshobs.demo.catalog import DemoNotFound, DirectoryNotEmpty, export_intended

    try:
        paths = export_intended(name, directory, force=force)
    except DirectoryNotEmpty as exc:
        raise UsageError(f"{exc}; give --force to overwrite") from None
    except DemoNotFound as exc:
        raise UsageError(str(exc)) from None
    note(f"wrote {len(paths)} manifests to {directory}")


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    from meshobs.durations import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@demo.command("serve")
@click.argument("name", default="ecommerce")
@click.option("--workdir", type=click.Path(file_okay=False),
              help="Where to write meshobs.yaml and data: a new or empty directory (default: a new "
                   "temporary one).")
@click.option("--for", "limit", default=None, metavar="DURATION", callback=_duration,
              help="Stop after this long, e.g. 30s or 5m (default: until Ctrl-C or SIGTERM).")
@click.option("--recording-rules", "rules", type=click.Choice(["none", "edges", "all"]), default="edges",
              show_default=True,
              help="Recording rules the demo's Prometheus loads and evaluates over its data: edges "
                   "(meshobs's edge:* rules: seconds of start-up, even at 5,000 services), all (Istio's "
                   "workload:* rules too, as config/prometheus-recording-rules.yaml ships them: minutes "
                   "and GBs at 1,000 services), none (the raw metrics only, as a Prometheus without "
                   "the rules).")
@handle_errors
def serve(name: str, workdir: str | None, limit: float | None, rules: str) -> None:
    """Serve demo NAME live on loopback (Envoy admin, Jaeger, Kubernetes API, and a real
    Prometheus when one is installed) and write a meshobs.yaml that points at it.

    Prints the config path on stdout once serving. Ctrl-C, SIGTERM and --for all stop every
    server, Prometheus included, and exit 0.
    """
    import tempfile
    from pathlib import Path

    from meshobs.demo.catalog import DemoNotFound
    from meshobs.demo.promserver import RulesNotEvaluated
    from meshobs.demo.serve import StopOnSigterm, WorkdirInUse, serve_scenario

    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="meshobs-demo-"))
    try:
        with StopOnSigterm() as stop:
            live = None
            try:
                with stop.hold():  # a SIGTERM while starting stops the servers once all are up
                    live = serve_scenario(name, base, recording_rules=rules)
            except KeyboardInterrupt:
                # Raised as the hold ends, before `with live` could stop them (Prometheus would
                # be left running, orphaned).
                if live is not None:
                    live.stop()
                raise
            with live:
                # Validated once here, so the user's first command on it reads the record
                # (meshobs.config_cache): 0.5 s of every command for a 5,000-service demo.
                from meshobs.config import load_config

                load_config(str(live.config_path))
                note(f"serving demo {name}; try: meshobs graph --config {live.config_path}")
                click.echo(str(live.config_path))
                sys.stdout.flush()  # a supervisor waits for this line; stdout may be a pipe
                start = time.monotonic()
                while limit is None or time.monotonic() - start < limit:
                    time.sleep(0.5)
    except WorkdirInUse as exc:
        raise UsageError(f"--workdir {exc}") from None
    except DemoNotFound as exc:
        raise UsageError(str(exc)) from None
    except RulesNotEvaluated as exc:
        raise UsageError(f"{exc}; serve without them with --recording-rules none") from None
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (Terminated): every server is stopped by now
        pass
