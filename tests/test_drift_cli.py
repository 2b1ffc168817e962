"""``meshobs drift`` end to end through click: exit codes, outputs, state, metrics, the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families

from meshobs.cli.main import cli
from tests.support.fake_kube import FakeKube
from tests.test_drift_data import HOST, write_intended, write_live


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _config(tmp_path: Path, edit: str | None = None, **drift: Any) -> Path:
    live = write_live(tmp_path / "live", edit)
    doc: dict[str, Any] = {"sources": {"kubernetes": {"manifests": [str(live)]}}}
    if drift:
        doc["drift"] = drift
    path = tmp_path / "meshobs.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _drift(tmp_path: Path, *extra: str, edit: str | None = None, **drift: Any) -> Result:
    git = write_intended(tmp_path / "git")
    return run("drift", "--intended", str(git), "--config", str(_config(tmp_path, edit, **drift)), *extra)


def test_no_drift_exits_0(tmp_path: Path) -> None:
    result = _drift(tmp_path, "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["drift"] == [] and data["checked"] == ["intended-live"] and data["complete"]


def test_fail_on_thresholds(tmp_path: Path) -> None:
    assert _drift(tmp_path / "a", edit="retries").exit_code == 1  # default: warning
    assert _drift(tmp_path / "b", "--fail-on", "error", edit="retries").exit_code == 0
    assert _drift(tmp_path / "c", "--fail-on", "error", edit="weight").exit_code == 1
    assert _drift(tmp_path / "d", "--fail-on", "never", edit="weight").exit_code == 0
    assert _drift(tmp_path / "e", edit="retries", fail_on="error").exit_code == 0  # from the config


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("drift", "--intended", str(tmp_path / "nope"), "--from", "demo:weight-drift").exit_code == 2
    bad_rule = _drift(tmp_path, ignore=[{"path": "labels.team"}])  # no reason
    assert bad_rule.exit_code == 2
    assert run("drift", "-o", "yaml").exit_code == 2


def test_cannot_check_exits_3_and_counts_errors(tmp_path: Path) -> None:
    fk = FakeKube(token="t")  # never started: the API is unreachable
    kubeconfig = fk.write_kubeconfig(tmp_path, server="http://127.0.0.1:9")
    config = tmp_path / "meshobs.yaml"
    config.write_text(yaml.safe_dump({"sources": {"kubernetes": {"kubeconfig": str(kubeconfig),
                                                                 "context": "fake", "timeout": "2s"}}}))
    git = write_intended(tmp_path / "git")
    prom = tmp_path / "drift.prom"
    args = ("drift", "--intended", str(git), "--config", str(config), "--state-dir", str(tmp_path / "state"),
            "--textfile", str(prom))
    assert run(*args).exit_code == 3
    assert run(*args).exit_code == 3
    fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    assert fams["meshobs_drift_check_errors"].samples[0].value == 2
    assert fams["meshobs_drift_last_success_timestamp_seconds"].samples == []


def test_history_through_the_cli(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    first = json.loads(_drift(tmp_path / "1", "-o", "json", "--state-dir", state, edit="weight").output)
    assert {d["status"] for d in first["drift"]} == {"new"}
    second = json.loads(_drift(tmp_path / "2", "-o", "json", "--state-dir", state, edit="weight").output)
    assert {d["status"] for d in second["drift"]} == {"ongoing"}
    assert [d["first_seen"] for d in second["drift"]] == [d["first_seen"] for d in first["drift"]]
    third = _drift(tmp_path / "3", "-o", "json", "--state-dir", state)
    assert third.exit_code == 0
    resolved = json.loads(third.output)["resolved"]
    assert sorted(r["path"] for r in resolved) == [f"spec.http[0].route[{HOST}|v1].weight",
                                                   f"spec.http[0].route[{HOST}|v2].weight"]


def test_unreachable_pushgateway_is_could_not_check(tmp_path: Path) -> None:
    assert _drift(tmp_path, "--pushgateway", "http://127.0.0.1:9").exit_code == 3


def test_outputs_render(tmp_path: Path) -> None:
    text = _drift(tmp_path / "t", edit="weight")
    assert text.exit_code == 1 and "VirtualService shop/reviews" in text.output
    md = _drift(tmp_path / "m", "-o", "markdown", edit="weight")
    assert md.output.startswith("## ") and "| error |" in md.output


def test_weight_drift_demo_finds_its_drift(tmp_path: Path) -> None:
    """The shipped demo: Git says retries 3 (live 10, hand-edited); frontend's proxies hold 50/50
    while the live VirtualService says 90/10."""
    from meshobs.demo.catalog import export_intended

    export_intended("weight-drift", tmp_path / "git")
    result = run("drift", "--intended", str(tmp_path / "git"), "--from", "demo:weight-drift", "-o", "json",
                 "--textfile", str(tmp_path / "d.prom"))
    assert result.exit_code == 1
    data = json.loads(result.output)
    found = {(d["layers"], d["resource"]["name"], d["path"]) for d in data["drift"]}
    assert ("intended-live", "cart-service", "spec.http[0].retries.attempts") in found
    weights = [d for d in data["drift"] if d["layers"] == "live-effective" and d["path"].endswith(".weight")]
    assert {d["resource"]["name"] for d in weights} == {"product-service"}
    assert all(p.startswith("frontend-v1-") for d in weights for p in d["proxies"])
    assert {(d["live"], d["effective"]) for d in weights} == {(90, 50), (10, 50)}
    assert len(data["drift"]) == 3


def test_healthy_demo_has_no_drift(tmp_path: Path) -> None:
    from meshobs.demo.catalog import export_intended

    export_intended("healthy", tmp_path / "git")
    result = run("drift", "--intended", str(tmp_path / "git"), "--from", "demo:healthy")
    assert result.exit_code == 0, result.output


def test_malformed_intended_manifest_is_could_not_check(tmp_path: Path) -> None:
    git = write_intended(tmp_path / "git")
    (git / "broken.yaml").write_text("kind: VirtualService\n  bad: [indent\n")
    result = run("drift", "--intended", str(git), "--config", str(_config(tmp_path)), "-o", "json")
    assert result.exit_code == 3
    data = json.loads(result.output)
    assert data["checked"] == [] or not data["complete"]
    assert not data["layers"]["intended"]["available"]


def test_namespaces_and_secrets_are_not_mesh_configuration_to_drift(tmp_path: Path) -> None:
    """The model carries Namespaces (labels) and Secrets (public facts) for the analyzers; a
    Git tree declaring its namespace, and a live listing of other namespaces and a Secret, are
    no drift."""
    git = write_intended(tmp_path / "git")
    (git / "ns.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "shop"}}), encoding="utf-8")
    config = _config(tmp_path)
    live = tmp_path / "live" / "more.yaml"
    live.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
         "type": "Opaque", "data": {}}]), encoding="utf-8")
    result = run("drift", "--intended", str(git), "--config", str(config), "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["drift"] == []


def test_proxies_that_could_not_be_read_make_the_run_incomplete(tmp_path: Path) -> None:
    """Seven of ten proxies unreachable said "no drift: intended, live and effective agree", exit
    0, complete, last success updated: a scheduled check would stay green while the proxies that
    drifted were the ones it could not read. The run now names them, is incomplete, exits 3."""
    from meshobs.bundle import write_bundle
    from meshobs.demo.catalog import export_intended, load_demo
    from meshobs.raw import Payload

    bundle = load_demo("healthy")
    envoys = [s for s in bundle.sources if s.kind == "envoy"]
    for source in envoys[:4]:
        refused = "proxy unreachable: cannot reach http://127.0.0.1:9/ready (connection refused)"
        source.payloads = [Payload(key="ready", url="http://127.0.0.1:9/ready", error=refused)]
    recorded = write_bundle(bundle, tmp_path / "bundle")
    export_intended("healthy", tmp_path / "git")
    args = ("drift", "--from", str(recorded), "--intended", str(tmp_path / "git"), "-o", "json")
    whole = run("drift", "--from", "demo:healthy", "--intended", str(tmp_path / "git"), "-o", "json")
    assert whole.exit_code == 0 and json.loads(whole.stdout)["complete"] is True
    result = run(*args, "--textfile", str(tmp_path / "drift.prom"))
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["complete"] is False and data["summary"]["drift"] == 0
    assert data["layers"]["effective"]["count"] == len(envoys) - 4
    assert len(data["problems"]) == 4  # three named, then how many more
    fams = {f.name: f for f in text_string_to_metric_families((tmp_path / "drift.prom").read_text())}
    assert not fams["meshobs_drift_last_success_timestamp_seconds"].samples  # no success to report
    assert fams["meshobs_drift_check_errors"].samples[0].value == 1


def test_drift_on_proxies_that_could_not_be_read_is_unchecked_not_resolved(tmp_path: Path) -> None:
    """The frontend proxies hold old weights; next run they cannot be read. Their drift was
    reported "resolved" (and counted so) because the live-effective pair was checked with the
    other proxies: it is unchecked, still active, and resolves only once they are read again."""
    from meshobs.bundle import write_bundle
    from meshobs.demo.catalog import export_intended, load_demo
    from meshobs.raw import Payload

    export_intended("weight-drift", tmp_path / "git")
    common = ("--intended", str(tmp_path / "git"), "--state-dir", str(tmp_path / "state"), "-o", "json")
    first = json.loads(run("drift", "--from", "demo:weight-drift", *common).stdout)
    on_proxies = {d["id"] for d in first["drift"] if d["layers"] == "live-effective"}
    assert on_proxies and all(d["proxies"] for d in first["drift"] if d["id"] in on_proxies)
    drifted = {p for d in first["drift"] for p in d["proxies"]}  # pod.namespace

    bundle = load_demo("weight-drift")
    for source in bundle.sources:
        pod = source.name.removeprefix("envoy:").split("/")
        if source.kind == "envoy" and f"{pod[-1]}.{pod[0]}" in drifted:
            refused = "proxy unreachable: cannot reach http://127.0.0.1:9/ready (connection refused)"
            source.payloads = [Payload(key="ready", url="http://127.0.0.1:9/ready", error=refused)]
    unread = json.loads(run("drift", "--from", str(write_bundle(bundle, tmp_path / "b")), *common).stdout)
    assert unread["complete"] is False and "live-effective" in unread["checked"]
    assert unread["resolved"] == [] and unread["summary"]["resolved"] == 0
    assert {u["id"] for u in unread["unchecked"]} == on_proxies
    assert all(u["status"] == "unchecked" for u in unread["unchecked"])

    again = json.loads(run("drift", "--from", "demo:weight-drift", *common).stdout)
    assert {d["id"] for d in again["drift"] if d["status"] == "ongoing"} >= on_proxies
    healed = json.loads(run("drift", "--from", "demo:healthy", *common).stdout)
    assert on_proxies <= {r["id"] for r in healed["resolved"]}


def test_pushgateway_with_a_query_is_refused_and_its_values_masked(tmp_path: Path) -> None:
    # An auth proxy's ?key=... would land before the job's path (every push fails), and "key" is
    # not a name the redaction knows as a credential: the URL is refused, the value never shown.
    result = _drift(tmp_path, "--pushgateway", "http://127.0.0.1:9/?key=plantedS3cretValue")
    assert result.exit_code == 2
    assert "query string" in result.output
    assert "plantedS3cretValue" not in result.output
