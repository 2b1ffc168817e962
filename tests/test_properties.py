"""Property-based tests: mutated real payloads through every normaliser, the bundle reader and
the CLI.

Seeds are real payloads: the shared corpus (Istio, Consul, Kuma, OSM and Envoy Gateway config
dumps, /clusters, /stats, Istio and App Mesh manifests, App Mesh exports, Jaeger traces,
Prometheus answers) and every source of the demo meshes. Hypothesis mutates them (a node
replaced by another JSON value, deleted, wrapped, turned into text; the text cut or spliced)
and checks:

* a normaliser returns a SnapshotPart or raises ValueError, nothing else;
* the bundle reader returns a Bundle or raises BundleError, nothing else;
* the CLI ends with an exit code (0-3), never an internal error, and no check crashes (MSH0001).

Example counts are bounded for CI (100 per normaliser and for the bundle reader, 6 CLI runs;
``MESHOBS_HYPOTHESIS=explore MESHOBS_HYPOTHESIS_EXAMPLES=N`` runs many more locally); the CI
examples are derandomised, so a failure reproduces.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshobs.bundle import Bundle, BundleError, read_bundle, write_bundle
from meshobs.collect import MODULES, _module
from meshobs.collectors.base import NormalizeContext
from meshobs.demo.catalog import load_demo
from meshobs.model import SnapshotPart
from meshobs.raw import Payload, RawSource, utc_now
from tests.conftest import CORPUS

settings.register_profile("ci", max_examples=100, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("explore", max_examples=int(os.environ.get("MESHOBS_HYPOTHESIS_EXAMPLES", "2000")),
                          deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("explore" if os.environ.get("MESHOBS_HYPOTHESIS") == "explore" else "ci")

CTX = NormalizeContext(utc_now(), 300)
DEMOS = ("ecommerce", "ecommerce-appmesh", "migration", "cert-expiry")
MAX_ITEMS = 4  # seeds keep their real shape but at most this many items per list (speed)


def _shrink(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shrink(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shrink(v) for v in value[:MAX_ITEMS]]
    return value


def _small(body: str | None) -> str | None:
    """A JSON body with its lists cut to a few items (other bodies as they are)."""
    if not body or body.lstrip()[:1] not in ("{", "["):
        return body
    try:
        return json.dumps(_shrink(json.loads(body)))
    except ValueError:
        return body


def _envoy(key: str, body: str) -> RawSource:
    return RawSource("envoy:default/seed", "envoy", meta={"namespace": "default", "pod": "seed-0"}, payloads=[
        Payload("ready", body="LIVE\n", status=200), Payload(key, body=body, status=200)])


@cache
def seeds() -> tuple[RawSource, ...]:
    """Real RawSources of every kind, lists shortened."""
    out: list[RawSource] = []
    for demo in DEMOS:
        for raw in load_demo(demo).sources:
            if raw.kind == "envoy" and any(s.kind == "envoy" and s.name != raw.name for s in out):
                continue  # one proxy per demo is plenty
            out.append(replace(raw, payloads=[replace(p, body=_small(p.body)) for p in raw.payloads]))
    for path in sorted((CORPUS / "envoy-config-dump").rglob("*.json")):
        out.append(_envoy("config_dump", _small(path.read_text(encoding="utf-8")) or ""))
    for path in sorted((CORPUS / "envoy-clusters").rglob("*.json")):
        out.append(_envoy("clusters", _small(path.read_text(encoding="utf-8")) or ""))
    for path in sorted((CORPUS / "envoy-stats").rglob("*")):
        if path.is_file():
            out.append(_envoy("stats", "\n".join(path.read_text(encoding="utf-8").splitlines()[:60])))
    manifests = sorted((CORPUS / "istio-config").rglob("*.yaml")) + sorted((CORPUS / "appmesh-config").rglob("*.y*ml"))
    for path in manifests:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": _shrink(docs)})
        out.append(RawSource("manifests", "manifests", meta={"layer": "intended"}, payloads=[
            Payload(str(path), body=body, status=None, meta={"format": "objects", "unfilled": []})]))
    for path in sorted((CORPUS / "appmesh-config").rglob("*.json")):
        out.append(RawSource("appmesh", "appmesh", payloads=[
            Payload(f"exported:{path.name}", body=path.read_text(encoding="utf-8"), status=200)]))
    for path in sorted((CORPUS / "jaeger-traces").rglob("*.json")):
        doc = _shrink(json.loads(path.read_text(encoding="utf-8")))
        if isinstance(doc, dict) and "traceID" in doc:
            doc = {"data": [doc]}
        out.append(RawSource("jaeger", "jaeger", payloads=[
            Payload("services", body=json.dumps({"data": ["service-x"]}), status=200),
            Payload("traces/service-x", body=json.dumps(doc), status=200)]))
    for path in sorted((CORPUS / "prometheus").rglob("*.json")):
        out.append(RawSource("prometheus", "prometheus", payloads=[
            Payload("query:requests", body=_small(path.read_text(encoding="utf-8")), status=200)]))
    # The control plane: istiod's endpoints (a NACK, an unacknowledged push) and its metrics.
    from meshobs.collectors.istiod.discovery import minimal_pod
    from meshobs.demo.render_istiod import kubernetes_objects
    from tests.support.scenarios import bundle, scenario

    for name in ("envoyfilter-nack", "proxy-unacked"):
        for raw in bundle(name).sources:
            if raw.kind == "istiod":
                istiod_pods = kubernetes_objects(scenario(name))["pods"]
                pods = {"kind": "PodList", "items": [minimal_pod(p) for p in istiod_pods]}
                out.append(replace(raw, payloads=[Payload("pods", body=json.dumps(pods), status=200),
                                                  *(replace(p, body=_small(p.body)) for p in raw.payloads)]))
            elif raw.kind == "prometheus":
                out.append(replace(raw, payloads=[replace(p, body=_small(p.body)) for p in raw.payloads
                                                  if p.key == "query:controlplane"]))
    return tuple(out)


# -- mutations -------------------------------------------------------------------------------
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["", "LIVE", "8080", "outbound|80||x", "1.5s", "-1", "null"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)
OPS = ("replace", "delete", "wrap", "stringify", "empty")


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else [doc] if op == "wrap" else json.dumps(doc)[:20]
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    node = parent[last]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif op == "wrap":
        parent[last] = [node]
    elif op == "stringify":
        parent[last] = json.dumps(node)[: len(json.dumps(node)) // 2 + 1]
    else:
        parent[last] = type(node)() if isinstance(node, dict | list | str) else None
    return doc


@st.composite
def mutated_body(draw: st.DrawFn, body: str) -> str:
    try:
        doc: Any = json.loads(body)
    except ValueError:
        doc = None
    if doc is None or draw(st.integers(0, 9)) == 0:  # text mutations: cut, splice, flip
        cut = draw(st.integers(0, len(body)))
        junk = draw(st.text(max_size=8) | st.sampled_from(["\x00", "\ufffd", "]]}}", "{", "\n#", "nan"]))
        return body[:cut] + junk + (body[cut:] if draw(st.booleans()) else "")
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        doc = _mutate(copy.deepcopy(doc) if not path else doc, path, draw(st.sampled_from(OPS)), draw(VALUES))
    return json.dumps(doc)


@st.composite
def mutated_source(draw: st.DrawFn, kinds: tuple[str, ...]) -> RawSource:
    candidates = [s for s in seeds() if s.kind in kinds]
    raw = draw(st.sampled_from(candidates))
    bodies = [i for i, p in enumerate(raw.payloads) if p.body]
    payloads = list(raw.payloads)
    for i in draw(st.lists(st.sampled_from(bodies), min_size=1, max_size=2, unique=True)):
        p = payloads[i]
        payloads[i] = replace(p, body=draw(mutated_body(p.body or "")), meta=copy.deepcopy(p.meta))
    return replace(raw, payloads=payloads, meta=copy.deepcopy(raw.meta))


def _only_value_error(normalize: Callable[[RawSource, NormalizeContext], SnapshotPart], raw: RawSource) -> None:
    try:
        part = normalize(raw, CTX)
    except ValueError:
        return
    assert isinstance(part, SnapshotPart)


# -- every normaliser ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(MODULES))
def test_normalisers_raise_nothing_but_value_error(kind: str) -> None:
    if not [s for s in seeds() if s.kind == kind]:
        pytest.fail(f"no real seed payloads for {kind}")
    normalize = _module(kind).normalize

    @settings(max_examples=settings().max_examples)
    @given(mutated_source((kind,)))
    def check(raw: RawSource) -> None:
        _only_value_error(normalize, raw)

    check()


# -- the bundle reader ------------------------------------------------------------------------
@cache
def _seed_index(tmp: str) -> tuple[dict[str, Any], Path]:
    demo = load_demo("cert-expiry")
    small = replace(demo, sources=[replace(s, payloads=s.payloads[:2]) for s in demo.sources[:4]])
    path = write_bundle(small, Path(tmp) / "seed")
    return json.loads((path / "bundle.json").read_text()), path


def test_bundle_reader_raises_nothing_but_bundle_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    index, seed = _seed_index(str(tmp_path_factory.mktemp("seed")))
    work = tmp_path_factory.mktemp("mutated")
    counter = iter(range(10**6))

    @given(mutated_body(json.dumps(index)))
    def check(text: str) -> None:
        d = work / f"b{next(counter)}"
        (d / "payloads").mkdir(parents=True)
        for p in (seed / "payloads").rglob("*"):
            if p.is_file():
                target = d / p.relative_to(seed)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(p.read_bytes())
        (d / "bundle.json").write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            bundle = read_bundle(d)
        except BundleError:
            return
        assert isinstance(bundle, Bundle)

    check()


# -- the CLI ---------------------------------------------------------------------------------
def test_the_cli_always_ends_with_an_exit_code(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = load_demo("migration")  # Istio and App Mesh, every source kind but manifests
    kinds = tuple(sorted({s.kind for s in base.sources}))
    work = tmp_path_factory.mktemp("cli")
    counter = iter(range(10**6))
    runner = CliRunner()

    @settings(max_examples=6 if settings().derandomize else settings().max_examples // 6)
    @given(mutated_source(kinds))
    def check(raw: RawSource) -> None:
        sources = [s for s in base.sources if s.name != raw.name] + [raw]
        path = write_bundle(replace(base, sources=sources), work / f"b{next(counter)}.tar.gz")
        for args in (["diagnose", "--all", "-o", "json"], ["graph"], ["drift", "-o", "json"]):
            result = runner.invoke(__import__("meshobs.cli.main", fromlist=["cli"]).cli,
                                   [*args, "--from", str(path)], catch_exceptions=False)
            assert result.exit_code in (0, 1, 2, 3), (args, result.output)
            assert "internal error" not in result.stderr and "Traceback" not in result.output, result.stderr
            if args[0] == "diagnose":
                assert '"MSH0001"' not in result.stdout, "a check crashed on a mutated payload"

    check()
