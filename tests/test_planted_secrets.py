"""A credential planted in every place a user can put one appears in no output at all.

Places: config headers (written as ${VAR}), URL user-info and query tokens of every source, the
kubeconfig token, AWS keys in the environment, pod and Deployment env values, last-applied
annotations and Secrets (from the API and from manifests), ${VAR} values of any name in
manifests, VirtualService header values, Envoy route headers, bootstrap tokens, node metadata,
generic SDS secrets and command lines, an error page that echoes the Authorization header, and
the Pushgateway URL. Outputs grepped: stdout and stderr of snapshot, diagnose (text, JSON,
markdown, JUnit), graph and drift (text and JSON), every file of the bundles (archive and
directory, and a bundle re-exported from one), the drift state directory and the textfile.
"""

from __future__ import annotations

import base64
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from meshobs.cli.main import cli
from meshobs.demo.catalog import load_demo
from meshobs.demo.httpserver import LoopbackHTTPServer, Request, Response
from tests.support.fake_kube import FakeKube, custom_list, k8s_list, pod
from tests.support.loopback import LoopbackServer, unused_port

MARK = "PLANTED"


def _planted(place: str) -> str:
    return f"{MARK}-{place}-7f3a9c"


ENV = {"MESHOBS_T_PROM": _planted("config-var-header"), "COLOR_SEED": _planted("var-any-name"),
       "DB_PASS": _planted("var-db-pass"), "AWS_ACCESS_KEY_ID": "AKIAPLANTEDKEY000000",
       "AWS_SECRET_ACCESS_KEY": _planted("aws-secret")}


def _vs(name: str, ns: str, headers: dict[str, str]) -> dict[str, Any]:
    applied = json.dumps({"token": _planted("vs-last-applied")})
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns, "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": applied}},
            "spec": {"hosts": [name], "http": [{"headers": {"request": {"set": headers}},
                                                "route": [{"destination": {"host": name}}]}]}}


