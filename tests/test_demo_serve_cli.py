"""``meshobs demo serve`` and ``meshobs demo export`` as a new user runs them: SIGTERM stops the
real Prometheus child too, a busy or non-empty directory is refused, a bad --for is a usage error."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meshobs.cli.main import cli
from meshobs.demo.serve import StopOnSigterm, Terminated


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _processes_using(path: Path) -> list[int]:
    """PIDs whose command line mentions ``path`` (read from /proc; zombies have an empty one)."""
    needle = str(path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in cmdline and b"prometheus" in cmdline:
            found.append(int(entry.name))
    return found


def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(timeout=left):
            raise AssertionError(f"no line on stdout within {timeout_s:g} s (got {buf!r})")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            raise AssertionError(f"stdout closed (exit {proc.poll()}); got {buf!r}")
        buf += chunk
    return buf.decode().strip()


@pytest.mark.slow
@pytest.mark.prometheus
def _no_prometheus_left(tsdb: Path) -> None:
    deadline = time.monotonic() + 10
    while _processes_using(tsdb) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(tsdb) == []


def _clean_up(proc: subprocess.Popen[bytes], tsdb: Path) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in _processes_using(tsdb):  # only this test's own Prometheus
        os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_prometheus_too(tmp_path: Path, require_prometheus: None) -> None:
    workdir = tmp_path / "demo"
    tsdb = workdir / "prometheus" / "tsdb"
    proc = subprocess.Popen([sys.executable, "-m", "meshobs", "demo", "serve", "healthy", "--workdir", str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert _read_line(proc, 180) == str(workdir / "meshobs.yaml")
        assert len(_processes_using(tsdb)) == 1  # the real Prometheus serves the demo's TSDB
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        _no_prometheus_left(tsdb)
    finally:
        _clean_up(proc, tsdb)


def test_sigterm_while_starting_stops_prometheus_too(tmp_path: Path, require_prometheus: None) -> None:
    """SIGTERM before the demo is up is held until it is, then stops everything (it used to be
    raised before the servers were handed over, leaving Prometheus running)."""
    workdir = tmp_path / "demo"
    tsdb = workdir / "prometheus" / "tsdb"
    proc = subprocess.Popen([sys.executable, "-m", "meshobs", "demo", "serve", "healthy", "--workdir", str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (workdir / "prometheus").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # starting: the Prometheus workdir appears before Prometheus is ready
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        _no_prometheus_left(tsdb)
    finally:
        _clean_up(proc, tsdb)


def test_sigterm_while_holding_is_raised_after_the_block() -> None:
    """Starting servers is not cut in half: SIGTERM then is raised once they are all up."""
    order: list[str] = []
    with pytest.raises(Terminated), StopOnSigterm() as stop:
        with stop.hold():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler has run by now (main thread)
            order.append("started")
        order.append("serving")  # never reached
    assert order == ["started"]
    assert signal.getsignal(signal.SIGTERM) is not stop._handle  # restored


def test_sigterm_raises_like_ctrl_c_and_only_once() -> None:
    with StopOnSigterm():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)  # during cleanup: ignored, not raised again
        time.sleep(0.05)


def test_serve_refuses_a_non_empty_workdir(tmp_path: Path) -> None:
    (tmp_path / "meshobs.yaml").write_text("sources: {}\n")
    result = run("demo", "serve", "healthy", "--workdir", str(tmp_path), "--for", "1s")
    assert result.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshobs.yaml"]  # nothing started or written


def test_serve_bad_for_is_a_usage_error(tmp_path: Path) -> None:
    result = run("demo", "serve", "ecommerce", "--workdir", str(tmp_path / "w"), "--for", "abc")
    assert result.exit_code == 2
    assert "--for" in result.output
    assert not (tmp_path / "w").exists()


def test_export_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    mine = tmp_path / "istio.yaml"
    mine.write_text("# my edits\n")
    refused = run("demo", "export", "weight-drift", str(tmp_path))
    assert refused.exit_code == 2
    assert mine.read_text() == "# my edits\n" and not (tmp_path / "kubernetes.yaml").exists()
    forced = run("demo", "export", "weight-drift", str(tmp_path), "--force")
    assert forced.exit_code == 0
    assert "VirtualService" in mine.read_text() and (tmp_path / "kubernetes.yaml").exists()
    fresh = run("demo", "export", "weight-drift", str(tmp_path / "new"))  # new and empty dirs are fine
    assert fresh.exit_code == 0 and (tmp_path / "new" / "istio.yaml").exists()


def test_rules_that_cannot_be_evaluated_are_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """promtool failing (or running past its time) on the recording rules: exit 2 with the way
    round (--recording-rules none), not an internal error."""
    from meshobs.demo import promserver

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise promserver.RulesNotEvaluated("promtool did not finish evaluating the recording rules within 600 s")

    monkeypatch.setattr(promserver, "start_prometheus", refuse)
    monkeypatch.setattr(promserver, "prometheus_available", lambda *_a: True)
    result = CliRunner().invoke(cli, ["demo", "serve", "--workdir", str(tmp_path / "w"), "--for", "1s"])
    assert result.exit_code == 2, result.output
    assert "--recording-rules none" in result.stderr
    assert "internal error" not in result.stderr


def test_serve_leaves_its_config_validated_for_the_first_command(tmp_path: Path) -> None:
    from meshobs.config import load_config

    workdir = tmp_path / "w"
    result = run("demo", "serve", "healthy", "--workdir", str(workdir), "--for", "0.1s", "--recording-rules", "none")
    assert result.exit_code == 0, result.output
    config = load_config(str(workdir / "meshobs.yaml"))
    assert config is not None and config.model is None  # read from the record serve left
