"""``meshobs explain [CODE]``: a finding's documentation page, from the installed package."""

from __future__ import annotations

import click

from .common import UsageError, handle_errors


@click.command()
@click.argument("code", required=False)
@handle_errors
def explain(code: str | None) -> None:
    """Print what finding CODE (e.g. MSH0406) means, how it shows up, how to confirm it by hand
    and how to fix it. Without CODE, list every code with its severity and title.

    Exits 2 for an unknown code.
    """
    import difflib

    from meshobs.catalogue import CATALOGUE
    from meshobs.catalogue.pages import page

    if code is None:
        for c in sorted(CATALOGUE.values(), key=lambda c: c.code):
            click.echo(f"{c.code}  {c.severity.value:<7}  {c.title}")
        return
    wanted = code.strip().upper()
    if wanted.isdigit():
        wanted = f"MSH{int(wanted):04d}"
    if wanted not in CATALOGUE:
        close = difflib.get_close_matches(wanted, list(CATALOGUE), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"unknown finding code {code!r}{hint}; `meshobs explain` lists them all")
    text = page(wanted)
    if text is None:  # a packaging bug, not the user's: say what is known
        c = CATALOGUE[wanted]
        text = f"# {c.code}: {c.title}\n\nSeverity: {c.severity.value}\n\n(no page installed for this code)"
    click.echo(text.rstrip("\n"))
