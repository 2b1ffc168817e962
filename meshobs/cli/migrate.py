"""``meshobs migrate``: leave AWS App Mesh for Istio.

``appmesh-to-istio`` translates App Mesh configuration into Istio manifests and checks them
(round trip, Istio CRD schemas); ``verify`` compares the service graph before and after the
cut-over. Both exit 0 when everything held, 1 when something did not (a finding), 2 on bad
input, 3 when there was nothing to check.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from meshobs.cli.common import EXIT_FINDINGS, EXIT_UNCHECKED, UsageError, handle_errors, note

if TYPE_CHECKING:
    from meshobs.istio_schema import SchemaIssue
    from meshobs.migrate.manifest import Manifest


@click.group("migrate")
def migrate() -> None:
    """Leave AWS App Mesh: translate its configuration to Istio, verify the cut-over."""


def schema_issues(manifests: list[Manifest]) -> list[tuple[str, SchemaIssue]]:
    """(file, issue) for every Istio manifest that does not validate (Namespaces are plain Kubernetes)."""
    from meshobs.istio_schema import validate

    return [(m.filename, issue) for m in manifests if m.doc["apiVersion"] != "v1" for issue in validate(m.doc)]


@migrate.command("appmesh-to-istio")
@click.option("--from", "from_path", required=True, metavar="DIR|BUNDLE",
              help="App Mesh configuration: a directory or file of appmesh.k8s.aws CRDs and describe-* / "
                   "create-* JSON (templates filled from the environment), a bundle, or demo:NAME.")
@click.option("--out", "out", required=True, metavar="DIR", help="Write one YAML file per Istio resource here.")
@click.option("--namespace", metavar="NS",
              help="Namespace for resources translated from App Mesh API exports (they have none); default: "
                   "the one their hostname names, else the mesh name.")
@click.option("--force", is_flag=True, help="Write into a non-empty --out (files of the same name are replaced).")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Format of the report on stdout.")
@handle_errors
def appmesh_to_istio(from_path: str, out: str, namespace: str | None, force: bool, fmt: str) -> None:
    """Translate App Mesh configuration into Istio resources, then check them.

    Every App Mesh field is translated or listed (MIGRATION.md in --out) with the reason and the
    closest Istio construct. The result is read back as Istio configuration and compared with
    the App Mesh routing and TLS (round trip), and validated against Istio's CRD schemas.

    \b
    Exit codes:
      0  translated; round trip and schemas clean
      1  translated, but the round trip found a difference or a manifest does not validate
      2  bad input (unreadable file, unset template variable) or --out not empty
      3  no App Mesh configuration in the input
    """
    from meshobs.migrate.report import text, to_json
    from meshobs.migrate.roundtrip import round_trip
    from meshobs.migrate.source import SourceError, load
    from meshobs.migrate.translate import translate
    from meshobs.migrate.write import OutputNotEmpty, write

    try:
        source = load(from_path)
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    translation = translate(source.resources, namespace)
    if not translation.resources:
        note(f"no App Mesh configuration (appmesh.k8s.aws CRDs or App Mesh API JSON) in {from_path}")
        raise click.exceptions.Exit(EXIT_UNCHECKED)
    differences = round_trip(translation)
    schema = schema_issues(translation.manifests)
    try:
        write(translation, out, force=force)
    except OutputNotEmpty as exc:
        raise UsageError(str(exc)) from None
    if fmt == "json":
        click.echo(json.dumps(to_json(translation, differences, schema), indent=2, default=str))
    else:
        click.echo(text(translation, differences, schema, out), nl=False)
    if differences or any(i.severity == "error" for _f, i in schema):
        raise click.exceptions.Exit(EXIT_FINDINGS)


@migrate.command("verify")
@click.option("--before", "before", required=True, metavar="BUNDLE",
              help="The mesh before the cut-over (App Mesh): a bundle or demo:NAME.")
@click.option("--after", "after", metavar="BUNDLE",
              help="The mesh after the cut-over (Istio): a bundle or demo:NAME; default: collect now "
                   "from the configuration (--config).")
@click.option("--config", "config_path", metavar="FILE", help="meshobs.yaml for a live --after.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.option("--tolerance", type=float, default=None, metavar="RATIO",
              help="How much worse an edge's error ratio or p99 may get before it counts (default 0.2: 20%%).")
@handle_errors
def verify(before: str, after: str | None, config_path: str | None, fmt: str, tolerance: float | None) -> None:
    """Compare the service graph before (App Mesh) and after (Istio) the cut-over, edge by edge.

    \b
    Exit codes:
      0  every edge the same or better
      1  an edge got worse, went missing, or a route or TLS changed
      2  usage or configuration error
      3  could not check (no edges on one side)
    """
    from meshobs.cli.common import load_snapshot
    from meshobs.migrate.verify import DEFAULT_TOLERANCE, compare
    from meshobs.migrate.verify_report import render

    if after is None and config_path is None:
        raise UsageError("--after BUNDLE, or --config for a live collection of the mesh after the cut-over")
    old = load_snapshot(before, None, quiet_demo=True).snapshot
    new = load_snapshot(after, config_path, quiet_demo=True).snapshot
    result = compare(old, new, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)
    click.echo(render(result, fmt), nl=False)
    if not result.checkable:
        raise click.exceptions.Exit(EXIT_UNCHECKED)
    if result.failed:
        raise click.exceptions.Exit(EXIT_FINDINGS)
