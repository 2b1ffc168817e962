"""``meshobs dashboard``: the interactive terminal dashboard (Textual, imported only here)."""

from __future__ import annotations

import click

from .common import UsageError, handle_errors, source_options


@click.command()
@source_options
@click.option("--refresh", "refresh_s", type=float, default=10.0, show_default=True, metavar="SECONDS",
              help="Live refresh interval (0 = only on 'r'). A --from bundle is frozen in time.")
@handle_errors
def dashboard(from_path: str | None, config_path: str | None, timeout: str | None, refresh_s: float) -> None:
    """Interactive dashboard: every service worst first, then a service's traffic, proxies,
    diagnosis, critical path and configuration. Press ? inside for the keys.

    With no configuration at all it shows the built-in demo mesh. Honours NO_COLOR.
    """
    if refresh_s < 0:
        raise UsageError("--refresh must be 0 or more seconds")
    from meshobs.config import ConfigError, load_config

    # Fail on a broken config before the screen takes over the terminal.
    try:
        load_config(config_path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    from meshobs.tui.app import make_app
    from meshobs.tui.data import SourceLoader

    # --timeout bounds each live refresh's collection.
    make_app(loader=SourceLoader(from_path, config_path, timeout=timeout), refresh_s=refresh_s).run()
