"""An unknown ``sources.kubernetes.context`` is a configuration error (exit 2, one line naming
the key, the kubeconfig and the contexts it has), not a source that could not be read (exit 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from meshobs.cli.main import cli
from meshobs.kubecontext import unknown_context


def _kubeconfig(path: Path, *contexts: str) -> Path:
    # A server nobody listens on: a known context gets as far as the source failing.
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts],
        "current-context": contexts[0] if contexts else ""}))
    return path


def _run(tmp_path: Path, context: str, *command: str) -> Result:
    config = tmp_path / "meshobs.yaml"
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", "payments-prod", "payments-staging")
    config.write_text(yaml.safe_dump({"sources": {"kubernetes": {"kubeconfig": str(kubeconfig), "context": context,
                                                                 "timeout": "1s"}}}))
    return CliRunner().invoke(cli, [*command, "--config", str(config), "--timeout", "5s"])


@pytest.mark.parametrize("command", [("graph",), ("diagnose", "--all"), ("drift", "--no-intended")])
def test_an_unknown_context_is_a_configuration_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = _run(tmp_path, "payments-prd", *command)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "sources.kubernetes.context" in line and "'payments-prd'" in line
    assert "payments-prod" in line and "payments-staging" in line


def test_a_known_context_whose_cluster_is_down_is_still_could_not_check(tmp_path: Path) -> None:
    result = _run(tmp_path, "payments-prod", "graph")
    assert result.exit_code == 3, result.output


def test_what_is_left_to_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = _kubeconfig(tmp_path / "one", "blue")
    two = _kubeconfig(tmp_path / "two", "green")
    assert unknown_context({"kubeconfig": str(one)}) is None  # no context given: the current one
    assert unknown_context({"kubeconfig": str(one), "context": "blue"}) is None
    assert unknown_context({"kubeconfig": str(tmp_path / "none"), "context": "blue"}) is None  # missing file
    (tmp_path / "broken").write_text("contexts: [\n")
    assert unknown_context({"kubeconfig": str(tmp_path / "broken"), "context": "x"}) is None  # not YAML
    # $KUBECONFIG lists files: the contexts of all of them count, as for kubectl.
    monkeypatch.setenv("KUBECONFIG", f"{one}{os.pathsep}{two}")
    assert unknown_context({"context": "green"}) is None
    why = unknown_context({"context": "red"})
    assert why is not None and "blue, green" in why
    many = _kubeconfig(tmp_path / "many", *(f"eks-{i:02d}" for i in range(40)))
    why = unknown_context({"kubeconfig": str(many), "context": "eks-7"})
    assert why is not None and "40 contexts" in why and "eks-07" in why and why.count("eks-") == 1 + 5
