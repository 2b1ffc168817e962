"""``meshobs checks``: every check and analyzer, with its codes, kind and what it needs.

The list is ``meshobs.checks.registry.ALL`` in checklist order; ``--check`` / ``--skip`` take
the same patterns as ``diagnose`` (an id, a glob such as ``config.*``, a code, or a kind), so a
user can see what a selection runs before running it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from .common import UsageError, handle_errors

if TYPE_CHECKING:
    from meshobs.checks.base import AnyCheck


def check_options(fn: click.decorators.FC) -> click.decorators.FC:
    """``--check`` / ``--skip``, shared by ``diagnose`` and ``checks``."""
    fn = click.option("--skip", "skip", multiple=True, metavar="ID",
                      help="Do not run checks matching ID (repeatable; same patterns as --check).")(fn)
    fn = click.option("--check", "check", multiple=True, metavar="ID",
                      help="Run only checks matching ID: an id, a glob (config.*), a code (MSH0201) or a "
                           "kind (analyzers). Repeatable. See meshobs checks.")(fn)
    return fn


def selected(include: tuple[str, ...], exclude: tuple[str, ...], config_only: bool = False) -> list[AnyCheck]:
    """The checks a command runs; a pattern matching nothing is a usage error."""
    from meshobs.checks.registry import UnknownCheck, configuration_only, select

    try:
        chosen = select(include, exclude)
    except UnknownCheck as exc:
        raise UsageError(str(exc)) from None
    return list(configuration_only(chosen) if config_only else chosen)


@click.command()
@check_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@handle_errors
def checks(check: tuple[str, ...], skip: tuple[str, ...], output: str) -> None:
    """List every check and analyzer: id, kind, category, codes, and what it needs (the inputs
    of a check; the resource kinds an analyzer reads)."""
    from meshobs.catalogue import CATALOGUE
    from meshobs.checks.base import Analyzer

    chosen: list[AnyCheck] = selected(check, skip)
    if output == "json":
        click.echo(json.dumps([{
            "id": c.id, "kind": c.kind, "category": c.category.value,
            "codes": [{"code": code, "severity": CATALOGUE[code].severity.value, "title": CATALOGUE[code].title}
                      for code in c.codes],
            "needs": list(c.needs), "uses": [] if isinstance(c, Analyzer) else list(c.uses),
            "reads": list(c.reads) if isinstance(c, Analyzer) else [],
            "mesh": c.mesh.value if c.mesh else None, "doc": c.doc} for c in chosen], indent=2))
        return
    width = max((len(c.id) for c in chosen), default=10)
    codes_width = max((len(", ".join(c.codes)) for c in chosen), default=7)
    for c in chosen:
        mesh = f" ({c.mesh.value} only)" if c.mesh else ""
        click.echo(f"{c.id:<{width}}  {c.kind:<8}  {', '.join(c.codes):<{codes_width}}  {c.requires}{mesh}")
        click.echo(f"{'':<{width}}  {c.doc}")
    analyzers = sum(1 for c in chosen if isinstance(c, Analyzer))
    click.echo(f"\n{len(chosen) - analyzers} checks (judge a service; the last column: the inputs they need) and "
               f"{analyzers} analyzers (judge configuration; the resource kinds they read). "
               "Each code: docs/findings/<CODE>.md")
