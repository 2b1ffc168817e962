"""``meshobs dashboard``: the interactive terminal dashboard (Textual, imported only here)."""

from __future__ import annotations

import click

from .common import UsageError, handle_errors, source_options

DEFAULT_REFRESH_S = 10.0


@click.command()
@source_options
@click.option("--refresh", "refresh_s", type=float, default=None, metavar="SECONDS",
              help="Live refresh interval (0 = only on 'r'; default: dashboard.refresh in the config, "
                   "else 10). A --from bundle is frozen in time.")
@handle_errors
def dashboard(from_path: str | None, config_path: str | None, timeout: str | None,
              refresh_s: float | None) -> None:
    """Interactive dashboard: every service worst first, then a service's traffic, proxies,
    diagnosis, critical path and configuration; each pod's Envoy as istioctl proxy-config shows
    it; a graph of a service's neighbourhood. Press ? inside for the keys, : for commands.

    With no configuration at all it shows the built-in demo mesh. Honours NO_COLOR. Keys can be
    rebound in meshobs.yaml (dashboard.keys).
    """
    if refresh_s is not None and refresh_s < 0:
        raise UsageError("--refresh must be 0 or more seconds")
    from meshobs.config import ConfigError, load_config
    from meshobs.durations import parse_duration

    # Fail on a broken config before the screen takes over the terminal.
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if from_path is not None:
        _check_from(from_path)
    section = config.section("dashboard") if config is not None else {}
    keymap = dict(section.get("keys") or {})
    from meshobs.tui.keys import check_keymap

    problems = check_keymap(keymap)
    if problems:
        where = f"{config.path}: " if config is not None and config.path else ""
        raise UsageError(where + "; ".join(problems))
    if refresh_s is None:
        refresh_s = parse_duration(section["refresh"]) if "refresh" in section else DEFAULT_REFRESH_S
    from meshobs.tui.app import make_app
    from meshobs.tui.data import SourceLoader

    # --timeout bounds each live refresh's collection. Loads are built in a process of their
    # own, so collecting and diagnosing never hold the UI's GIL (tui/load_process.py).
    make_app(loader=SourceLoader(from_path, config_path, timeout=timeout), refresh_s=refresh_s,
             keymap=keymap, process=True).run()


def _check_from(from_path: str) -> None:
    """An unknown demo or a path that is not there is a usage error (exit 2) before the screen
    takes over the terminal, as for every other command; a bundle that is there but damaged is
    the load's to report (reading a big one up front would hold the screen back)."""
    from pathlib import Path

    if from_path == "demo" or from_path.startswith("demo:"):
        from meshobs.demo.catalog import DemoNotFound, check_demo_name

        try:
            check_demo_name(from_path.partition(":")[2] or None)
        except DemoNotFound as exc:
            raise UsageError(str(exc)) from None
    elif not Path(from_path).exists():
        raise UsageError(f"{from_path}: no such bundle (expected a directory or a .tar.gz)")
