"""What every command shares: where the snapshot comes from, errors, exit codes.

Exit codes (the same for every command): 0 ok, 1 findings/drift at or above --fail-on,
2 usage or configuration error, 3 could not check (no source answered).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from meshobs.bundle import Bundle, BundleError
from meshobs.config import Config, ConfigError, load_config
from meshobs.model import MeshSnapshot
from meshobs.redact import redact_text, register_config_secrets

if TYPE_CHECKING:
    from .progress import Progress

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_UNCHECKED = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(click.ClickException):
    """Bad input from the user (exit 2)."""

    exit_code = EXIT_USAGE


class InternalError(click.ClickException):
    """A bug in meshobs: the run could not check anything trustworthy (exit 3, not 1,
    so alerting never mistakes a crash for findings)."""

    exit_code = EXIT_UNCHECKED


def source_options(fn: F) -> F:
    """``--from PATH`` and ``--config FILE``, shared by every command that reads a mesh."""
    fn = click.option("--config", "config_path", metavar="FILE", envvar=None,
                      help="meshobs.yaml to use (default: $MESHOBS_CONFIG, then the user config dir).")(fn)
    fn = click.option("--from", "from_path", metavar="PATH",
                      help="Replay a recorded bundle (directory or .tar.gz), or 'demo' / 'demo:NAME'.")(fn)
    return fn


@dataclass
class Loaded:
    bundle: Bundle
    snapshot: MeshSnapshot
    config: Config | None
    origin: str


def note(message: str) -> None:
    """One line on stderr (never stdout, which belongs to the command's output), credentials
    in it (URL user-info, tokens) masked: notes quote URLs."""
    click.echo(f"meshobs: {redact_text(message)}", err=True)


def progress_printer() -> Progress | None:
    """Collection progress (a rich status line) when stderr is a terminal, else None."""
    from .progress import progress_on_terminal

    return progress_on_terminal()


def load_bundle(from_path: str | None, config_path: str | None, *, window: str | None = None,
                quiet_demo: bool = False,
                adjust: Callable[[Config | None], Config | None] | None = None) -> tuple[Bundle, Config | None, str]:
    """The raw bundle to work on: --from, else a live collection from the config, else the demo.

    ``adjust`` rewrites the loaded configuration first (``diagnose -f DIR --config-only``).
    """
    from meshobs.durations import parse_duration

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise UsageError(redact_text(str(exc))) from None
    if adjust is not None:
        config = adjust(config)
    if config is not None:
        register_config_secrets(config.raw)  # masked in every message and bundle from now on
    if window is not None:
        try:
            seconds = parse_duration(window)
        except ValueError as exc:
            raise UsageError(f"--window: {exc}") from None
        if config is not None:
            config = Config(raw=config.raw, path=config.path, window_s=seconds, time=config.time,
                            mesh=config.mesh)
    if window is not None and (from_path is not None or config is None):
        note(f"--window {window} applies to a live collection only; a recorded bundle keeps the window "
             f"it was recorded with")
    if from_path is None and config is None:
        from_path = "demo"
        if not quiet_demo:
            note("no configuration found (--config, $MESHOBS_CONFIG, ~/.config/meshobs/meshobs.yaml); "
                 "showing the built-in demo mesh")
    if from_path is not None:
        if from_path == "demo" or from_path.startswith("demo:"):
            from meshobs.demo.catalog import DemoNotFound, load_demo

            name = from_path.partition(":")[2] or None
            try:
                bundle = load_demo(name)
            except DemoNotFound as exc:
                raise UsageError(str(exc)) from None
            return bundle, config, f"demo:{bundle.name}"
        from meshobs.bundle import read_bundle

        try:
            return read_bundle(from_path), config, from_path
        except BundleError as exc:
            raise UsageError(str(exc)) from None
    assert config is not None
    if config.is_empty:
        raise UsageError(f"{config.path}: no sources configured (add sources.prometheus.url, ...); "
                         "see config/meshobs.example.yaml")
    from meshobs.collect import collect

    show = progress_printer()
    try:
        bundle = collect(config, progress=show)
    finally:
        if show:
            show.close()
    return bundle, config, "live"


def load_snapshot(from_path: str | None, config_path: str | None, *, window: str | None = None,
                  quiet_demo: bool = False,
                  adjust: Callable[[Config | None], Config | None] | None = None) -> Loaded:
    from meshobs.collect import build_snapshot

    bundle, config, origin = load_bundle(from_path, config_path, window=window, quiet_demo=quiet_demo,
                                         adjust=adjust)
    return Loaded(bundle, build_snapshot(bundle, origin=origin), config, origin)


def handle_errors(fn: F) -> F:
    """Expected failures become one clear line and exit 2; --debug shows tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (ConfigError, BundleError) as exc:
            raise UsageError(redact_text(str(exc))) from None
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            raise click.exceptions.Exit(0) from None
        except Exception as exc:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and ctx.find_root().params.get("debug"):
                raise
            raise InternalError(
                f"internal error: {type(exc).__name__}: {redact_text(str(exc))} "
                "(run with --debug for the traceback)"
            ) from None

    return wrapper  # type: ignore[return-value]
