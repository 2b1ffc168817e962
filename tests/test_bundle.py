from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.bundle import Bundle, BundleError, read_bundle, scrub, write_bundle
from meshobs.raw import Payload, RawSource

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _bundle() -> Bundle:
    prom = RawSource("prometheus", "prometheus", meta={"url": "http://p:9090"})
    prom.add(Payload("query:requests", body='{"resultType":"vector","result":[]}', status=200,
                     params={"query": "sum(rate(x[5m]))"}, meta={"headers": {"Authorization": "Bearer abc"}}))
    prom.add(Payload("query:latency", error="cannot reach Prometheus at http://p:9090 (connection refused)"))
    envoy = RawSource("envoy:shop/cart-v1-x", "envoy", meta={"pod": "cart-v1-x"})
    envoy.add(Payload("ready", body="LIVE\n", status=200))
    config = {"sources": {"prometheus": {"url": "http://p", "headers": {"Authorization": "Bearer tok"}},
                          "kubernetes": {"kubeconfig": "/k", "token": "abc"}}}
    return Bundle(time=T, window_s=300, sources=[prom, envoy], config=config, name="t")


@pytest.mark.parametrize("name", ["dir", "b.tar.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = write_bundle(_bundle(), tmp_path / name)
    back = read_bundle(path)
    assert back.time == T and back.window_s == 300
    assert [s.name for s in back.sources] == ["prometheus", "envoy:shop/cart-v1-x"]
    assert back.sources[0].payloads[0].json() == {"resultType": "vector", "result": []}
    assert back.sources[0].payloads[1].body is None
    assert "connection refused" in back.sources[0].payloads[1].error
    assert back.sources[1].get("ready").body == "LIVE\n"


def _all_text(path: Path) -> str:
    if path.is_dir():
        return "\n".join(p.read_text() for p in path.rglob("*") if p.is_file())
    with tarfile.open(path) as tar:
        return "\n".join(tar.extractfile(m).read().decode("utf-8", "replace") for m in tar.getmembers() if m.isfile())


@pytest.mark.parametrize("name", ["dir", "b.tar.gz"])
def test_credentials_never_enter_a_bundle(tmp_path: Path, name: str) -> None:
    text = _all_text(write_bundle(_bundle(), tmp_path / name))
    assert "Bearer abc" not in text and "Bearer tok" not in text and '"abc"' not in text
    assert "<redacted>" in text


def test_scrub_keeps_structure() -> None:
    out = scrub({"url": "http://x", "headers": {"Authorization": "Bearer z"}, "nested": [{"password": "p"}],
                 "note": "use Bearer abc.def"})
    assert out == {"url": "http://x", "headers": {"Authorization": "<redacted>"},
                   "nested": [{"password": "<redacted>"}], "note": "use Bearer <redacted>"}


def test_bad_bundles(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle"):
        read_bundle(tmp_path / "missing")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    with pytest.raises(BundleError, match="not a meshobs bundle"):
        read_bundle(junk)
    d = tmp_path / "d"
    d.mkdir()
    (d / "bundle.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(BundleError, match="not a meshobs-bundle/1"):
        read_bundle(d)
    with pytest.raises(BundleError, match="not empty"):
        write_bundle(_bundle(), d)


def test_credentials_in_urls_and_errors_are_redacted(tmp_path: Path) -> None:
    """user:password in URLs, token query parameters, and URLs quoted in error messages."""
    src = RawSource("prometheus", "prometheus", meta={"url": "http://admin:hunter2@prom:9090"})
    src.add(Payload("query:requests", url="http://admin:hunter2@prom:9090/api/v1/query",
                    error="cannot reach http://admin:hunter2@prom:9090 (connection refused)"))
    jaeger = RawSource("jaeger", "jaeger", error="cannot reach http://j/?access_token=sekrit123&x=1")
    jaeger_cfg = {"url": "http://j/?access_token=sekrit123", "x-auth-token": "tok456"}
    config = {"sources": {"jaeger": jaeger_cfg, "envoy": {"targets": [{"url": "http://u:pw@e:15000"}]},
                          "cloudwatch": {"aws_secret_access_key": "abc", "client_secret": "def"}}}
    b = Bundle(time=T, window_s=300, sources=[src, jaeger], config=config)
    text = _all_text(write_bundle(b, tmp_path / "b.tar.gz"))
    for secret in ("hunter2", "sekrit123", "tok456", "u:pw", '"abc"', '"def"'):
        assert secret not in text, secret
    assert "prom:9090" in text and "access_token=<redacted>" in text  # still says where


def test_index_paths_cannot_leave_the_bundle(tmp_path: Path) -> None:
    d = tmp_path / "evil"
    d.mkdir()
    (d / "bundle.json").write_text(json.dumps({
        "format": "meshobs-bundle/1", "time": "2026-11-20T12:00:00Z", "window_s": 300,
        "sources": [{"name": "x", "kind": "x", "payloads": [{"key": "k", "file": "../../../etc/hostname"}]}]}))
    with pytest.raises(BundleError, match="outside the bundle"):
        read_bundle(d)


def test_damaged_index_is_a_bundle_error(tmp_path: Path) -> None:
    d = tmp_path / "damaged"
    d.mkdir()
    (d / "bundle.json").write_text(json.dumps({"format": "meshobs-bundle/1", "time": "2026-11-20T12:00:00Z",
                                               "window_s": 300, "sources": [{"kind": "x"}]}))
    with pytest.raises(BundleError, match="damaged"):
        read_bundle(d)


def test_bundle_config_keeps_placeholders_not_their_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR} of any name, under any key, stays ${VAR} in a bundle; mesh keeps its value."""
    from meshobs.bundle import config_for_bundle
    from meshobs.config import load_config

    monkeypatch.setenv("TEAM_NS", "payments-ns-1234")
    path = tmp_path / "meshobs.yaml"
    path.write_text("mesh: istio\nsources:\n  kubernetes:\n    context: ${TEAM_NS}\n    namespaces: [plain]\n"
                    "  jaeger:\n    url: http://j:16686/?tenant=${TEAM_NS}\n", encoding="utf-8")
    config = load_config(str(path))
    assert config is not None and config.sources["kubernetes"]["context"] == "payments-ns-1234"
    kept = config_for_bundle(config.raw, config.path)
    assert "payments-ns-1234" not in json.dumps(kept)
    assert kept["sources"]["jaeger"]["url"] == "http://j:16686/?tenant=${TEAM_NS}"
    assert kept["sources"]["kubernetes"] == {"context": "${TEAM_NS}", "namespaces": ["plain"]}
    assert kept["mesh"] == "istio"


def test_bundle_config_without_placeholders_is_the_validated_config(tmp_path: Path) -> None:
    """No ${VAR} in the file: the bundle keeps the validated config as it is (not parsed again)."""
    from meshobs.bundle import config_for_bundle
    from meshobs.config import load_config

    path = tmp_path / "meshobs.yaml"
    path.write_text("mesh: istio\nsources:\n  prometheus:\n    url: http://p:9090\n", encoding="utf-8")
    config = load_config(str(path))
    assert config is not None
    assert config_for_bundle(config.raw, config.path) == config.raw