def _manifests(root: Path) -> None:
    root.mkdir()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
              "data": {"password": base64.b64encode(_planted("secret-data").encode()).decode()},
              "stringData": {"password": "${DB_PASS}", "seed": "${COLOR_SEED}", "raw": _planted("secret-string")}}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"},
                 "data": {"dsn": _planted("configmap"), "seed": "${COLOR_SEED}"}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "cart-v1", "namespace": "shop", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"x": _planted("deploy-last-applied")})}},
        "spec": {"selector": {"matchLabels": {"app": "cart"}}, "template": {
            "metadata": {"labels": {"app": "cart", "version": "v1"}},
            "spec": {"containers": [{"name": "app", "image": "cart:1", "env": [
                {"name": "DB_PASSWORD", "value": "${DB_PASS}"}, {"name": "SEED", "value": "${COLOR_SEED}"},
                {"name": "PLAIN", "value": _planted("manifest-env")}]}]}}}}
    vs = _vs("cart", "shop", {"Authorization": f"Basic {_planted('manifest-vs-basic')}",
                              "x-api-key": "${COLOR_SEED}"})
    for name, doc in (("secret", secret), ("configmap", configmap), ("deploy", deploy), ("vs", vs)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def _planted_config_dump(text: str) -> str:
    dump = json.loads(text)
    for cfg in dump["configs"]:
        kind = cfg["@type"].rsplit(".", 1)[-1]
        if kind == "BootstrapConfigDump":
            cfg["bootstrap"].setdefault("node", {}).setdefault("metadata", {})["DB_PASSWORD"] = _planted("node-meta")
            cfg["bootstrap"]["tracing"] = {"http": {"name": "envoy.tracers.datadog", "typed_config": {
                "access_token": _planted("bootstrap-token")}}}
        if kind == "RoutesConfigDump":
            for rc in cfg.get("dynamic_route_configs", []):
                for vh in rc["route_config"].get("virtual_hosts", []):
                    for r in vh.get("routes", []):
                        r["request_headers_to_add"] = [
                            {"header": {"key": "Authorization", "value": f"Basic {_planted('route-basic')}"}},
                            {"header": {"key": "x-upstream-key", "value": _planted("route-header")}}]
        if kind == "SecretsConfigDump":
            cfg.setdefault("dynamic_active_secrets", []).append({"name": "hmac", "secret": {
                "name": "hmac", "generic_secret": {"secret": {"inline_string": _planted("generic-secret")}}}})
    return json.dumps(dump)


def _serve_envoy(srv: LoopbackServer) -> dict[str, str]:
    demo = next(s for s in load_demo("healthy").sources if s.name.startswith("envoy:shop/cart-v1"))
    for p in demo.payloads:
        body = p.body or ""
        if p.key == "config_dump":
            body = _planted_config_dump(body)
        if p.key == "server_info":
            info = json.loads(body)
            info["command_line_options"] = {"config_yaml": f"admin: {{token: {_planted('cmdline')}}}"}
            body = json.dumps(info)
        srv.route(f"/{p.key}", body=body, content_type="text/plain" if p.key == "ready" else "application/json")
    return dict(demo.meta)


def _serve_kube(kube: FakeKube) -> None:
    env = [{"name": "API_KEY", "value": _planted("api-pod-env")},
           {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    p = pod("shop", "cart-v1-6d8f7c9b5d-x2x2x", owner=("ReplicaSet", "cart-v1-6d8f7c9b5d"),
            labels={"app": "cart", "version": "v1", "pod-template-hash": "6d8f7c9b5d"},
            annotations={"kubectl.kubernetes.io/last-applied-configuration": _planted("api-last-applied")})
    p["spec"]["containers"][0]["env"] = env
    kube.serve("/api/v1/pods", k8s_list("PodList", [p]))
    kube.serve("/api/v1/services", k8s_list("ServiceList", []))
    kube.serve("/api/v1/namespaces", k8s_list("NamespaceList", []))
    kube.serve("/apis/apps/v1/deployments", k8s_list("DeploymentList", []))
    kube.serve("/apis/networking.istio.io/v1/virtualservices", custom_list(
        [_vs("cart", "shop", {"Authorization": f"Bearer {_planted('api-vs-bearer')}"})],
        "VirtualServiceList", "networking.istio.io/v1"))


def _echo_unauthorized(request: Request) -> Response:
    # An auth proxy that quotes the credential it refused: the error page must not leak it.
    return Response(401, f"invalid credentials: {request.headers.get('Authorization', '')} for {request.path}",
                    "text/plain")


def _files_text(root: Path) -> str:
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            if path.name.endswith(".tar.gz"):
                with tarfile.open(path) as tar:
                    for m in tar.getmembers():
                        f = tar.extractfile(m)
                        if f is not None:
                            out.append(f"{path}:{m.name}\n" + f.read().decode("utf-8", "replace"))
            else:
                out.append(f"{path}\n" + path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(out)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    _manifests(tmp_path / "manifests")
    _manifests(tmp_path / "intended")
    with FakeKube(token=_planted("kube-token")) as kube, LoopbackServer() as envoy, \
            LoopbackHTTPServer(_echo_unauthorized) as prom, LoopbackHTTPServer(_echo_unauthorized) as jaeger, \
            LoopbackServer() as push:
        _serve_kube(kube)
        meta = _serve_envoy(envoy)
        push.route("/metrics/job/meshobs_drift", status=500, body="push failed")
        closed = unused_port()
        envoy_url = envoy.url.replace("http://", f"http://admin:{_planted('envoy-userinfo')}@")
        jaeger_url = jaeger.url.replace("http://", f"http://reader:{_planted('jaeger-userinfo')}@")
        # The echoing proxies answer at once: generous timeouts only matter on a loaded machine,
        # where 1-2 s lost the 401 answers the test is about (it failed so in a full run).
        config = {
            "sources": {
                "prometheus": {"url": f"{prom.url}/?access_token={_planted('prom-query')}",
                               "headers": {"Authorization": "Bearer ${MESHOBS_T_PROM}"}, "timeout": "10s"},
                "jaeger": {"url": f"{jaeger_url}/jaeger?api_key={_planted('jaeger-query')}",
                           "headers": {"X-Api-Key": _planted("jaeger-header")}, "timeout": "10s"},
                "envoy": {"discovery": "static", "timeout": "2s", "targets": [
                    {"namespace": meta["namespace"], "pod": meta["pod"], "workload": meta["workload"],
                     "url": envoy_url}]},
                "kubernetes": {"kubeconfig": str(kube.write_kubeconfig(tmp_path)), "context": "fake",
                               "manifests": [str(tmp_path / "manifests")], "timeout": "3s"},
                "cloudwatch": {"region": "eu-west-1", "endpoint_url": f"http://127.0.0.1:{closed}",
                               "max_attempts": 1, "timeout": "1s"},
            },
            "drift": {"state_dir": str(tmp_path / "out" / "state"), "textfile": str(tmp_path / "out" / "drift.prom")},
        }
        (tmp_path / "meshobs.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        yield tmp_path, push.url.replace("http://", f"http://pg:{_planted('push-userinfo')}@")


def test_no_planted_credential_reaches_any_output(world: Any) -> None:
    tmp, pushgateway = world
    cfg = str(tmp / "meshobs.yaml")
    out = tmp / "out"
    runner = CliRunner()
    runs = [
        ["snapshot", "--config", cfg, "--out", str(out / "live.tar.gz")],
        ["snapshot", "--config", cfg, "--out", str(out / "live-dir")],
        ["snapshot", "--from", str(out / "live.tar.gz"), "--out", str(out / "again.tar.gz")],
        ["diagnose", "--all", "--config", cfg],
        ["diagnose", "--all", "--config", cfg, "-o", "json"],
        ["diagnose", "--all", "--from", str(out / "live.tar.gz"), "-o", "markdown"],
        ["diagnose", "--all", "--from", str(out / "live-dir"), "-o", "junit"],
        ["graph", "--config", cfg],
        ["drift", "--config", cfg, "--intended", str(tmp / "intended"), "--pushgateway", pushgateway],
        ["drift", "--from", str(out / "live.tar.gz"), "--config", cfg, "--intended", str(tmp / "intended"),
         "-o", "json", "--pushgateway", pushgateway],
    ]
    printed = []
    for args in runs:
        result = runner.invoke(cli, args, catch_exceptions=False)
        printed.append(f"{result.stdout}\n{result.stderr}")  # outputs only: the arguments hold the plants
        assert "internal error" not in result.stderr, (args[0], result.stderr)
    text = "\n".join(printed) + "\n" + _files_text(out)
    # The runs really went through every source and every output.
    assert (out / "live.tar.gz").is_file(), printed[0][-2000:] and (out / "live-dir" / "bundle.json").is_file()
    assert (out / "state" / "state.json").is_file() and (out / "drift.prom").is_file()
    assert "cannot push metrics" in text or "Pushgateway" in text
    assert "HTTP 401" in text  # the echoing auth proxies were asked and their answers recorded
    assert "invalid credentials: <redacted>" in text  # the echoed header, masked
    # Basic auth travels base64-encoded: an echo of it is a leak too.
    encoded = [base64.b64encode(f"{user}:{_planted(place)}".encode()).decode()
               for user, place in (("reader", "jaeger-userinfo"), ("admin", "envoy-userinfo"), ("pg", "push-userinfo"))]
    leaks = sorted({line.strip()[:160] for line in text.splitlines()
                    if MARK in line or "AKIAPLANTED" in line or any(e in line for e in encoded)})
    assert leaks == [], "\n".join(leaks)
    # Still useful: where things were, without the credentials.
    assert "<redacted>" in text and "Authorization" in text
