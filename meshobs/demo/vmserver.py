"""Run a real VictoriaMetrics on loopback holding the same demo metrics as :mod:`.promserver`.

The single-node ``victoria-metrics`` binary (Debian package ``victoria-metrics``) starts on a
free 127.0.0.1 port with a temporary ``-storageDataPath``; the OpenMetrics text of
:func:`meshobs.demo.prometheus.openmetrics` is imported through its Prometheus text-format
import API (timestamps converted to milliseconds), and recording rules are evaluated over the
imported span by ``vmalert`` in replay mode, writing back into the same server. Tests and
benchmarks then send it exactly the queries they send Prometheus.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import requests

from .promserver import BACKFILL_TIMEOUT_S, PrometheusServer, launch, tail

IMPORT_CHUNK_LINES = 200_000


def victoriametrics_available(binary: str = "victoria-metrics", vmalert: str = "vmalert") -> bool:
    """True when both the server and vmalert are on PATH."""
    return shutil.which(binary) is not None and shutil.which(vmalert) is not None


def _prometheus_text(openmetrics_text: str) -> Iterator[str]:
    """OpenMetrics lines -> Prometheus exposition lines with millisecond timestamps."""
    for line in openmetrics_text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, ts = line.rsplit(" ", 1)
        yield f"{head} {round(float(ts) * 1000)}"


def _import(url: str, openmetrics_text: str) -> None:
    batch: list[str] = []

    def flush() -> None:
        if batch:
            done = requests.post(f"{url}/api/v1/import/prometheus", data="\n".join(batch) + "\n",
                                 timeout=BACKFILL_TIMEOUT_S)
            if done.status_code >= 300:
                raise RuntimeError(f"VictoriaMetrics refused the import: HTTP {done.status_code} "
                                   f"{done.text[:300]}")
            batch.clear()

    for line in _prometheus_text(openmetrics_text):
        batch.append(line)
        if len(batch) >= IMPORT_CHUNK_LINES:
            flush()
    flush()


def _flush(url: str) -> None:
    """Make everything written so far searchable now (not after the next periodic flush)."""
    requests.get(f"{url}/internal/resetRollupResultCache", timeout=30)
    done = requests.get(f"{url}/internal/force_flush", timeout=120)
    if done.status_code >= 300:
        raise RuntimeError(f"VictoriaMetrics force_flush answered HTTP {done.status_code}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def start_victoriametrics(openmetrics_text: str, workdir: Path, *, binary: str = "victoria-metrics",
                          vmalert: str = "vmalert", rules: Path | None = None,
                          rules_range: tuple[float, float] | None = None) -> PrometheusServer:
    """Start VictoriaMetrics, import ``openmetrics_text`` and (with ``rules``) replay the
    recording rules over ``rules_range`` (unix seconds); the server is ready to query.

    Raises RuntimeError (with the end of the log) when start-up, import or replay fails; the
    process is stopped in that case.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "victoria-metrics.log"
    data = workdir / "vmdata"

    def command(port: int) -> list[str]:
        return [binary, f"-storageDataPath={data}", f"-httpListenAddr=127.0.0.1:{port}",
                # The demo's samples are old: keep them whatever their age.
                "-retentionPeriod=100y", "-loggerLevel=ERROR", "-search.disableCache",
                # Its own 30 s cap on any query would override the timeout meshobs sends on a
                # loaded machine: let meshobs's timeout decide, as on a tuned production server.
                "-search.maxQueryDuration=10m"]

    def ours(server: PrometheusServer) -> bool:
        flags = requests.get(f"{server.url}/flags", timeout=5).text
        return f'-storageDataPath="{data}"' in flags

    server = launch(command, workdir, log, "victoria-metrics", "/health", ours, engine="victoriametrics")
    try:
        _import(server.url, openmetrics_text)
        _flush(server.url)
        if rules is not None:
            start, end = rules_range or (0.0, 0.0)
            done = subprocess.run(
                [vmalert, f"-rule={rules}", f"-datasource.url={server.url}",
                 f"-remoteWrite.url={server.url}", f"-replay.timeFrom={_iso(start)}",
                 f"-replay.timeTo={_iso(end)}", "-replay.rulesDelay=0s",
                 # Evaluate at the rules' own interval; vmalert's default step is 5m, which
                 # leaves a recorded sample every 5 minutes only.
                 "-datasource.queryStep=0s",
                 "-replay.disableProgressBar", "-loggerLevel=ERROR", "-httpListenAddr=127.0.0.1:0"],
                capture_output=True, text=True, timeout=BACKFILL_TIMEOUT_S, check=False, cwd=workdir)
            if done.returncode != 0:
                raise RuntimeError(f"vmalert could not replay the recording rules (exit {done.returncode}): "
                                   f"{(done.stderr or done.stdout).strip()[-800:]}")
            _flush(server.url)
    except BaseException as exc:
        server.stop()
        if isinstance(exc, requests.RequestException):
            raise RuntimeError(f"VictoriaMetrics import failed: {exc}: {tail(log)}") from exc
        raise
    return server
