"""The validated-config records (meshobs.config_cache): a hit is exactly what validating gives,
and anything validation reads (the file, its path, the environment, the code) decides a hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshobs import config_cache
from meshobs.config import Config, ConfigError, load_config
from tests.test_config_model import SHIPPED

REPO = Path(__file__).resolve().parents[1]


def records() -> list[Path]:
    where = config_cache.folder()
    return sorted(where.glob("*.marshal")) if where and where.is_dir() else []


def outcome(cfg: Config | None) -> tuple[Any, ...]:
    assert cfg is not None
    return cfg.raw, cfg.window_s, repr(cfg.time), cfg.mesh, cfg.path


def fresh(path: Path, monkeypatch: pytest.MonkeyPatch) -> Config | None:
    with monkeypatch.context() as m:
        m.setenv("MESHOBS_CONFIG_CACHE", "off")
        return load_config(str(path))


@pytest.mark.parametrize("name, raw", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_a_hit_is_what_validating_gives(name: str, raw: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_TOKEN", "t")
    path = tmp_path / "meshobs.yaml"
    path.write_text(yaml.safe_dump(raw))
    first = load_config(str(path))
    assert first is not None and first.model is not None  # validated
    again = load_config(str(path))
    assert again is not None
    if records():
        assert again.model is None  # read back, not validated
    else:  # only a config that reads the environment or the home folder, or holds a credential
        from meshobs.redact import config_secrets
        assert "$" in path.read_text() or "~" in path.read_text() or config_secrets(first.raw)
    assert outcome(again) == outcome(first) == outcome(fresh(path, monkeypatch))
    assert again.typed == first.typed  # the typed model, validated when asked for


def test_a_big_static_list_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = [{"url": f"http://127.0.0.1:15000/ns-{i % 7}/pod-{i}", "namespace": f"ns-{i % 7}",
                "pod": f"pod-{i}", "workload": f"w-{i // 3}"} for i in range(3000)]
    path = tmp_path / "meshobs.yaml"
    path.write_text(yaml.safe_dump({
        "time": "2026-11-20T12:00:00.5+02:00", "window": "90s", "mesh": "istio",
        "sources": {"envoy": {"discovery": "static", "targets": targets, "timeout": 3},
                    "kubernetes": {"manifests": ["rel/dir", "/abs"]}},
        "thresholds": {"xds_stale_after": "15m"},
        "suppress": [{"code": "MSH04*", "until": "2026-12-01T00:00:00Z"}]}))
    first = load_config(str(path))
    assert len(records()) == 1
    again = load_config(str(path))
    assert again is not None and again.model is None
    assert outcome(again) == outcome(first)
    assert again.sources["kubernetes"]["manifests"] == [str(tmp_path / "rel/dir"), "/abs"]
    assert again.time is not None and again.time.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]


def test_a_changed_file_is_validated_again(tmp_path: Path) -> None:
    path = tmp_path / "meshobs.yaml"
    path.write_text("window: 1m\n")
    assert load_config(str(path)).window_s == 60  # type: ignore[union-attr]
    assert load_config(str(path)).window_s == 60  # type: ignore[union-attr]
    path.write_text("window: 2m\n")
    assert load_config(str(path)).window_s == 120  # type: ignore[union-attr]
    path.write_text("window: 2m\nbogus: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert err.value.problems[0].split(": ")[1] == "bogus"
    assert len(records()) == 1  # one record per file, replaced


def test_relative_paths_follow_the_file(tmp_path: Path) -> None:
    text = "sources:\n  kubernetes:\n    manifests: [m]\n"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "meshobs.yaml").write_text(text)
    for _ in range(2):
        for folder in ("a", "b"):
            cfg = load_config(str(tmp_path / folder / "meshobs.yaml"))
            assert cfg is not None and cfg.sources["kubernetes"]["manifests"] == [str(tmp_path / folder / "m")]


@pytest.mark.parametrize("text", [
    'sources:\n  prometheus:\n    url: http://p\n    headers: {Authorization: "Bearer ${PROM_TOKEN}"}\n',
    'sources:\n  prometheus:\n    url: "http://p"\n    headers: {Authorization: "Bearer \\x24{PROM_TOKEN}"}\n',
    "sources:\n  kubernetes:\n    kubeconfig: ~/kubeconfig\n",
])
def test_the_environment_is_read_every_time(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "meshobs.yaml"
    path.write_text(text)
    seen = []
    for value in ("one", "two"):
        monkeypatch.setenv("PROM_TOKEN", value)
        monkeypatch.setenv("HOME", str(tmp_path / value))
        cfg = load_config(str(path))
        assert cfg is not None
        seen.append(json.dumps(cfg.raw))
    assert seen[0] != seen[1]
    assert records() == []


@pytest.mark.parametrize("text", [
    'sources:\n  prometheus:\n    url: http://p\n    headers: {Authorization: "Bearer s3cr3t-t0ken"}\n',
    "sources:\n  prometheus:\n    url: http://meshobs:hunter22@prom.example:9090\n",
    "sources:\n  prometheus:\n    url: http://prom.example:9090/?access_token=abcdef123\n",
])
def test_a_config_holding_a_credential_is_never_copied(text: str, tmp_path: Path) -> None:
    """A token or password written in the file itself stays only there: rotating or deleting it
    in the config leaves no copy in the cache."""
    path = tmp_path / "meshobs.yaml"
    path.write_text(text)
    for _ in range(2):
        cfg = load_config(str(path))
        assert cfg is not None and cfg.model is not None  # validated each time
    assert records() == []
    where = config_cache.folder()
    secret = ("s3cr3t-t0ken", "hunter22", "abcdef123")
    assert where is None or not any(s.encode() in f.read_bytes() for f in where.rglob("*") if f.is_file()
                                    for s in secret)


def test_a_broken_config_is_never_recorded(tmp_path: Path) -> None:
    path = tmp_path / "meshobs.yaml"
    path.write_text("sources:\n  jaeger:\n    limit: '10'\n")
    errors = []
    for _ in range(2):
        with pytest.raises(ConfigError) as err:
            load_config(str(path))
        errors.append(err.value.problems)
    assert errors[0] == errors[1] and errors[0][0].split(": ")[1] == "sources.jaeger.limit"
    assert records() == []


def test_a_damaged_or_foreign_record_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "meshobs.yaml"
    path.write_text("window: 1m\n")
    load_config(str(path))
    [record] = records()
    blob = record.read_bytes()
    record.write_bytes(blob[:-3])  # cut short
    cfg = load_config(str(path))
    assert cfg is not None and cfg.model is not None and cfg.window_s == 60
    start = len(b"meshobs-config-1\n")
    for damaged in (blob[:start] + bytes(32) + blob[start + 32:],  # another input's record
                    blob[:-8] + bytes(8)):  # the same input's, damaged
        record.write_bytes(damaged)
        cfg = load_config(str(path))
        assert cfg is not None and cfg.model is not None and cfg.window_s == 60
    assert load_config(str(path)).model is None  # type: ignore[union-attr]  # rewritten, used again
    record.parent.chmod(0o777)  # others could have written it
    try:
        assert load_config(str(path)).model is not None  # type: ignore[union-attr]
    finally:
        record.parent.chmod(0o700)


def test_an_unwritable_cache_or_off_costs_nothing_but_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "meshobs.yaml"
    path.write_text("window: 1m\n")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert load_config(str(path)).window_s == 60  # type: ignore[union-attr]
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # nowhere sure: not in the cwd
    monkeypatch.chdir(tmp_path)
    assert load_config(str(path)).window_s == 60  # type: ignore[union-attr]
    assert not (tmp_path / "relative").exists()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MESHOBS_CONFIG_CACHE", "off")
    assert load_config(str(path)).window_s == 60  # type: ignore[union-attr]
    assert not (tmp_path / "cache").exists()


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          check=True).stdout


def test_a_hit_imports_neither_pydantic_nor_the_model(tmp_path: Path) -> None:
    path = tmp_path / "meshobs.yaml"
    path.write_text((REPO / "config/meshobs.example.yaml").read_text())
    env = {**os.environ, "PROM_TOKEN": "t"}
    code = (f"import sys; from meshobs.config import load_config; c = load_config({str(path)!r}); "
            "print(c.model is None, 'pydantic' in sys.modules, 'meshobs.config_model' in sys.modules)")
    # The example reads $PROM_TOKEN: never recorded, validated each time.
    assert _run(code, env).split() == ["False", "True", "True"]
    path.write_text(path.read_text().replace("${PROM_TOKEN}", "t0k3n"))
    assert _run(code, env).split() == ["False", "True", "True"]
    assert _run(code, env).split() == ["True", "False", "False"]


def test_the_fingerprint_covers_what_validation_runs(tmp_path: Path) -> None:
    """Every meshobs module that loading and validating a config imports is in VALIDATING, so
    a change to any of them invalidates the records."""
    path = tmp_path / "meshobs.yaml"
    path.write_text("suppress:\n- code: MSH04*\n  until: 2026-12-01T00:00:00Z\nthresholds: {p99_ms: 5}\n"
                    "sources: {prometheus: {url: 'http://p'}, envoy: {targets: [{url: 'http://e'}]}}\n")
    env = {**os.environ, "MESHOBS_CONFIG_CACHE": "off"}
    code = (f"import sys; from meshobs.config import load_config; c = load_config({str(path)!r}); c.typed; "
            "from meshobs.checks.base import Settings; Settings.from_thresholds(c.raw['thresholds']); "
            "print('\\n'.join(m.__file__ for n, m in list(sys.modules.items()) "
            "if n.startswith('meshobs') and getattr(m, '__file__', None)))")
    loaded = {Path(f).resolve() for f in _run(code, env).split()}
    package = REPO / "meshobs"
    covered = {p for p in loaded if p.is_relative_to(package.resolve())
               and p.relative_to(package.resolve()).parts[0] not in ("checks", "model", "engine")}
    names = {p.relative_to(package.resolve()).parts[0] for p in covered}
    assert names <= set(config_cache.VALIDATING), names - set(config_cache.VALIDATING)


def test_records_not_read_for_a_month_go(tmp_path: Path) -> None:
    for name in ("old", "new"):
        (tmp_path / f"{name}.yaml").write_text(f"mesh: istio\n# {name}\n")
    load_config(str(tmp_path / "old.yaml"))
    [old] = records()
    long_ago = old.stat().st_mtime - config_cache.KEEP_S - 60
    os.utime(old, (long_ago, long_ago))
    load_config(str(tmp_path / "new.yaml"))  # a write prunes
    assert len(records()) == 1 and not old.exists()


def test_two_installations_keep_a_record_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two meshobs (a venv per project, a checkout beside its release) asking about one file,
    turn and turn about: each finds its own record, neither replaces the other's (stop 29: a
    benchmark alternating two checkouts paid the validation, ~0.5 s, on every run)."""
    path = tmp_path / "meshobs.yaml"
    path.write_text("window: 1m\n")
    for code in (b"A" * 32, b"B" * 32):
        monkeypatch.setattr(config_cache, "_code", lambda code=code: code)
        assert load_config(str(path)).model is not None  # type: ignore[union-attr]  # validated, recorded
    assert len(records()) == 2
    for code in (b"A" * 32, b"B" * 32, b"A" * 32):
        monkeypatch.setattr(config_cache, "_code", lambda code=code: code)
        assert load_config(str(path)).model is None  # type: ignore[union-attr]  # its own record
