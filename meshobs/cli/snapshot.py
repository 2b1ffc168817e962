"""``meshobs snapshot --out PATH``: record every raw payload into a bundle."""

from __future__ import annotations

import click

from .common import EXIT_UNCHECKED, UsageError, handle_errors, load_bundle, note, source_options


@click.command()
@click.option("--out", "out_path", required=True, metavar="PATH",
              help="Bundle to write: a new directory, or a file ending in .tar.gz.")
@source_options
@click.option("--window", metavar="DURATION", help="Rate window (e.g. 5m).")
@click.option("--service", metavar="SERVICE",
              help="Record only what `diagnose SERVICE` reads (its neighbourhood: the service, its "
                   "callers and what it calls), as a live diagnose of it collects; default: everything.")
@click.option("-n", "--namespace", metavar="NS", help="Namespace of --service when its name is ambiguous.")
@handle_errors
def snapshot(out_path: str, from_path: str | None, config_path: str | None, timeout: str | None,
             window: str | None, service: str | None, namespace: str | None) -> None:
    """Record what every source returned (with the config and times, never credentials).

    Replay it later with --from PATH on any command, with no network. With --service, a replay
    of `diagnose SERVICE` gives the answer a live run gave.
    """
    from .diagnose import scoped_question

    if namespace and not service:
        raise UsageError("--namespace goes with --service")
    from pathlib import Path

    from meshobs.bundle import write_bundle
    from meshobs.collect import build_snapshot
    from meshobs.model import SourceState

    out = Path(out_path)
    if out.suffix in (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz") and not out.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"--out {out_path}: write a directory or a .tar.gz archive")
    if out.name.endswith((".tar.gz", ".tgz")) and out.exists():
        raise UsageError(f"--out {out_path}: file exists; choose a new name (a bundle is never overwritten)")
    if service and from_path is not None:
        raise UsageError("--service narrows a live collection; a recorded bundle is written as it is")
    question = scoped_question(service, namespace) if service else None
    bundle, _config, origin = load_bundle(from_path, config_path, window=window, timeout=timeout,
                                         question=question)
    try:
        path = write_bundle(bundle, out)
    except OSError as exc:  # a read-only or full file system, a directory that refuses files
        raise UsageError(f"--out {out_path}: cannot write the bundle ({exc.strerror or exc})") from None
    payloads = sum(len(s.payloads) for s in bundle.sources)
    note(f"wrote {path} ({len(bundle.sources)} sources, {payloads} payloads, from {origin})")
    # Judge by what the sources mean, not by raw HTTP codes: a 404 for a CRD that is not
    # installed is an answer, not an error.
    statuses = build_snapshot(bundle).sources
    failed = [s for s in statuses if s.state is SourceState.ERROR]
    for s in failed:
        note(f"{s.name}: recorded with errors ({s.message}); it replays as 'could not check'")
    if statuses and len(failed) == len(statuses):
        raise click.exceptions.Exit(EXIT_UNCHECKED)
