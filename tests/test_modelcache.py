"""A packed bundle's normalised model (meshobs.modelcache): exact, versioned, tied to its
bundle, and refused -- one line on stderr, the raw payloads normalised -- whenever anything about
it does not hold. Exactness is checked type for type (tests/support/typediff), not only ``==``."""

from __future__ import annotations

import io
import json
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from meshobs import bundle_read, modelcache
from meshobs.bundle import FORMATS, MODEL, Bundle, iter_bundle, read_bundle, write_bundle
from meshobs.bundle_read import index_header, open_bundle_and_model, open_bundle_and_models
from meshobs.cli.main import cli
from meshobs.collect import build_snapshot, normalize_source
from meshobs.demo.catalog import load_demo
from meshobs.demo.scenario import BUILTIN
from meshobs.demo.scenarios import LIBRARY
from meshobs.model import ControlPlane, MeshSnapshot, SnapshotPart
from meshobs.raw import Payload, RawSource
from tests.support import scenarios
from tests.support.typediff import difference

GENERATED_1000 = Path("/tmp/bench-cache/generated-1000.tar.gz")
ASSEMBLED = modelcache.ASSEMBLED


@pytest.fixture(autouse=True)
def _model_cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(modelcache.ENV, raising=False)
    modelcache.allow(True)


def _model(path: Path) -> tuple[dict[str, Any], bytes | None]:
    index, _read, data = open_bundle_and_model(path, FORMATS, model=MODEL)
    return index, data


