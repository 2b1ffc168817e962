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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.registry import Collector

from meshobs.redact import redact_text

from .compare import Drift


class PushError(Exception):
    """The Pushgateway did not take the metrics; says where and why."""


class DriftMetrics(Collector):
    """The drift series of one run, as a prometheus_client collector (exposition, escaping,
    the textfile and the Pushgateway protocol are the library's)."""

    def __init__(self, drifts: Iterable[Drift], *, last_run: float, last_success: float | None,
                 check_errors_total: int, across_runs: bool = True) -> None:
        self.counts = Counter((d.resource.kind, d.resource.namespace, d.resource.name, d.layers)
                              for d in drifts if d.ignored is None)
        self.last_run, self.last_success = last_run, last_success
        self.check_errors_total, self.across_runs = check_errors_total, across_runs

    def collect(self) -> Iterator[Metric]:
        resources = GaugeMetricFamily(
            "meshobs_drift_resources", "Configuration differences of a resource between two layers "
            "(intended, live, effective), ignored ones excluded.", labels=["kind", "namespace", "name", "layers"])
        for labels, n in sorted(self.counts.items()):
            resources.add_metric(list(labels), n)
        yield resources
        yield GaugeMetricFamily("meshobs_drift_last_run_timestamp_seconds", "When the drift check last ran.",
                                value=self.last_run)
        success = GaugeMetricFamily("meshobs_drift_last_success_timestamp_seconds",
                                    "When the drift check last compared the layers.")
        if self.last_success is not None:  # never succeeded: no sample, so absent() alerts
            success.add_metric([], self.last_success)
        yield success
        yield CounterMetricFamily(
            "meshobs_drift_check_errors",
            "Drift runs that could not (fully) check the configuration, counted in the state directory."
            if self.across_runs else
            "Whether this drift run could not (fully) check the configuration (0 or 1): no --state-dir, "
            "so it counts this run only; give --state-dir for a count across runs.",
            value=self.check_errors_total)


def registry(drifts: Iterable[Drift], *, last_run: float, last_success: float | None,
             check_errors_total: int, across_runs: bool = True) -> CollectorRegistry:
    """A registry holding only the drift series; ``across_runs=False`` when there is no state
    directory, so ``check_errors_total`` only counts this run (the HELP text then says so)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(DriftMetrics(drifts, last_run=last_run, last_success=last_success,
                              check_errors_total=check_errors_total, across_runs=across_runs))
    return reg


def render(drifts: Iterable[Drift], *, last_run: float, last_success: float | None,
           check_errors_total: int, across_runs: bool = True) -> str:
    """The metrics in the Prometheus text format (the arguments are :func:`registry`'s)."""
    reg = registry(drifts, last_run=last_run, last_success=last_success,
                   check_errors_total=check_errors_total, across_runs=across_runs)
    return generate_latest(reg).decode("utf-8")


def write_textfile(path: str | Path, reg: CollectorRegistry) -> Path:
    """Write the textfile atomically for node-exporter's ``--collector.textfile.directory``
    (prometheus_client writes a temporary file beside it, not ending in ``.prom``, then renames)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(target), reg)
    return target


def push(url: str, reg: CollectorRegistry, *, job: str = "meshobs_drift",
         grouping: Mapping[str, str] | None = None, timeout_s: float = 10.0) -> None:
    """PUT the metrics to a Pushgateway (replacing the group's previous push)."""
    shown = redact_text(url)  # the URL may carry user:password or a token
    # urllib does not read user:password@ in a URL (it looked the whole "user:pass@host" up as a
    # host name): the credentials go as Basic auth, the URL without them.
    gateway, handler = _basic_auth(url)
    try:
        push_to_gateway(gateway, job=job, registry=reg, grouping_key=dict(grouping or {}), timeout=timeout_s,
                        handler=handler)
    except OSError as exc:  # urllib's URLError / HTTPError, and the library's IOError for non-2xx
        reason = redact_text(str(getattr(exc, "reason", None) or exc))
        raise PushError(f"cannot push metrics to the Pushgateway at {shown} ({reason}); "
                        "check --pushgateway and that the Pushgateway is reachable") from None


def _basic_auth(url: str) -> tuple[str, Any]:
    """(the URL without user-info, the push handler sending it as Basic auth, else the default)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None:
        return url, default_handler
    host = parts.netloc.rpartition("@")[2]
    username, password = unquote(parts.username), unquote(parts.password or "")

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                data: bytes) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password)  # type: ignore[no-any-return]

    return urlunsplit(parts._replace(netloc=host)), handler
