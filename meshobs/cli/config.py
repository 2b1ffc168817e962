"""``meshobs config``: check a meshobs.yaml without collecting anything, print its JSON Schema."""

from __future__ import annotations

import json

import click

from .common import EXIT_USAGE, UsageError, handle_errors


@click.group("config")
def config() -> None:
    """Check a meshobs.yaml, or print the JSON Schema for your editor."""


@config.command("check")
@click.argument("file", required=False, metavar="[FILE]")
@handle_errors
def check(file: str | None) -> None:
    """Validate FILE (default: $MESHOBS_CONFIG, then the user config dir) without contacting
    any source. Every problem is listed on stderr, each naming its key.

    Exits 0 when the file is valid, 2 when it is not (or there is none).
    """
    from meshobs.config import ConfigError, find_config, load_config

    try:
        path = find_config(file)
        if path is None:
            raise UsageError("no configuration found to check (give FILE, or set $MESHOBS_CONFIG)")
        cfg = load_config(str(path))
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"meshobs: {line}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    assert cfg is not None
    for line in cfg.tls_warnings():
        click.echo(f"meshobs: warning: {line}", err=True)
    sources = ", ".join(cfg.sources) or "none (commands would say so and exit 2)"
    click.echo(f"{path}: valid (mesh {cfg.mesh}, window {cfg.raw.get('window', '5m')}, sources: {sources})")


@config.command("schema")
def schema() -> None:
    """Print the JSON Schema of meshobs.yaml (e.g. for yaml-language-server:
    ``# yaml-language-server: $schema=meshobs.schema.json`` at the top of the file)."""
    from meshobs.config_model import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