def _raw_parts(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[SnapshotPart]:
    """What normalising the archive's payloads makes, source by source (its model not read)."""
    with monkeypatch.context() as m:
        m.setenv(modelcache.ENV, "0")
        b = read_bundle(path)
    assert all(r.part is None for r in b.sources)
    return [normalize_source(r, b.time, b.window_s) for r in b.sources]


def _assembled(path: Path, origin: str = "x") -> MeshSnapshot:
    """The archive's assembled snapshot, decoded (ModelRefused when it would not be used)."""
    opened = open_bundle_and_models(path, FORMATS, follow=modelcache.MEMBERS)
    data = opened.take(ASSEMBLED)
    opened.close()
    assert data is not None, f"{path}: no {ASSEMBLED}"
    header, snap = modelcache.decode_assembled(opened.index_digest, data)
    assert header == {k: v for k, v in opened.index.items() if k != "sources"}
    assert json.dumps(header) == json.dumps({k: v for k, v in opened.index.items() if k != "sources"})
    times = index_header(opened.index)
    return snap.snapshot(times["time"], times["window_s"], origin)


def _made_of(snap: MeshSnapshot) -> dict[str, Any]:
    """A snapshot's fields given to its constructor (its control plane's too): what it is."""
    import dataclasses

    return {f.name: (_made_of(v) if isinstance(v := getattr(snap, f.name), ControlPlane) else v)
            for f in dataclasses.fields(snap) if f.init}


def _raw_snapshot(path: Path, monkeypatch: pytest.MonkeyPatch) -> MeshSnapshot:
    """What replaying the archive's payloads makes (its model not read)."""
    with monkeypatch.context() as m:
        m.setenv(modelcache.ENV, "0")
        return build_snapshot(read_bundle(path), origin="x")


def assert_exact(bundle: Bundle, path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """The archive of ``bundle`` carries a model of every source, each part the very objects
    (types included) that normalising its payloads makes; and their assembly, the very snapshot
    that replaying its payloads makes."""
    write_bundle(bundle, path)
    index, data = _model(path)
    assert data is not None
    cached = modelcache.decode(index, data)
    expected = _raw_parts(path, monkeypatch)
    assert sorted(cached) == list(range(len(expected))), "every source covered"
    for i, part in enumerate(expected):
        assert (d := difference(part, cached[i])) is None, f"source {i} ({bundle.sources[i].name}): {d}"
    assert (d := difference(_made_of(_raw_snapshot(path, monkeypatch)), _made_of(_assembled(path)))) is None, d
    return len(cached)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_demo_bundle_model_is_exact(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert assert_exact(load_demo(name), tmp_path / "b.tar.gz", monkeypatch) > 3


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_library_scenario_bundle_model_is_exact(name: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert assert_exact(scenarios.bundle(name), tmp_path / "b.tar.gz", monkeypatch) > 3


def _corpus_files(corpus: Path, kind: str) -> list[Path]:
    return sorted(p for p in (corpus / kind).rglob("*") if p.is_file())


def test_corpus_built_sources_model_is_exact(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every real Envoy answer in the corpus (config dumps with their secrets, /clusters, /stats)
    as a proxy's payloads, and a failed proxy, normalised and read back from the model."""
    sources = []
    for key, kind in (("config_dump", "envoy-config-dump"), ("clusters", "envoy-clusters"), ("stats", "envoy-stats")):
        for i, f in enumerate(_corpus_files(corpus, kind)):
            raw = RawSource(f"envoy:corpus/{key}-{i}", "envoy", meta={"namespace": "corpus", "pod": f"{key}-{i}"})
            raw.add(Payload("ready", body="LIVE\n", status=200, url="http://127.0.0.1:15000/ready"))
            raw.add(Payload(key, body=f.read_text(encoding="utf-8"), status=200, url=f"http://127.0.0.1:15000/{key}"))
            sources.append(raw)
    sources.append(RawSource("envoy:corpus/down", "envoy", [Payload("ready", error="connection refused")]))
    assert len(sources) > 15
    b = Bundle(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300.0, sources=sources)
    assert assert_exact(b, tmp_path / "b.tar.gz", monkeypatch) == len(sources)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_the_shipped_demo_archives_model_is_what_this_code_makes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard on REVISION: the shipped archives' models were made by the normalisers of the
    commit that packed them. A normaliser whose output changed since then (a status message, a
    field) makes this fail: bump modelcache.REVISION and run ``python -m meshobs.demo.build``, so
    no archive written before the change is read with the old output."""
    from meshobs.demo.build import BUNDLES

    path = BUNDLES / f"{name}.tar.gz"
    index, data = _model(path)
    assert data is not None, f"{name}: no model; run python -m meshobs.demo.build"
    cached = modelcache.decode(index, data)
    expected = _raw_parts(path, monkeypatch)
    assert sorted(cached) == list(range(len(expected))), f"{name}: run python -m meshobs.demo.build"
    for i, part in enumerate(expected):
        assert (d := difference(part, cached[i])) is None, \
            f"{name} source {i}: {d}; bump modelcache.REVISION and run python -m meshobs.demo.build"
    # The assembled snapshot too: an assembly whose output changed (meshobs.assemble) fails here.
    assert (d := difference(_made_of(_raw_snapshot(path, monkeypatch)), _made_of(_assembled(path)))) is None, \
        f"{name} assembled: {d}; bump modelcache.REVISION and run python -m meshobs.demo.build"


@pytest.mark.slow
def test_generated_1000_service_mesh_model_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if GENERATED_1000.is_file():  # the benchmarks' (meshobs-written, read only)
        b = read_bundle(GENERATED_1000)
    else:
        from meshobs.demo.build import render_bundle
        from meshobs.demo.scenario import generate_scenario

        b = render_bundle(generate_scenario(1000))
    assert assert_exact(b, tmp_path / "g.tar.gz", monkeypatch) > 1000


# -- a replay reads it, and gives what the payloads give -----------------------------------------
def _diagnose(path: Path, *flags: str) -> tuple[str, str]:
    result = CliRunner().invoke(cli, ["diagnose", "--all", "-o", "json", "--from", str(path), *flags])
    assert result.exit_code in (0, 1), result.output
    return result.stdout, result.stderr


def test_a_replay_uses_the_model_and_answers_byte_for_byte_as_the_payloads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_bundle(load_demo("ecommerce"), tmp_path / "b.tar.gz")
    calls = []
    real = modelcache.decode_assembled
    monkeypatch.setattr(modelcache, "decode_assembled", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(modelcache, "decode", lambda *a: pytest.fail("the parts were decoded"))
    with_model, err = _diagnose(path)
    assert calls and not err
    without, err = _diagnose(path, "--no-model-cache")
    assert len(calls) == 1 and not err
    assert with_model == without
    monkeypatch.setenv(modelcache.ENV, "0")
    assert _diagnose(path)[0] == without and len(calls) == 1


def test_a_model_covering_every_source_reads_no_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = write_bundle(load_demo("ecommerce"), tmp_path / "b.tar.gz")
    expected = build_snapshot(read_bundle(full), origin="x")
    parts_only = _rewrite(tmp_path / "parts.tar.gz", {k: v for k, v in _members(full).items() if k != ASSEMBLED})

    def no_pack(self: Any, name: str) -> bytes:
        raise AssertionError(f"read {name}")

    monkeypatch.setattr(bundle_read._ArchiveStream, "read", no_pack)
    header, sources = iter_bundle(parts_only)
    assert header.assembled is None and header.stream_kinds == {}  # nothing left to normalise: no fork
    header.stream = sources
    assert build_snapshot(header, origin="x", keep_raw=False) == expected
    # With the assembled snapshot, the parts are not even decompressed.
    monkeypatch.setattr(modelcache, "decode", lambda *a: pytest.fail("the parts were decoded"))
    taken = []
    real = bundle_read._Archive.take
    monkeypatch.setattr(bundle_read._Archive, "take", lambda self, name: taken.append(name) or real(self, name))
    header, sources = iter_bundle(full)
    assert header.assembled is not None and taken == [ASSEMBLED]
    header.stream = sources
    got = build_snapshot(header, origin="x", keep_raw=False)
    assert got == expected and (d := difference(_made_of(expected), _made_of(got))) is None, d


def test_sources_read_from_the_stream_are_the_payloads_whatever_the_model(tmp_path: Path) -> None:
    """A reader of iter_bundle's sources other than build_snapshot (which answers with the
    assembled snapshot instead) gets every payload: nothing in the archive is skipped for it."""
    path = write_bundle(load_demo("ecommerce"), tmp_path / "b.tar.gz")
    header, sources = iter_bundle(path)
    assert header.assembled is not None
    got = list(sources)
    assert all(r.part is None for r in got) and sum(len(r.payloads) for r in got) > 10
    assert [(r.name, [p.body for p in r.payloads]) for r in got] == \
        [(r.name, [p.body for p in r.payloads]) for r in read_bundle(path).sources]
    header.sources = got
    assert build_snapshot(header, origin="x") == build_snapshot(read_bundle(path), origin="x")


def test_the_model_is_right_after_the_index_and_only_in_packed_archives(tmp_path: Path) -> None:
    demo = load_demo("healthy")
    with tarfile.open(write_bundle(demo, tmp_path / "b.tar.gz")) as tar:
        assert tar.getnames()[:3] == ["bundle.json", ASSEMBLED, MODEL]
    with tarfile.open(write_bundle(demo, tmp_path / "old.tar.gz", packed=False)) as tar:
        assert not {MODEL, ASSEMBLED} & set(tar.getnames())
    assert not (write_bundle(demo, tmp_path / "dir") / MODEL).exists()
    assert not (tmp_path / "dir" / ASSEMBLED).exists()
    with tarfile.open(write_bundle(demo, tmp_path / "none.tar.gz", model=False)) as tar:
        assert not {MODEL, ASSEMBLED} & set(tar.getnames())


# -- refused: one line, and the payloads normalised ----------------------------------------------
def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            assert f is not None
            out[m.name] = f.read()
        return out


def _rewrite(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _replay(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[MeshSnapshot, str]:
    header, sources = iter_bundle(path)
    header.stream = sources
    snap = build_snapshot(header, origin="x", keep_raw=False)
    return snap, capsys.readouterr().err


def _refused(path: Path, capsys: pytest.CaptureFixture[str], expected: MeshSnapshot, why: str) -> None:
    snap, err = _replay(path, capsys)
    assert snap == expected
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "bundle's model not used" in lines[0] and why in lines[0], err
    b = read_bundle(path)
    assert all(r.part is None for r in b.sources)
    assert build_snapshot(b, origin="x") == expected
    capsys.readouterr()


@pytest.fixture
def written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, bytes], MeshSnapshot]:
    """The members of an archive with the parts of its model but not their assembly (the
    tests below damage the parts: an assembled snapshot would answer without reading them)."""
    path = write_bundle(load_demo("ecommerce"), tmp_path / "good.tar.gz")
    snap, err = _replay(path, capsys)
    assert not err
    members = _members(path)
    del members[ASSEMBLED]
    return members, snap


@pytest.fixture
def assembled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, bytes], MeshSnapshot]:
    """The members of an archive with its whole model."""
    path = write_bundle(load_demo("ecommerce"), tmp_path / "whole.tar.gz")
    snap, err = _replay(path, capsys)
    assert not err
    return _members(path), snap


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often the parts are decoded."""
    calls: list[int] = []
    real = modelcache.decode
    monkeypatch.setattr(modelcache, "decode", lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.mark.parametrize("damage", ["garbage", "truncated", "version", "snapshot", "index"])
def test_an_assembled_snapshot_not_used_leaves_the_parts(damage: str, assembled: Any, tmp_path: Path, capsys: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged assembled snapshot, one of another version, or one made for another bundle.json
    (any byte of it: here its description, which no part depends on): one line, and the parts."""
    members, expected = assembled
    doc = msgspec.msgpack.decode(members[ASSEMBLED], type=modelcache.Assembled)
    if damage == "garbage":
        members[ASSEMBLED] = os.urandom(4096)
    elif damage == "truncated":
        members[ASSEMBLED] = members[ASSEMBLED][: len(members[ASSEMBLED]) // 2]
    elif damage == "version":
        members[ASSEMBLED] = msgspec.msgpack.encode(msgspec.structs.replace(doc, version="0" * 32))
    elif damage == "snapshot":  # a services tuple of a wrong type
        members[ASSEMBLED] = msgspec.msgpack.encode(msgspec.structs.replace(doc, snapshot=msgspec.Raw(
            msgspec.msgpack.encode([[{"ref": 1}], *msgspec.msgpack.decode(doc.snapshot)[1:]]))))
    else:
        index = json.loads(members["bundle.json"])
        index["description"] = "edited by hand"
        members["bundle.json"] = json.dumps(index).encode()
    calls = _counting(monkeypatch)
    snap, err = _replay(_rewrite(tmp_path / "b.tar.gz", members), capsys)
    assert snap == expected and calls == [1]
    lines = err.strip().splitlines()
    why = {"version": "another model version", "index": "another bundle.json"}.get(damage, "damaged")
    assert len(lines) == 1 and "assembled model not used" in lines[0] and why in lines[0], err


def test_a_model_refused_whole_is_one_line(assembled: Any, tmp_path: Path, capsys: Any) -> None:
    """Both the assembled snapshot and the parts of another version: one line, the payloads."""
    members, expected = assembled
    doc = msgspec.msgpack.decode(members[ASSEMBLED], type=modelcache.Assembled)
    members[ASSEMBLED] = msgspec.msgpack.encode(msgspec.structs.replace(doc, version="0" * 32))
    members[MODEL] = msgspec.msgpack.encode(msgspec.structs.replace(_model_doc(members), version="0" * 32))
    _refused(_rewrite(tmp_path / "b.tar.gz", members), capsys, expected, "another model version")


def test_the_assembled_snapshot_is_not_used_when_disabled_or_in_a_directory(
        assembled: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    members, expected = assembled
    monkeypatch.setattr(modelcache, "decode_assembled", lambda *a: pytest.fail("decoded"))
    path = _rewrite(tmp_path / "b.tar.gz", members)
    modelcache.allow(False)
    try:
        assert _replay(path, capsys) == (expected, "")
    finally:
        modelcache.allow(True)
    d = tmp_path / "dir"
    with tarfile.open(path) as tar:
        tar.extractall(d, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    assert (d / ASSEMBLED).is_file()
    assert _replay(d, capsys) == (expected, "")


def _model_doc(members: dict[str, bytes]) -> modelcache.Model:
    return msgspec.msgpack.decode(members[MODEL], type=modelcache.Model)


def test_another_model_version_is_not_used(written: Any, tmp_path: Path, capsys: Any) -> None:
    members, expected = written
    doc = _model_doc(members)
    members[MODEL] = msgspec.msgpack.encode(msgspec.structs.replace(doc, version="0" * 32))
    _refused(_rewrite(tmp_path / "b.tar.gz", members), capsys, expected, "another model version")


def test_the_version_follows_the_model_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshobs.model import proxy

    before = modelcache.version()
    modelcache.version.cache_clear()
    monkeypatch.setattr(proxy.UpstreamHost, "__annotations__",
                        {**proxy.UpstreamHost.__annotations__, "rq_total": "float"})
    import dataclasses

    field = dataclasses.fields(proxy.UpstreamHost)[5]
    monkeypatch.setattr(field, "type", "float")
    try:
        assert modelcache.version() != before
    finally:
        modelcache.version.cache_clear()
    monkeypatch.undo()
    assert modelcache.version() == before
    monkeypatch.setattr(modelcache, "REVISION", modelcache.REVISION + 1)
    modelcache.version.cache_clear()
    try:
        assert modelcache.version() != before
    finally:
        monkeypatch.undo()
        modelcache.version.cache_clear()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-type", "not-a-map", "deep", "time", "source-out"])
def test_a_damaged_or_hostile_model_is_not_used(damage: str, written: Any, tmp_path: Path, capsys: Any) -> None:
    members, expected = written
    doc = _model_doc(members)
    first = doc.sources[0]
    if damage == "garbage":
        members[MODEL] = os.urandom(4096)
    elif damage == "truncated":
        members[MODEL] = members[MODEL][: len(members[MODEL]) // 2]
    else:
        if damage == "wrong-type":
            part = msgspec.msgpack.encode({"proxies": [{"id": 1, "pod": "p", "namespace": "n"}]})
        elif damage == "not-a-map":
            part = msgspec.msgpack.encode({"proxies": [{"id": "a", "pod": "p", "namespace": "n",
                                                        "update_rejected": [1, 2]}]})
        elif damage == "deep":
            nested = b"\x81\xa1a" * 100_000 + b"\x01"  # {"a": {"a": ... 1}}, 100,000 deep
            part = msgspec.msgpack.encode({"proxies": [{"id": "a", "pod": "p", "namespace": "n",
                                                        "http_counters": "NESTED"}]})
            part = part.replace(msgspec.msgpack.encode("NESTED"), nested)
        else:
            part = bytes(first.part)
        covered = msgspec.structs.replace(first, part=msgspec.Raw(part))
        if damage == "source-out":
            covered = msgspec.structs.replace(first, number=10_000)
        sources = [covered, *doc.sources[1:]]
        doc = msgspec.structs.replace(doc, sources=sources)
        if damage == "time":
            doc = msgspec.structs.replace(doc, time="2020-01-01T00:00:00.000000Z")
        members[MODEL] = msgspec.msgpack.encode(doc)
    why = {"time": "another time", "source-out": "does not list"}.get(damage, "damaged")
    _refused(_rewrite(tmp_path / "b.tar.gz", members), capsys, expected, why)


@pytest.mark.parametrize("edit", ["status", "huge-int"])
def test_a_model_of_other_payloads_is_not_used(edit: str, written: Any, tmp_path: Path, capsys: Any) -> None:
    """An index entry changed (the status of one payload; a meta value past 64 bits, which
    msgpack cannot even digest): its source's digest no longer matches."""
    members, _expected = written
    index = json.loads(members["bundle.json"])
    entry = next(s for s in index["sources"] if s["kind"] == "envoy")
    if edit == "status":
        entry["payloads"][0]["status"] = 503
    else:
        entry["meta"]["huge"] = 10**30
    members["bundle.json"] = json.dumps(index).encode()
    path = _rewrite(tmp_path / "b.tar.gz", members)
    with_503, _err = _replay(_rewrite(tmp_path / "c.tar.gz", {k: v for k, v in members.items() if k != MODEL}), capsys)
    _refused(path, capsys, with_503, "does not match source")


def test_a_model_elsewhere_in_the_archive_or_in_a_directory_is_not_read(
        written: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    members, expected = written
    model = members.pop(MODEL)
    monkeypatch.setattr(modelcache, "decode", lambda *a: pytest.fail("decoded"))
    moved = _rewrite(tmp_path / "b.tar.gz", {**members, MODEL: model})  # last, not after the index
    assert _replay(moved, capsys) == (expected, "")
    d = tmp_path / "dir"
    with tarfile.open(write_bundle(load_demo("ecommerce"), tmp_path / "c.tar.gz", model=False)) as tar:
        tar.extractall(d, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (d / MODEL).write_bytes(model)
    header, sources = iter_bundle(d)
    header.stream = sources
    assert build_snapshot(header, origin="x", keep_raw=False) == expected
    assert build_snapshot(read_bundle(d), origin="x") == expected


def test_an_old_archive_without_a_model_replays_as_before(tmp_path: Path, capsys: Any) -> None:
    demo = load_demo("ecommerce")
    with_model, _err = _replay(write_bundle(demo, tmp_path / "a.tar.gz"), capsys)
    assert _replay(write_bundle(demo, tmp_path / "b.tar.gz", model=False), capsys) == (with_model, "")
    assert _replay(write_bundle(demo, tmp_path / "c.tar.gz", packed=False), capsys) == (with_model, "")


def test_a_part_that_would_not_come_back_exact_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A normaliser that puts an int where the model says float: that source is not cached (and
    normalised from its payloads at replay), the others are."""
    from meshobs import collect
    from meshobs.model import SourceState, SourceStatus

    real = collect.normalize_source

    def odd(raw: RawSource, time: datetime, window_s: float) -> SnapshotPart:
        part = real(raw, time, window_s)
        if raw.name == "odd":
            part.sources = [SourceStatus("odd", SourceState.OK, duration_s=3)]  # int, annotated float
        return part

    monkeypatch.setattr(collect, "normalize_source", odd)
    sources = [RawSource(n, "envoy", [Payload("ready", error="refused")]) for n in ("a", "odd", "b")]
    path = write_bundle(Bundle(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=60.0, sources=sources),
                        tmp_path / "b.tar.gz")
    index, data = _model(path)
    assert data is not None
    assert sorted(modelcache.decode(index, data)) == [0, 2]
    # Their assembly holds the odd part's status too: not written (the replay uses the parts).
    with tarfile.open(path) as tar:
        assert ASSEMBLED not in tar.getnames()


def test_a_replay_answered_by_the_assembled_snapshot_has_the_bundles_header_and_parses_no_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Times, config, scope (a bundle recorded for one service's neighbourhood), name: what
    bundle.json says, read from the assembled member; the index itself is not parsed."""
    demo = load_demo("ecommerce")
    demo.scope = {"target": "shop/cart-service", "services": ["shop/cart-service"], "workloads": []}
    demo.description = "recorded for cart"
    path = write_bundle(demo, tmp_path / "b.tar.gz")
    whole = read_bundle(path)
    monkeypatch.setattr(bundle_read, "parse_index", lambda *a: pytest.fail("bundle.json parsed"))
    header, sources = iter_bundle(path)
    assert header.assembled is not None
    for name in ("time", "window_s", "config", "scope", "name", "description", "created", "meshobs_version"):
        assert (d := difference(getattr(whole, name), getattr(header, name))) is None, f"{name}: {d}"
    header.stream = sources
    snap = build_snapshot(header, origin="x", keep_raw=False)
    monkeypatch.undo()
    assert snap == build_snapshot(whole, origin="x")


def test_a_model_member_past_the_readers_cap_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The readers refuse a whole archive with a member past MAX_FILE_BYTES: a model that big
    (a mesh far past 10,000 services) is left out rather than make the archive unreadable."""
    demo = load_demo("ecommerce")
    with tarfile.open(write_bundle(demo, tmp_path / "a.tar.gz")) as tar:
        sizes = {m.name: m.size for m in tar.getmembers()}
    cap = (sizes[ASSEMBLED] + sizes[MODEL]) // 2
    small, big = sorted((sizes[ASSEMBLED], sizes[MODEL]))
    assert sizes["bundle.json"] < cap and small < cap < big
    monkeypatch.setattr(bundle_read, "MAX_FILE_BYTES", cap)
    path = write_bundle(demo, tmp_path / "b.tar.gz")
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert {ASSEMBLED, MODEL} & set(names) == {ASSEMBLED if sizes[ASSEMBLED] < cap else MODEL}
    replayed = _replay(path, capsys)
    monkeypatch.undo()
    assert replayed == (build_snapshot(read_bundle(path), origin="x"), "")
