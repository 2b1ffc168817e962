"""Drift as Prometheus metrics: a node-exporter textfile, and optionally a Pushgateway push.

Series (text exposition format 0.0.4):

* ``meshobs_drift_resources{kind,namespace,name,layers}`` gauge: drift items (not ignored) of
  that resource in that layer pair; absent when the resource does not drift;
* ``meshobs_drift_last_run_timestamp_seconds`` gauge: when the check last ran;
* ``meshobs_drift_last_success_timestamp_seconds`` gauge: when it last could check (alert when
  this is old: the job fails or stopped);
* ``meshobs_drift_check_errors_total`` counter: runs that could not (fully) check, kept in the
  state directory. Without ``--state-dir`` there is nowhere to keep it: it is 0 or 1 for this
  run only (its HELP line says so), which ``increase()`` misses when several runs in a row
  fail; alert on its value then (``> 0``), or give ``--state-dir``.

The textfile is replaced atomically (node-exporter must never read half a file); the temporary
file does not end in ``.prom``, so the collector ignores it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

import requests

from meshobs.redact import redact_text

from .compare import Drift
from .state import atomic_write


class PushError(Exception):
    """The Pushgateway did not take the metrics; says where and why."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def render(drifts: Iterable[Drift], *, last_run: float, last_success: float | None,
           check_errors_total: int, across_runs: bool = True) -> str:
    """The metrics in the Prometheus text format; ``across_runs=False`` when there is no state
    directory, so ``check_errors_total`` only counts this run (the HELP text then says so)."""
    counts = Counter((d.resource.kind, d.resource.namespace, d.resource.name, d.layers)
                     for d in drifts if d.ignored is None)
    lines = [
        "# HELP meshobs_drift_resources Configuration differences of a resource between two layers "
        "(intended, live, effective), ignored ones excluded.",
        "# TYPE meshobs_drift_resources gauge",
    ]
    for (kind, ns, name, layers), n in sorted(counts.items()):
        lines.append(f'meshobs_drift_resources{{kind="{_escape(kind)}",namespace="{_escape(ns)}",'
                     f'name="{_escape(name)}",layers="{_escape(layers)}"}} {n}')
    lines += [
        "# HELP meshobs_drift_last_run_timestamp_seconds When the drift check last ran.",
        "# TYPE meshobs_drift_last_run_timestamp_seconds gauge",
        f"meshobs_drift_last_run_timestamp_seconds {_num(last_run)}",
        "# HELP meshobs_drift_last_success_timestamp_seconds When the drift check last compared the layers.",
        "# TYPE meshobs_drift_last_success_timestamp_seconds gauge",
    ]
    if last_success is not None:
        lines.append(f"meshobs_drift_last_success_timestamp_seconds {_num(last_success)}")
    lines += [
        "# HELP meshobs_drift_check_errors_total " + (
            "Drift runs that could not (fully) check the configuration, counted in the state directory."
            if across_runs else
            "Whether this drift run could not (fully) check the configuration (0 or 1): no --state-dir, "
            "so it counts this run only; give --state-dir for a count across runs."),
        "# TYPE meshobs_drift_check_errors_total counter",
        f"meshobs_drift_check_errors_total {check_errors_total}",
    ]
    return "\n".join(lines) + "\n"


def write_textfile(path: str | Path, text: str) -> Path:
    """Write the textfile atomically (for node-exporter's ``--collector.textfile.directory``)."""
    target = Path(path)
    atomic_write(target, text)
    return target


def push(url: str, text: str, *, job: str = "meshobs_drift", grouping: Mapping[str, str] | None = None,
         timeout_s: float = 10.0) -> None:
    """PUT the metrics to a Pushgateway (replacing the group's previous push)."""
    path = f"/metrics/job/{quote(job, safe='')}"
    for key, value in (grouping or {}).items():
        path += f"/{quote(key, safe='')}/{quote(value, safe='')}"
    target = url.rstrip("/") + path
    shown = redact_text(target)  # the URL may carry user:password or a token
    try:
        resp = requests.put(target, data=text.encode("utf-8"), timeout=timeout_s,
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
    except requests.RequestException as exc:
        raise PushError(f"cannot push metrics to {shown} ({type(exc).__name__}); "
                        "check --pushgateway and that the Pushgateway is reachable") from None
    if not 200 <= resp.status_code < 300:
        raise PushError(f"Pushgateway {shown} answered HTTP {resp.status_code}: "
                        f"{redact_text(resp.text.strip()[:200])}")
