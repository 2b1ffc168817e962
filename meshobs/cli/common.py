"""What every command shares: where the snapshot comes from, errors, exit codes.

Exit codes (the same for every command): 0 ok, 1 findings/drift at or above --fail-on,
2 usage or configuration error, 3 could not check (no source answered).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from meshobs.bundle import Bundle, BundleError
from meshobs.config import Config, ConfigError, load_config
from meshobs.model import MeshSnapshot
from meshobs.redact import redact_text, register_config_once

if TYPE_CHECKING:
    import threading

    from .progress import Progress

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_UNCHECKED = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(click.ClickException):
    """Bad input from the user (exit 2)."""

    exit_code = EXIT_USAGE


class RunDeadlinePassed(BaseException):
    """The run's deadline (--timeout) passed after collection, and even the report of what was
    judged before it (see :func:`hold_deadline`) was not printed in time.
    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` isolation boundary
    (a check's, a source's) takes it for that part's failure and goes on."""


class InternalError(click.ClickException):
    """A bug in meshobs: the run could not check anything trustworthy (exit 3, not 1,
    so alerting never mistakes a crash for findings)."""

    exit_code = EXIT_UNCHECKED


def source_options(fn: F) -> F:
    """``--from PATH``, ``--config FILE`` and ``--timeout``, shared by every command that reads a mesh."""
    from meshobs.collectors.netbound import DEFAULT_RUN_TIMEOUT_S

    fn = click.option("--timeout", "timeout", metavar="DURATION", default=None,
                      help="Deadline for the whole run of a live collection, counted from the start "
                           "and printing included: collection stops early enough to leave a tenth "
                           "of it (1-5 s; a quarter, at most 60 s, when the whole mesh is diagnosed "
                           "or printed) for diagnosing and printing, and sources that have not "
                           "answered by then are reported 'could not check'. Near the deadline no "
                           "further check runs: those not run say 'could not check' and what was judged "
                           "is printed; a run still printing half a second past the deadline stops, with "
                           "exit code 3 and a line on stderr. A replay (--from) is not bounded "
                           f"(default: timeout in the config, else {DEFAULT_RUN_TIMEOUT_S:g}s).")(fn)
    fn = click.option("--config", "config_path", metavar="FILE", envvar=None,
                      help="meshobs.yaml to use (default: $MESHOBS_CONFIG, then the user config dir).")(fn)
    fn = click.option("--from", "from_path", metavar="PATH",
                      help="Replay a recorded bundle (directory or .tar.gz), or 'demo' / 'demo:NAME'.")(fn)
    fn = click.option("--no-model-cache", is_flag=True, expose_value=False, callback=_no_model_cache,
                      help="Normalise a recorded archive's raw payloads even when it carries their "
                           "normalised model (also MESHOBS_MODEL_CACHE=0).")(fn)
    return fn


def _no_model_cache(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    from meshobs import modelcache

    modelcache.allow(not value)  # each command says (tests run many in one process)


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


def run_started() -> float:
    """``time.monotonic()`` when this command started (now, outside a command)."""
    ctx = click.get_current_context(silent=True)
    started = ctx.find_root().meta.get(STARTED) if ctx is not None else None
    return float(started) if started is not None else time.monotonic()


STARTED = "meshobs.started"


def run_deadline(timeout: str | None, config: Config | None) -> float:
    """The whole run's deadline (``time.monotonic()``), counted from the command's start."""
    return run_started() + run_timeout_s(timeout, config)


def run_timeout_s(timeout: str | None, config: Config | None) -> float:
    """--timeout, else the config's ``timeout``, else the default, in seconds."""
    from meshobs.collectors.netbound import DEFAULT_RUN_TIMEOUT_S
    from meshobs.durations import parse_duration

    text = timeout if timeout is not None else (config.raw.get("timeout") if config is not None else None)
    try:
        seconds = parse_duration(text) if text is not None else DEFAULT_RUN_TIMEOUT_S
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    if seconds <= 0:
        raise UsageError("--timeout: must be longer than 0s")
    return seconds


def load_bundle(from_path: str | None, config_path: str | None, *, window: str | None = None,
                quiet_demo: bool = False, timeout: str | None = None, needs: frozenset[str] | None = None,
                question: Any = None, keep_raw: bool = True, stream: bool = False,
                adjust: Callable[[Config | None], Config | None] | None = None,
                imported: Callable[[threading.Event], None] | None = None,
                label: Callable[[Config], str] | None = None) -> tuple[Bundle, Config | None, str]:
    """The raw bundle to work on: --from, else a live collection from the config, else the demo.

    ``timeout`` is --timeout (see :func:`run_deadline`); ``needs``, ``question``, ``keep_raw``
    and ``imported`` are passed to :func:`meshobs.collect.collect` (what the command reads; a
    two-phase scoped collection; whether the bundle will be written, or only normalised; what
    to do once the collectors' modules are imported).
    ``stream``: a recorded bundle's sources are left to be read one at a time by
    ``build_snapshot`` (``Bundle.stream``). ``adjust`` rewrites the loaded configuration first
    (``diagnose -f DIR --config-only``); ``label`` names what a collection from that configuration
    read (the origin returned; default "live").
    """
    from meshobs.durations import parse_duration

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise UsageError(redact_text(str(exc))) from None
    if adjust is not None:
        config = adjust(config)
    if config is not None:
        register_config_once(config.raw)  # masked in every message and bundle from now on
    deadline = run_deadline(timeout, config)
    if window is not None:
        try:
            seconds = parse_duration(window)
        except ValueError as exc:
            raise UsageError(f"--window: {exc}") from None
        if seconds <= 0:  # as the config's window: a [0s] range is a PromQL parse error
            raise UsageError(f"--window: must be longer than 0s, got {window!r}")
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
        from meshobs.bundle import iter_bundle, read_bundle

        try:
            if stream:
                header, sources = iter_bundle(from_path)
                header.stream = sources
                return header, config, from_path
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
        bundle = collect(config, progress=show, deadline=deadline, needs=needs, question=question,
                         keep_raw=keep_raw, imported=imported)
    finally:
        if show:
            show.close()
    if any(s.kind == "kubernetes" and s.error for s in bundle.sources):
        # Asked only once the source failed: parsing the kubeconfig up front would put a YAML
        # import (0.1 s on a loaded machine) on every live run's critical path.
        from meshobs.kubecontext import unknown_context

        if (why := unknown_context(config.sources.get("kubernetes"))) is not None:
            raise UsageError(why)
    hold_deadline(deadline, run_timeout_s(timeout, config))
    return bundle, config, label(config) if label is not None else "live"


# The analysis may run this far past the deadline before it is stopped: the promise is "the
# command exits within --timeout plus a second" (docs/reliability.md), and with a short
# --timeout on a loaded machine the interpreter's imports for printing alone can take half a
# second (measured: graph with --timeout 3s at load 13, its 0.5 s left after collection). Not
# more: the process must still say why and exit in the rest of that second (on a loaded machine
# 0.25 s was not always enough; a single-service run's analysis has at least 1 s of its own,
# meshobs.collect.RESERVE_MIN_S).
HOLD_GRACE_S = 0.5
# Judging stops when this share of the time left after collection (at most FINISH_MAX_S)
# remains before the deadline: what was judged must still be ranked and printed. Finishing a
# --all cut short costs about 40 % of a whole diagnosis (measured on the generated 1,000-service
# replay, load 4-5: diagnosis 2.65 s and JSON 0.13 s whole; cut at its start 0.69 s and JSON
# 0.44 s, its lines longer), and a third of the time left keeps that within the deadline for a
# diagnosis that would have needed up to about 1.5 times its share.
FINISH_SHARE, FINISH_MAX_S = 1 / 3, 15.0


def hold_deadline(deadline: float, timeout_s: float) -> None:
    """Bound what follows a live collection (normalising, diagnosing, printing) by the run's
    deadline, in two steps:

    * shortly before ``deadline`` (FINISH_SHARE), no further check runs (:mod:`meshobs.cutoff`):
      each says "could not check: the run's deadline ... was reached before it ran", and what
      was judged is ranked and printed, with a line on stderr -- a partial report, with the
      exit code of its status (issue 9: what answered is used);
    * at ``deadline`` plus HOLD_GRACE_S, if even that is not done, the main thread gets
      :class:`RunDeadlinePassed` (handle_errors turns it into a line on stderr and exit 3).

    Disarmed when the command's context closes.

    A user runs meshobs from a CronJob or an alerting probe: a run that overruns is killed by
    the job's own limit without a word, or piles up. A deadline that holds, with an exit code
    that says what could not be checked, is what alerting can rely on. Only the main thread can
    take a signal: elsewhere (a worker of the dashboard) nothing is armed."""
    import signal
    import threading

    from meshobs import cutoff

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    left = max(0.0, deadline - time.monotonic())
    hard = deadline + HOLD_GRACE_S
    stopped = {"hard": False}

    def passed(_signum: int, _frame: object) -> None:
        # Runs on the main thread between two bytecodes: the first time it only sets a flag
        # that the runner reads between checks (nothing is interrupted half-way).
        if cutoff.reason is None:
            cutoff.stop(cutoff.deadline_reason(timeout_s))
            signal.setitimer(signal.ITIMER_REAL, max(1e-3, hard - time.monotonic()))
            return
        stopped["hard"] = True
        raise RunDeadlinePassed

    before = signal.signal(signal.SIGALRM, passed)
    # (A zero interval would disarm the timer: past the point already, it fires at once.)
    signal.setitimer(signal.ITIMER_REAL, max(1e-3, left - min(FINISH_MAX_S, FINISH_SHARE * left)))

    def disarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
        if cutoff.cut() and not stopped["hard"]:
            note(f"the run's deadline (--timeout {timeout_s:g}s) was reached while diagnosing: the checks "
                 f"not run by then say 'could not check'; raise --timeout, or narrow the question "
                 f"(diagnose SERVICE)")
        cutoff.resume()

    ctx.call_on_close(disarm)


def load_snapshot(from_path: str | None, config_path: str | None, *, window: str | None = None,
                  quiet_demo: bool = False, timeout: str | None = None, question: Any = None,
                  adjust: Callable[[Config | None], Config | None] | None = None,
                  imported: Callable[[threading.Event], None] | None = None,
                  label: Callable[[Config], str] | None = None) -> Loaded:
    """The snapshot to work on. Its bundle is not written afterwards, so a recorded bundle's
    sources are read one at a time and each source's raw bodies are dropped once normalised
    (``Loaded.bundle`` keeps times, scope and config)."""
    from meshobs.collect import build_snapshot

    bundle, config, origin = load_bundle(from_path, config_path, window=window, quiet_demo=quiet_demo,
                                         timeout=timeout, question=question, keep_raw=False, stream=True,
                                         adjust=adjust, imported=imported, label=label)
    return Loaded(bundle, build_snapshot(bundle, origin=origin, keep_raw=False), config, origin)


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
        except RunDeadlinePassed:
            note(f"the run's deadline (--timeout) passed while finishing the report: no verdict "
                 f"(exit {EXIT_UNCHECKED}); raise --timeout, or narrow the question (diagnose SERVICE)")
            raise click.exceptions.Exit(EXIT_UNCHECKED) from None
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
