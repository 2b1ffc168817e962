"""``meshobs schema NAME``: the JSON Schema of an output (or of meshobs.yaml)."""

from __future__ import annotations

import json

import click

NAMES = ("config", "diagnose", "graph", "drift", "bundle")


@click.command()
@click.argument("name", type=click.Choice(NAMES))
def schema(name: str) -> None:
    """Print the JSON Schema of NAME: the -o json output of diagnose, graph or drift, a
    snapshot bundle's manifest (bundle), or meshobs.yaml (config). Each output carries
    schema_version; within a version fields are only ever added."""
    if name == "config":
        from meshobs.config_model import json_schema

        doc = json_schema()
    else:
        from meshobs.schemas import load

        doc = load(name)
    click.echo(json.dumps(doc, indent=2))
