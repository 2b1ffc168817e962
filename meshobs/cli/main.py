"""The ``meshobs`` command. Subcommands live in sibling modules and import heavy libraries
(boto3, kubernetes, textual, prometheus-api-client) only when they run, so ``meshobs --help`` stays quick."""

from __future__ import annotations

import importlib
import time
from typing import Any

import click

from meshobs import __version__

# name -> (module, attribute, one-line help). Loaded only when that command is invoked.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "graph": ("meshobs.cli.graph", "graph", "Show the normalised service graph."),
    "snapshot": ("meshobs.cli.snapshot", "snapshot", "Record every raw payload into a bundle."),
    "diagnose": ("meshobs.cli.diagnose", "diagnose", "Diagnose a service: checklist, ranked root cause, evidence."),
    "checks": ("meshobs.cli.checks", "checks", "List every check and analyzer, its codes and what it needs."),
    "drift": ("meshobs.cli.drift", "drift", "Compare intended (Git), live and effective (Envoy) configuration."),
    "dashboard": ("meshobs.cli.dashboard", "dashboard", "Interactive terminal dashboard."),
    "demo": ("meshobs.cli.demo", "demo", "Built-in demo meshes: list, export, serve."),
    "explain": ("meshobs.cli.explain", "explain", "What a finding code means and how to fix it."),
    "migrate": ("meshobs.cli.migrate", "migrate", "Leave App Mesh: translate to Istio, verify the cut-over."),
    "config": ("meshobs.cli.config", "config", "Check a meshobs.yaml, or print its JSON Schema."),
    "schema": ("meshobs.cli.schema", "schema", "JSON Schema of an output (diagnose, graph, drift, bundle)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, (mod, _a, _h) in COMMANDS.items() if _available(mod))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(COMMANDS[name][0]):
            return None
        module, attr, _help = COMMANDS[name]
        # A command's modules (diagnose: the bundle, the model, ~100 dataclasses) are classes,
        # functions and tables that live until the process ends: the cycle collector's young
        # collections over them while they import (~30, ~10 ms of CPU before anything is asked)
        # find nothing to free. Moved to the oldest generation after (promote), as a paused
        # collection leaves what it made.
        from meshobs.gc_pause import gc_paused

        with gc_paused(promote=True):
            cmd: click.Command = getattr(importlib.import_module(module), attr)
        return cmd

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        # Click suggests close names from a group's eager command table, which a lazy group does
        # not have: 'meshobs diagnos' said only "No such command" (the subgroups say "Did you mean").
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2, cutoff=0.6)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {' or '.join(repr(c) for c in close)}?")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][2]) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _available(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


EPILOG = """\b
Exit codes: 0 ok; 1 findings (or drift) at or above --fail-on; 2 usage or
configuration error; 3 could not check (no source answered, or nothing could be judged).
With no configuration at all, every command uses the built-in demo mesh."""


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meshobs")
@click.option("-v", "--verbose", is_flag=True, help="Print per-source and per-check timings on stderr.")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """meshobs: one service graph for Istio and AWS App Mesh, and a diagnosis over it."""
    ctx.ensure_object(dict)
    from .common import STARTED

    ctx.meta.setdefault(STARTED, time.monotonic())  # --timeout counts from here
    if verbose:
        from meshobs.telemetry import timings_table

        ctx.call_on_close(lambda: click.echo(timings_table(), err=True))


# Objects a command leaves for the OS to reclaim at exit (see :func:`keep_until_exit`); a list
# only while the process's own command line runs (``main()`` without ``argv``).
_KEPT: list[Any] | None = None


def keep_until_exit(*objects: Any) -> None:
    """Let ``objects`` live until the process ends without the interpreter's teardown (see
    :func:`exit_without_teardown`), instead of freeing them one by one when the command's
    frame unwinds: a --all report and snapshot at 5,000 services are millions of objects
    (~0.3 s). A no-op when called from Python (``main(argv)``, tests): nothing is kept."""
    if _KEPT is not None:
        _KEPT.extend(objects)


def main(argv: list[str] | None = None) -> Any:
    """The console script (and ``python -m meshobs``). With ``argv`` (a caller in Python, a
    test) the command ends with SystemExit as click's do; without (the process's own command
    line) the process ends as soon as the command has, without the interpreter's teardown."""
    global _KEPT
    if argv is None:
        _KEPT = []
    try:
        return cli.main(args=argv, prog_name="meshobs")
    except SystemExit as exc:
        exit_now_if_stuck(exc.code)
        if argv is None:
            exit_without_teardown(exc.code)
        raise


def _status(code: Any) -> int:
    """The process's exit status for ``SystemExit(code)``, as the interpreter computes it (a
    message is printed on stderr and is status 1)."""
    import sys

    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    import contextlib
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()


def exit_without_teardown(code: Any) -> None:
    """End the process now, as the interpreter would, minus its teardown: the atexit handlers
    run (OpenTelemetry's exporters, logging's handlers), the output is flushed, then
    ``os._exit``. The teardown would free every object one by one: after a live question at
    1,000 services the heap holds millions of them (0.3 s, measured after the last atexit
    handler), all of which the OS reclaims at once. Every file meshobs writes is closed by then
    (``with`` blocks); no thread is left that is not a daemon (:func:`exit_now_if_stuck` ran)."""
    import atexit
    import os

    status = _status(code)
    _flush()
    atexit._run_exitfuncs()
    _flush()
    os._exit(status)


def exit_now_if_stuck(code: Any) -> None:
    """Exit at once when a thread that is not a daemon is still running (a library's worker
    stuck on a source past the run's deadline): the interpreter would join it at exit, and a
    CronJob would never get its exit code. Output is flushed first; nothing else is pending."""
    import os
    import threading

    stuck = [t for t in threading.enumerate()
             if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if not stuck:
        return
    status = _status(code)  # before the flush: a message code is printed on stderr
    _flush()
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
