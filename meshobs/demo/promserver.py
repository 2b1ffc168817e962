"""Run a real Prometheus on loopback holding backfilled demo metrics (tests and benchmarks).

``promtool tsdb create-blocks-from openmetrics`` writes the samples as TSDB blocks; Prometheus
then starts on a free 127.0.0.1 port with no scrape targets and a retention long enough that
blocks with old timestamps are kept. Query it with an explicit ``time`` inside the backfilled
range: an instant query only sees samples from the 5 minutes before its evaluation time.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

import requests

READY_TIMEOUT_S = 60.0
ATTEMPTS = 5
BACKFILL_TIMEOUT_S = 600.0
# Bytes of OpenMetrics text per promtool run (see backfill).
BACKFILL_PART_BYTES = 512 * 1024 * 1024


class PrometheusServer:
    """A running Prometheus (or VictoriaMetrics); ``stop()`` (or leaving the ``with`` block) ends it."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, workdir: Path, log: Path,
                 engine: str = "prometheus") -> None:
        self.process = process
        self.url = url
        self.workdir = workdir
        self.log = log
        self.engine = engine  # prometheus | victoriametrics: both speak the Prometheus query API

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def prometheus_available(binary: str = "prometheus", promtool: str = "promtool") -> bool:
    """True when both the server and promtool are on PATH."""
    return shutil.which(binary) is not None and shutil.which(promtool) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def backfill(openmetrics_text: str | Iterable[str], workdir: Path, promtool: str = "promtool",
             part_bytes: int | None = None) -> Path:
    """Write OpenMetrics samples as TSDB blocks under ``workdir/tsdb``; returns that path.

    ``openmetrics_text`` is the whole text or its pieces in order (each ending in a newline, as
    :func:`meshobs.demo.prometheus.openmetrics_chunks` makes them). Pieces go to a file of about
    ``part_bytes`` at most (default ``BACKFILL_PART_BYTES``), backfilled and deleted before the
    next is written: promtool maps its input file whole (generated-5000 is ~16 GB of text), so
    a part bounds both the disk and the pages it touches. Each part is a complete OpenMetrics
    document; the parts' blocks overlap in time, which Prometheus (>= 2.39) reads as one.
    """
    part_bytes = part_bytes or BACKFILL_PART_BYTES
    workdir.mkdir(parents=True, exist_ok=True)
    tsdb = workdir / "tsdb"
    tsdb.mkdir(exist_ok=True)
    source = workdir / "metrics.om"
    if isinstance(openmetrics_text, str):
        source.write_text(openmetrics_text, encoding="utf-8")
        _backfill_part(source, tsdb, promtool)
        return tsdb
    family = ""  # the "# TYPE" line a part continues, repeated at the top of the next part
    out = None
    size = 0
    try:
        for piece in openmetrics_text:
            if piece.startswith("# TYPE "):
                family = piece
            elif piece.startswith("# EOF"):
                continue
            if out is None:
                out = source.open("w", encoding="utf-8")
                if piece is not family:
                    out.write(family)
            out.write(piece)
            size += len(piece)
            if size >= part_bytes:
                out.write("# EOF\n")
                out.close()
                out, size = None, 0
                _backfill_part(source, tsdb, promtool)
        if out is not None:
            out.write("# EOF\n")
            out.close()
            out = None
            _backfill_part(source, tsdb, promtool)
    finally:
        if out is not None:
            out.close()
        source.unlink(missing_ok=True)
    return tsdb


def _backfill_part(source: Path, tsdb: Path, promtool: str) -> None:
    """One promtool run over ``source`` (deleted after: the blocks hold it now; a text can be GBs)."""
    try:
        done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
                              capture_output=True, text=True, timeout=BACKFILL_TIMEOUT_S, check=False)
    finally:
        source.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"promtool could not backfill the metrics (exit {done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-800:]}")


class RulesNotEvaluated(RuntimeError):
    """The recording rules could not be evaluated over the backfilled data (promtool failed or
    ran past its time): the server is stopped; serving without the rules is the way round."""


