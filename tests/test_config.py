from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshobs.config import ConfigError, load_config, validate
from meshobs.durations import format_duration, parse_duration

REPO = Path(__file__).resolve().parents[1]


def test_example_config_is_valid() -> None:
    cfg = validate(yaml.safe_load((REPO / "config/meshobs.example.yaml").read_text()))
    assert cfg.window_s == 300
    assert cfg.sources["prometheus"]["url"].startswith("http")


@pytest.mark.parametrize("raw, key", [
    ({"sources": {"prometheus": {"urll": "x"}}}, "sources.prometheus.urll"),
    ({"sources": {"prometheus": {"url": 5}}}, "sources.prometheus.url"),
    ({"sources": {"envoy": {"discovery": "dns"}}}, "sources.envoy.discovery"),
    ({"sources": {"envoy": {"targets": [{"pod": "a", "port": 1}]}}}, "sources.envoy.targets[0].port"),
    ({"window": "five minutes"}, "window"),
    ({"time": "yesterday"}, "time"),
    ({"sources": {"kubernetes": {"namespaces": [1]}}}, "sources.kubernetes.namespaces"),
    ({"bogus": 1}, "bogus"),
    ({"sources": {"jaeger": {"limit": "10"}}}, "sources.jaeger.limit"),
])
def test_bad_config_names_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert str(err.value).split(":")[0].strip() == key or str(err.value).startswith(key)


def test_env_vars_expand_in_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_TOKEN", "s3cret")
    headers = {"Authorization": "Bearer ${PROM_TOKEN}"}
    cfg = validate({"sources": {"prometheus": {"url": "http://p", "headers": headers}}})
    assert cfg.sources["prometheus"]["headers"]["Authorization"] == "Bearer s3cret"


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config(None) is None  # nothing anywhere -> demo mode
    user = tmp_path / "xdg"
    (user / "meshobs").mkdir(parents=True)
    (user / "meshobs" / "meshobs.yaml").write_text("window: 1m\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user))
    assert load_config(None).window_s == 60
    env_file = tmp_path / "env.yaml"
    env_file.write_text("window: 2m\n")
    monkeypatch.setenv("MESHOBS_CONFIG", str(env_file))
    assert load_config(None).window_s == 120
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("window: 3m\n")
    assert load_config(str(explicit)).window_s == 180


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(str(bad))


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
                                           ("250ms", 0.25), (45, 45), ("90", 90)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5 minutes", "m5", "-3s", "1x"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert format_duration(300) == "5m"
    assert format_duration(90) == "90s"
    assert format_duration(7200) == "2h"
    # Not a whole number of seconds: milliseconds, which PromQL reads (rounded, 500ms was [0s]).
    assert format_duration(parse_duration("500ms")) == "500ms"
    assert format_duration(90.5) == "90500ms"


def test_unset_env_var_is_an_error_naming_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    with pytest.raises(ConfigError) as err:
        headers = {"Authorization": "Bearer ${NO_SUCH_TOKEN}"}
        validate({"sources": {"prometheus": {"url": "http://p", "headers": headers}}})
    assert "sources.prometheus.headers.Authorization" in str(err.value)
    assert "NO_SUCH_TOKEN" in str(err.value)


def test_naive_time_means_utc() -> None:
    from datetime import UTC, datetime

    cfg = validate(yaml.safe_load("time: 2026-11-20 12:00:00\n"))
    assert cfg.time == datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.mark.parametrize("url", ["notaurl", "prom:9090", "ftp://p", "http://"])
def test_urls_are_checked_when_the_config_loads(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\.prometheus\.url: expected an http"):
        validate({"sources": {"prometheus": {"url": url}}})


@pytest.mark.parametrize(("url", "port"), [("http://prom:70000", "70000"), ("http://prom:0", "0"),
                                         ("https://prom:-1", "-1"), ("http://prom:90x", "90x"),
                                         ("http://admin:pw@[::1]:65536/api", "65536")])
def test_a_url_port_outside_1_to_65535_is_refused_with_its_key(url: str, port: str) -> None:
    with pytest.raises(ConfigError, match=rf"sources\.prometheus\.url: the URL's port must be 1-65535, got '{port}'"):
        validate({"sources": {"prometheus": {"url": url}}})
    with pytest.raises(ConfigError, match=r"sources\.envoy\.targets\[0\]\.url: the URL's port"):
        validate({"sources": {"envoy": {"targets": [{"url": url}]}}})


@pytest.mark.parametrize("url", ["http://prom:1", "http://prom:65535", "http://prom", "http://[::1]:9090",
                                 "https://u:p@[::1]/x", "http://prom:9090/prometheus"])
def test_urls_with_good_or_no_ports_load(url: str) -> None:
    assert validate({"sources": {"prometheus": {"url": url}}}).sources["prometheus"]["url"] == url


def test_unknown_key_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean prometheus"):
        validate({"sources": {"promethues": {"url": "http://p"}}})
