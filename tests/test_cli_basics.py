"""The CLI as a new user meets it: help, wrong flags, missing config, unreachable sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshobs.cli.main import cli
from tests.support.loopback import unused_port

HEAVY = ("pandas", "boto3", "botocore", "kubernetes", "textual", "prometheus_api_client", "pydantic", "rich")


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_commands_and_exit_codes() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for word in ("graph", "snapshot", "demo", "Exit codes"):
        assert word in result.output


def test_help_imports_no_heavy_library() -> None:
    code = ("import sys; from meshobs.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# What a command's start-up must not import: libraries only a source, a check or a schema
# lookup needs (importlib.resources brings tempfile and shutil). ``diagnose --help`` imports the
# command's own modules (the bundle, the model) and none of these.
STARTUP_HEAVY = (*HEAVY, "numpy", "cryptography", "yaml", "requests", "urllib3", "jsonschema",
                 "oauthlib", "importlib.resources", "tempfile")


def test_diagnose_help_and_a_schema_stamp_import_no_heavy_library() -> None:
    code = ("import sys; from meshobs.cli.main import main\n"
            "from meshobs.schemas import stamp\n"
            "stamp('diagnose')\n"
            "try:\n    main(['diagnose', '--help'])\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {STARTUP_HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_schema_still_loads_where_it_is_read() -> None:
    from meshobs.schemas import VERSIONS, load

    for name in VERSIONS:
        assert load(name)["$id"]  # read from the package, as `meshobs schema` reads it


def test_the_process_ends_without_teardown_but_with_atexit_and_its_exit_code() -> None:
    """The console script skips the interpreter's teardown (os._exit): the exit code is still
    the command's, the output is all there, and atexit handlers (an exporter's flush) still run."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
            "from meshobs.cli.main import main\n"
            "main()\n"
            "print('not reached', file=sys.stderr)\n")
    usage = subprocess.run([sys.executable, "-c", code, "graph", "--frmo", "x"], capture_output=True, text=True)
    assert usage.returncode == 2
    assert "No such option" in usage.stderr and "atexit ran" in usage.stderr
    assert "not reached" not in usage.stderr
    listed = subprocess.run([sys.executable, "-c", code, "checks", "-o", "json"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)  # all of it written before the process ended
    assert listed.stderr.strip().splitlines()[-1] == "atexit ran"


def test_the_checks_and_drift_load_no_http_client() -> None:
    """They read Envoy's cluster names (collectors.envoy) but do no I/O: the fetching half
    (requests) loads only when a collector is built."""
    code = ("import sys, meshobs.collectors.envoy, meshobs.engine, meshobs.drift.run\n"
            "print('requests' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_wrong_flag_is_usage_error() -> None:
    result = CliRunner().invoke(cli, ["graph", "--frmo", "x"])
    assert result.exit_code == 2
    assert "No such option" in result.output


@pytest.mark.parametrize("typed, meant", [("diagnos", "diagnose"), ("grpah", "graph"), ("snapshto", "snapshot")])
def test_misspelt_command_suggests_the_closest(typed: str, meant: str) -> None:
    result = CliRunner().invoke(cli, [typed, "--from", "demo"])
    assert result.exit_code == 2
    assert repr(meant) in result.output


def test_missing_config_file_is_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["graph", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such config file" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["graph"], ["config", "check"]])
def test_binary_or_directory_config_is_usage_error(tmp_path: Path, command: list[str]) -> None:
    """A config that is not UTF-8 (a binary, a Latin-1 file) or is a directory is the user's
    mistake: exit 2 naming the file, never 'internal error' and exit 3."""
    binary = tmp_path / "m.yaml"
    binary.write_bytes(b"\xff\xfe\x00window: 5m\n")
    for given in (binary, tmp_path):
        result = CliRunner().invoke(cli, [*command, "--config", str(given)] if command == ["graph"]
                                    else [*command, str(given)])
        assert result.exit_code == 2, result.output
        assert "internal error" not in result.output
        assert str(given) in result.output


def test_bad_config_key_is_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("sources:\n  prometheus:\n    uri: http://x\n")
    result = CliRunner().invoke(cli, ["graph", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "sources.prometheus.uri: unknown key" in result.output


def test_missing_bundle_is_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["graph", "--from", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "no such bundle" in result.output


def test_unreachable_sources_exit_3_without_traceback(tmp_path: Path) -> None:
    port = unused_port()
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"sources:\n  prometheus:\n    url: http://127.0.0.1:{port}\n    timeout: 2s\n"
                   f"  jaeger:\n    url: http://127.0.0.1:{port}\n    timeout: 2s\n")
    result = CliRunner().invoke(cli, ["graph", "-o", "json", "--config", str(cfg)])
    assert result.exit_code == 3, result.output
    doc = json.loads(result.stdout)
    assert {s["name"]: s["status"] for s in doc["sources"]} == {"prometheus": "error", "jaeger": "error"}
    assert all(str(port) in s["error"] for s in doc["sources"])
    assert "Traceback" not in result.stdout + result.stderr


def test_no_config_uses_demo_and_says_so() -> None:
    result = CliRunner().invoke(cli, ["graph", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert "built-in demo" in result.stderr
    doc = json.loads(result.stdout)
    names = {s["name"] for s in doc["services"]}
    assert {"frontend", "product-service", "cart-service", "database-service"} <= names
    assert len(doc["edges"]) >= 4


def test_demo_list_names_the_scenarios() -> None:
    result = run("demo", "list")
    assert result.exit_code == 0
    for name in ("ecommerce", "healthy"):
        assert name in result.output


def test_unknown_demo_is_usage_error() -> None:
    result = CliRunner().invoke(cli, ["graph", "--from", "demo:nope"])
    assert result.exit_code == 2
    assert "ecommerce" in result.output  # the message lists what exists


def test_snapshot_then_replay(tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    assert run("snapshot", "--from", "demo", "--out", str(out)).exit_code == 0
    direct = CliRunner().invoke(cli, ["graph", "-o", "json", "--from", "demo"]).stdout
    replay = CliRunner().invoke(cli, ["graph", "-o", "json", "--from", str(out)]).stdout
    a, b = json.loads(direct), json.loads(replay)
    assert a["edges"] == b["edges"] and a["services"] == b["services"]


def test_graph_formats() -> None:
    for fmt, marker in (("dot", "digraph mesh"), ("mermaid", "graph LR"),
                        ("text", "shop/frontend -> shop/cart-service")):
        result = CliRunner().invoke(cli, ["graph", "-o", fmt, "--from", "demo"])
        assert result.exit_code == 0 and marker in result.stdout


def test_graph_text_is_a_table_when_it_fits_and_blocks_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    wide = CliRunner().invoke(cli, ["graph", "--from", "demo"]).stdout
    assert wide.splitlines()[2].split() == ["SOURCE", "FROM", "DESTINATION", "TO", "MESH", "PROTO", "RPS",
                                            "ERR%", "P99MS", "MTLS"]
    monkeypatch.setenv("COLUMNS", "80")
    narrow = CliRunner().invoke(cli, ["graph", "--from", "demo"]).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "istio-system/istio-ingressgateway -> shop/frontend" in narrow  # whole names


def test_snapshot_refuses_to_overwrite_and_unknown_archives(tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    assert run("snapshot", "--from", "demo", "--out", str(out)).exit_code == 0
    again = CliRunner().invoke(cli, ["snapshot", "--from", "demo", "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    zipped = CliRunner().invoke(cli, ["snapshot", "--from", "demo", "--out", str(tmp_path / "b.zip")])
    assert zipped.exit_code == 2 and not (tmp_path / "b.zip").exists()


def test_snapshot_that_cannot_write_is_a_usage_error_naming_out(tmp_path: Path) -> None:
    """--out under a regular file (or on a read-only file system): exit 2 naming --out, not
    'internal error: FileNotFoundError' and exit 3."""
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile" / "b.tar.gz", tmp_path / "afile" / "bundle-dir"):
        result = CliRunner().invoke(cli, ["snapshot", "--from", "demo", "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "internal error" not in result.output and "--out" in result.output


def test_window_of_zero_is_a_usage_error(tmp_path: Path) -> None:
    """--window 0 was sent to Prometheus as a [0s] range (a parse error, every query lost); the
    config's window already refused it."""
    for command in (["graph"], ["diagnose", "cart-service"], ["snapshot", "--out", str(tmp_path / "b")]):
        result = CliRunner().invoke(cli, [*command, "--from", "demo", "--window", "0s"])
        assert result.exit_code == 2, (command, result.output)


def test_window_on_a_replay_says_it_does_not_apply() -> None:
    result = CliRunner().invoke(cli, ["graph", "--from", "demo", "--window", "1m"])
    assert result.exit_code == 0
    assert "applies to a live collection only" in result.stderr