def start_prometheus(openmetrics_text: str | Iterable[str], workdir: Path, *, binary: str = "prometheus",
                     promtool: str = "promtool", rules: Path | None = None,
                     rules_range: tuple[float, float] | None = None) -> PrometheusServer:
    """Backfill ``openmetrics_text`` and start Prometheus on it; waits until ``/-/ready``.

    With ``rules`` (a recording-rules file) the server loads it, and the rules are evaluated
    over ``rules_range`` (unix seconds, the backfilled span) with ``promtool tsdb
    create-blocks-from rules`` -- Prometheus itself only evaluates rules at the current time --
    after which the server restarts on the raw and the recorded blocks together.

    Raises RuntimeError (with the end of the server's log) when backfill or start-up fails or
    the server is not ready within a minute; the process is stopped in that case.
    """
    tsdb = backfill(openmetrics_text, workdir, promtool)
    config = workdir / "prometheus.yml"
    rule_files = f"rule_files: [{json.dumps(str(rules))}]\n" if rules is not None else ""
    config.write_text("global:\n  scrape_interval: 15s\n" + rule_files + "scrape_configs: []\n",
                      encoding="utf-8")
    server = _start(binary, config, tsdb, workdir)
    if rules is None:
        return server
    try:
        start, end = rules_range or (0.0, 0.0)
        out = workdir / "rule-blocks"
        try:
            done = subprocess.run([promtool, "tsdb", "create-blocks-from", "rules", f"--start={start:.0f}",
                                   f"--end={end:.0f}", f"--url={server.url}", f"--output-dir={out}", str(rules)],
                                  capture_output=True, text=True, timeout=BACKFILL_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise RulesNotEvaluated(f"promtool did not finish evaluating the recording rules within "
                                    f"{BACKFILL_TIMEOUT_S:g} s") from None
        if done.returncode != 0:
            raise RulesNotEvaluated(f"promtool could not evaluate the recording rules (exit {done.returncode}): "
                                    f"{(done.stderr or done.stdout).strip()[-800:]}")
    finally:
        server.stop()
    for block in out.iterdir() if out.exists() else ():
        if block.is_dir():
            shutil.move(str(block), str(tsdb / block.name))
    return _start(binary, config, tsdb, workdir)


def _start(binary: str, config: Path, tsdb: Path, workdir: Path) -> PrometheusServer:
    log = workdir / "prometheus.log"

    def command(port: int) -> list[str]:
        return [binary, f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
                # Backfilled samples are old: keep them, however far in the past they are.
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]

    def ours(server: PrometheusServer) -> bool:
        flags = requests.get(f"{server.url}/api/v1/status/flags", timeout=5).json().get("data", {})
        return Path(str(flags.get("storage.tsdb.path", ""))).resolve() == tsdb.resolve()

    return launch(command, workdir, log, "prometheus", "/-/ready", ours)


def launch(command: Callable[[int], list[str]], workdir: Path, log: Path, name: str, ready_path: str,
           ours: Callable[[PrometheusServer], bool], engine: str = "prometheus") -> PrometheusServer:
    """Start a server on a free loopback port and make sure the one answering is ours.

    A free port is only free when it is picked: a parallel test worker may take it before our
    server binds it. Then our process exits (address in use) while the other worker's server
    answers ``ready`` -- and the tests would read someone else's data. So the answering server
    must prove it runs on our data directory (``ours``), and a lost race is retried on another
    port.
    """
    last = ""
    for _attempt in range(ATTEMPTS):
        port = free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(command(port), stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
        server = PrometheusServer(process, f"http://127.0.0.1:{port}", workdir, log, engine=engine)
        try:
            wait_ready(server, f"{server.url}{ready_path}", name)
            if server.process.poll() is None and ours(server):
                return server
            last = f"port {port} is answered by another {name}"
        except RuntimeError as exc:
            last = str(exc)
            if "address already in use" not in last:
                raise
        except (requests.RequestException, ValueError) as exc:
            last = f"{name} on port {port} did not say what it serves: {exc}"
        server.stop()
    raise RuntimeError(f"{name} could not start on a port of its own after {ATTEMPTS} tries: {last}")


def wait_ready(server: PrometheusServer, ready_url: str, name: str) -> None:
    """Wait until ``ready_url`` answers 200; stop the server and raise when it never does."""
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {server.process.returncode}: {tail(server.log)}")
            try:
                if requests.get(ready_url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:g} s: {tail(server.log)}")
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM) or failed while waiting: never leave the child running.
        server.stop()
        raise
