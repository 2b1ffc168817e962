"""``meshobs snapshot --out PATH``: record every raw payload into a bundle."""

from __future__ import annotations

import click

from .common import EXIT_UNCHECKED, handle_errors, load_bundle, note, source_options


@click.command()
@click.option("--out", "out_path", required=True, metavar="PATH",
              help="Bundle to write: a new directory, or a file ending in .tar.gz.")
@source_options
@click.option("--window", metavar="DURATION", help="Rate window (e.g. 5m).")
@handle_errors
def snapshot(out_path: str, from_path: str | None, config_path: str | None, window: str | None) -> None:
    """Record what every source returned (with the config and times, never credentials).

    Replay it later with --from PATH on any command, with no network.
    """
    from meshobs.bundle import write_bundle

    bundle, _config, origin = load_bundle(from_path, config_path, window=window)
    path = write_bundle(bundle, out_path)
    payloads = sum(len(s.payloads) for s in bundle.sources)
    failed = [s.name for s in bundle.sources if s.error or any(p.failure() for p in s.payloads)]
    note(f"wrote {path} ({len(bundle.sources)} sources, {payloads} payloads, from {origin})")
    for name in failed:
        note(f"{name}: recorded with errors (they replay as 'could not check')")
    if bundle.sources and len(failed) == len(bundle.sources):
        raise click.exceptions.Exit(EXIT_UNCHECKED)
