"""A new user's report on ``meshobs drift``: summary counts and timestamps in the text output,
the check-error counter without a state directory, and the exit code of a failed push."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families

from meshobs.cli.main import cli
from meshobs.demo.catalog import export_intended
from meshobs.demo.httpserver import LoopbackHTTPServer, Request, Response
from meshobs.drift.report import when
from meshobs.words import plural


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def git(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("git")
    export_intended("weight-drift", path)
    return path


def _weight_drift(git: Path, *extra: str) -> Result:
    return run("drift", "--intended", str(git), "--from", "demo:weight-drift", *extra)


def test_plural_and_when() -> None:
    assert [plural(n, "error") for n in (0, 1, 2)] == ["0 errors", "1 error", "2 errors"]
    assert plural(1, "proxy", "proxies") == "1 proxy" and plural(3, "proxy", "proxies") == "3 proxies"
    assert when("2026-11-20T12:00:00.123456Z") == "2026-11-20 12:00:00Z"
    assert when("2026-11-20T13:00:00+01:00") == "2026-11-20 12:00:00Z"


def test_summary_counts_match_the_json(git: Path, tmp_path: Path) -> None:
    """The headline counts (differences, errors, warnings) are the JSON summary's numbers."""
    data = json.loads(_weight_drift(git, "-o", "json").output)["summary"]
    headline = _weight_drift(git).output.splitlines()[0]
    counts = re.search(r"(\d+) differences? \((\d+) errors?, (\d+) warnings?\)", headline)
    assert counts is not None, headline
    assert tuple(int(g) for g in counts.groups()) == (data["drift"], data["error"], data["warning"]) == (3, 2, 1)


def test_since_is_shown_to_the_second(git: Path, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    _weight_drift(git, "--state-dir", state)
    stored = {d["first_seen"] for d in json.loads(_weight_drift(git, "--state-dir", state, "-o", "json")
                                                  .output)["drift"]}
    assert len(stored) == 1 and "." in stored.pop()  # kept with microseconds in the state
    text = _weight_drift(git, "--state-dir", state).output
    # Text output wraps at 80 columns, possibly between the date and the time.
    shown = [" ".join(m) for m in re.findall(r"since\s+(\S+)\s+(\S+)\]", text)]
    assert len(shown) == 3
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", s) for s in shown), shown


def _errors_family(prom: Path) -> tuple[str, float]:
    fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    fam = fams["meshobs_drift_check_errors"]
    return fam.documentation, fam.samples[0].value


def test_check_errors_counted_across_runs_only_with_a_state_dir(tmp_path: Path) -> None:
    """A live layer that cannot be read (manifests that do not exist) is a failed check: with a
    state dir the count grows run by run; without, it is this run's 0/1 and the HELP text says so."""
    git = tmp_path / "git"
    export_intended("healthy", git)
    config = tmp_path / "meshobs.yaml"
    config.write_text(f"sources:\n  kubernetes:\n    manifests: [{tmp_path / 'missing.yaml'}]\n")
    args = ("drift", "--intended", str(git), "--config", str(config))
    with_state = tmp_path / "with.prom"
    for _ in range(2):
        assert run(*args, "--textfile", str(with_state), "--state-dir", str(tmp_path / "s")).exit_code == 3
    help_text, value = _errors_family(with_state)
    assert value == 2 and "this run only" not in help_text
    without = tmp_path / "without.prom"
    for _ in range(2):
        assert run(*args, "--textfile", str(without)).exit_code == 3
    help_text, value = _errors_family(without)
    assert value == 1 and "this run only" in help_text and "--state-dir" in help_text


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed on return: nothing listens there


def test_failed_push_exits_3_even_with_drift(git: Path) -> None:
    """Drift found (exit 1 otherwise) but the Pushgateway answers 500: exit 3, drift still printed."""
    with LoopbackHTTPServer(lambda _r: Response(500, "storage full\n", "text/plain")) as gateway:
        result = _weight_drift(git, "-o", "json", "--pushgateway", gateway.url)
        assert [r.method for r in gateway.requests] == ["PUT"]
    assert result.exit_code == 3
    assert json.loads(result.stdout)["summary"]["drift"] == 3
    unreachable = _weight_drift(git, "--pushgateway", f"http://127.0.0.1:{_unused_port()}")
    assert unreachable.exit_code == 3


def test_successful_push_keeps_the_drift_exit_code(git: Path) -> None:
    def accept(request: Request) -> Response:
        return Response(200 if request.method == "PUT" else 405, "", "text/plain")

    with LoopbackHTTPServer(accept) as gateway:
        assert _weight_drift(git, "--pushgateway", gateway.url).exit_code == 1
        assert _weight_drift(git, "--pushgateway", gateway.url, "--fail-on", "never").exit_code == 0
        [put, _] = gateway.requests
    assert put.path_only == "/metrics/job/meshobs_drift"
    assert b"meshobs_drift_resources{" in put.body


def test_push_with_user_and_password_in_the_url_sends_basic_auth(git: Path) -> None:
    """A Pushgateway behind Basic auth, given as http://user:pass@host (the shape
    docs/reliability.md names): urllib took "user:pass@host" for a host name, so every push failed
    (exit 3) with 'Name or service not known'. The credentials now go as an Authorization header."""
    import base64

    def accept(request: Request) -> Response:
        return Response(200 if request.method == "PUT" else 405, "", "text/plain")

    with LoopbackHTTPServer(accept) as gateway:
        url = gateway.url.replace("http://", "http://drift:p%40ss@")
        result = _weight_drift(git, "--pushgateway", url)
        [put] = gateway.requests
    assert result.exit_code == 1, result.output
    assert put.path_only == "/metrics/job/meshobs_drift"
    assert put.headers["Authorization"] == "Basic " + base64.b64encode(b"drift:p@ss").decode()
