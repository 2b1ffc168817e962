"""``meshobs drift``: the scheduled drift check (Git vs cluster vs proxies).

Exit codes: 0 no drift at or above --fail-on; 1 drift at or above --fail-on; 2 usage or
configuration error (also: no configuration and no --from, or no intended layer without
--no-intended); 3 could not check (a configured layer could not be read, fewer than two
layers to compare) and no drift to report, or the result could not be delivered (the state
directory, the textfile or the Pushgateway failed), whatever drift was found.

Why delivery beats drift: a scheduled job pushing to a Pushgateway relies on the alerts built on
those metrics; with exit 1 for "drift found" a broken alerting path would look like an ordinary
drift run. Exit 3 says "the alerting path is broken"; the drift is still printed on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meshobs.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_UNCHECKED,
    UsageError,
    handle_errors,
    load_bundle,
    note,
    source_options,
)
from meshobs.redact import register_secret, register_url

FAIL_ON = ("error", "warning", "never")
DRIFT_NEEDS = frozenset({"pods", "config", "effective"})


def _setting(cli_value: Any, section: dict[str, Any], key: str, default: Any = None) -> Any:
    if cli_value not in (None, (), []):
        return cli_value
    return section.get(key, default)


@click.command("drift")
@click.option("--intended", "intended", multiple=True, metavar="DIR",
              help="Git manifests (directory or file; repeatable): Istio and App Mesh YAML/JSON, "
                   "Kustomize/Helm output rendered to YAML. Default: drift.intended in the config.")
@source_options
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="Output format.")
@click.option("--state-dir", metavar="DIR",
              help="Keep the drift history here (new / ongoing / resolved, first seen) and the "
                   "check-error count (without it, meshobs_drift_check_errors_total counts this run only).")
@click.option("--textfile", metavar="PATH",
              help="Write Prometheus metrics for node-exporter's textfile collector (a .prom file).")
@click.option("--pushgateway", metavar="URL",
              help="Also push the metrics to this Pushgateway (a failed push exits 3).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when drift of this severity or worse is found (default: warning).")
@click.option("--all-namespaces", is_flag=True, default=None,
              help="Report live-only resources in every namespace, not only those the intended tree uses.")
@click.option("--no-intended", is_flag=True,
              help="Compare live and effective only, with no Git layer. Without this flag a missing "
                   "intended layer is a usage error, so a job that lost --intended cannot stay green.")
@handle_errors
def drift(intended: tuple[str, ...], from_path: str | None, config_path: str | None, timeout: str | None,
          fmt: str,
          state_dir: str | None, textfile: str | None, pushgateway: str | None, fail_on: str | None,
          all_namespaces: bool | None, no_intended: bool) -> None:
    """Compare intended (Git), live (API) and effective (Envoy) configuration and report drift.

    \b
    Exit codes:
      0  no drift at or above --fail-on
      1  drift at or above --fail-on
      2  usage or configuration error; no configuration (and no
         --from); no intended layer (and no --no-intended)
      3  could not check (a layer unreadable, fewer than two layers)
         and no drift found; or the result was not delivered
         (--state-dir, --textfile or --pushgateway failed), even
         with drift found: the alerting path is broken
    """
    from meshobs.collect import build_snapshot
    from meshobs.config import ConfigError, find_config
    from meshobs.drift.ignore import rules_from_config
    from meshobs.drift.run import check, intended_from_paths
    from meshobs.raw import utc_now

    try:
        found = find_config(config_path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if found is None and from_path is None:
        # Other commands fall back to the demo; a scheduled drift check on the demo would report
        # the demo's state forever while looking healthy.
        raise UsageError("no configuration found (--config, $MESHOBS_CONFIG, ~/.config/meshobs/meshobs.yaml): "
                         "drift needs one to know the cluster; pass --from demo:weight-drift to try the demo")
    # Envoy is asked for its effective configuration only (see FetchContext.needs).
    bundle, config, origin = load_bundle(from_path, config_path, timeout=timeout, needs=DRIFT_NEEDS,
                                         keep_raw=False)
    section = config.section("drift") if config is not None else {}
    paths = list(_setting(intended, section, "intended", []) or [])
    if paths and no_intended:
        raise UsageError("--no-intended with an intended layer (--intended or drift.intended): choose one")
    if not paths and not no_intended:
        raise UsageError("no intended layer: give --intended DIR (or drift.intended in the config); "
                         "to compare live and effective only, pass --no-intended")
    missing = [p for p in paths if not Path(p).expanduser().exists()]
    if missing:
        raise UsageError(f"--intended: no such file or directory: {', '.join(missing)}")
    fail_on = _setting(fail_on, section, "fail_on", "warning")
    state_dir = _setting(state_dir, section, "state_dir")
    textfile = _setting(textfile, section, "textfile")
    pushgateway = _setting(pushgateway, section, "pushgateway")
    if pushgateway:
        register_url(pushgateway)  # its user:password never reaches stderr or a report
        _refuse_query(pushgateway)
    rules = rules_from_config(section.get("ignore"))

    now = utc_now()
    snapshot = build_snapshot(bundle, origin=origin, keep_raw=False)
    resources, intended_state = intended_from_paths(paths, bundle.time) if paths else (None, None)
    run = check(resources, intended_state, snapshot, rules=rules, now=now,
                all_namespaces=bool(_setting(all_namespaces, section, "all_namespaces", False)))
    if not run.checked and not run.problems:
        run.problems.append("fewer than two layers to compare: give --intended DIR and a live or Envoy source")

    delivery_failed = _record_and_publish(run, now, state_dir, textfile, pushgateway)
    from meshobs.catalogue import Severity
    from meshobs.drift.report import render

    out = render(run, fmt)
    if fmt == "text":
        from meshobs.render.wrap import output_width, wrap

        out = wrap(out, output_width())
    click.echo(out, nl=False)
    if delivery_failed:  # before drift: the metrics/history the alerts read are stale (see above)
        raise click.exceptions.Exit(EXIT_UNCHECKED)
    worst = run.worst()
    if fail_on != "never" and worst is not None and worst.weight >= Severity(fail_on).weight:
        raise click.exceptions.Exit(EXIT_FINDINGS)
    if not run.checked or run.problems:
        raise click.exceptions.Exit(EXIT_UNCHECKED)
    raise click.exceptions.Exit(EXIT_OK)


def _record_and_publish(run: Any, now: Any, state_dir: str | None, textfile: str | None,
                        pushgateway: str | None) -> bool:
    """History, textfile and push; returns True when one of them failed (said on stderr)."""
    from meshobs.drift.metrics import PushError, push, registry, write_textfile
    from meshobs.drift.state import StateError, StateStore

    failed = False
    if state_dir:
        try:
            # The run's time is taken under the state directory's lock, so overlapping runs
            # are numbered and timed in the order they were recorded.
            run.record = StateStore(Path(state_dir).expanduser()).record(
                run.drifts if run.checked else None, checked=set(run.checked),
                error=None if run.checked else "; ".join(run.problems) or "nothing checked",
                incomplete=bool(run.problems), partly=set(run.partly_checked))
        except (StateError, OSError) as exc:
            note(f"cannot record drift history: {exc}")
            failed = True
    if not (textfile or pushgateway):
        return failed
    record = run.record
    metrics = registry(run.drifts, last_run=(record.run_at if record else now).timestamp(),
                  last_success=record.last_success if record else (now.timestamp() if run.complete else None),
                  check_errors_total=record.check_errors_total if record else (0 if run.complete else 1),
                  across_runs=record is not None)
    if textfile:
        try:
            write_textfile(Path(textfile).expanduser(), metrics)
        except OSError as exc:
            note(f"cannot write metrics textfile {textfile} ({exc.strerror}); check --textfile")
            failed = True
    if pushgateway:
        try:
            push(pushgateway, metrics)
        except PushError as exc:
            note(str(exc))
            failed = True
    return failed


def _refuse_query(pushgateway: str) -> None:
    """A Pushgateway URL is a base the job's path is appended to: a query string (an auth proxy's
    ``?key=...``) would end up before that path, so the push could only fail, and its values may be
    credentials whose names the redaction does not know; they are masked, and the URL refused."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(pushgateway)
    if not parts.query and not parts.fragment:
        return
    for _key, value in parse_qsl(parts.query, keep_blank_values=True):
        register_secret(value)
    raise UsageError("--pushgateway: a Pushgateway URL takes no query string or fragment (meshobs appends "
                     "/metrics/job/...); give credentials as https://user:password@host")
