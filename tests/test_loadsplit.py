"""Loading a replay on two cores (meshobs.loadsplit): the snapshot is the one a single process
builds, from a list of sources or a streamed archive; a child that fails or dies costs time, not
answers; small meshes, started streams and unsafe processes stay in one process."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from meshobs import handback, loadsplit
from meshobs.bundle import Bundle, iter_bundle, write_bundle
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import fanout
from meshobs.model import MeshSnapshot, Proxy, ServiceRef, SnapshotPart, SourceState, SourceStatus
from meshobs.model.frozen import FrozenDict
from meshobs.raw import RawSource

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")

MESH = "generated-40"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(load_demo(MESH), tmp_path_factory.mktemp("loadsplit") / "mesh.tar.gz", model=False)


@pytest.fixture(scope="module")
def serial(archive: Path) -> MeshSnapshot:
    bundle, sources = iter_bundle(archive)
    return build_snapshot(bundle, origin="x", sources=list(sources))  # a given list: one process


@pytest.fixture(autouse=True)
def _two_cores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Whatever this machine or its cgroup allows, and however few proxies the test mesh has.
    monkeypatch.setattr(fanout, "cores", lambda: 2)
    monkeypatch.setattr(loadsplit, "MIN_PROXIES", 10)
    fanout.children_max_rss_kib.clear()
    yield
    fanout.children_max_rss_kib.clear()


def _streamed(archive: Path) -> Bundle:
    bundle, sources = iter_bundle(archive)
    bundle.stream = sources
    return bundle


def _in_child(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """The child runs ``action`` once it has normalised its share (before handing it back)."""
    theirs = loadsplit._Split._theirs

    def run(self: loadsplit._Split) -> dict[int, SnapshotPart]:
        done = theirs(self)
        action()
        return done

    monkeypatch.setattr(loadsplit._Split, "_theirs", run)


def test_a_streamed_replay_loads_the_same_snapshot_on_two_cores(archive: Path, serial: MeshSnapshot) -> None:
    snap = build_snapshot(_streamed(archive), origin="x", keep_raw=False)
    assert len(fanout.children_max_rss_kib) == 1 and fanout.children_max_rss_kib[0] > 0
    assert snap == serial
    assert len(serial.proxies) > 20 and serial.edges and serial.services  # something to compare


def test_a_list_of_sources_loads_the_same_snapshot_on_two_cores(archive: Path, serial: MeshSnapshot) -> None:
    bundle, sources = iter_bundle(archive)
    bundle.sources = list(sources)
    snap = build_snapshot(bundle, origin="x")
    assert fanout.children_max_rss_kib and fanout.children_max_rss_kib[0] > 0
    assert snap == serial
    assert all(p.body is not None for r in bundle.sources for p in r.payloads if p.status == 200)  # kept


@pytest.mark.parametrize("death", ["fails", "killed"])
@pytest.mark.parametrize("how", ["stream", "list"])
def test_a_child_that_fails_or_dies_leaves_its_share_to_the_parent(
        archive: Path, serial: MeshSnapshot, monkeypatch: pytest.MonkeyPatch, death: str, how: str) -> None:
    def fail() -> None:
        if death == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("the child failed")

    _in_child(monkeypatch, fail)
    if how == "stream":
        snap = build_snapshot(_streamed(archive), origin="x", keep_raw=False)  # read a second time
    else:
        bundle, sources = iter_bundle(archive)
        bundle.sources = list(sources)
        snap = build_snapshot(bundle, origin="x", keep_raw=False)
    assert fanout.children_max_rss_kib == [0]  # forked, handed nothing back
    assert snap == serial


def test_a_child_that_stops_early_leaves_the_rest_of_its_share_to_the_parent(
        archive: Path, serial: MeshSnapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = loadsplit._Split._theirs

    def half(self: loadsplit._Split) -> dict[int, SnapshotPart]:
        done = theirs(self)
        return dict(list(done.items())[: len(done) // 2])

    monkeypatch.setattr(loadsplit._Split, "_theirs", half)
    snap = build_snapshot(_streamed(archive), origin="x", keep_raw=False)
    assert fanout.children_max_rss_kib[0] > 0
    assert snap == serial


def test_small_meshes_and_started_streams_stay_in_one_process(
        archive: Path, serial: MeshSnapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loadsplit, "MIN_PROXIES", len(serial.proxies) + 1)  # below the threshold
    assert build_snapshot(_streamed(archive), origin="x", keep_raw=False) == serial
    assert fanout.children_max_rss_kib == []
    monkeypatch.setattr(loadsplit, "MIN_PROXIES", len(serial.proxies))  # at it
    assert build_snapshot(_streamed(archive), origin="x", keep_raw=False) == serial
    assert len(fanout.children_max_rss_kib) == 1
    fanout.children_max_rss_kib.clear()
    started = _streamed(archive)
    assert started.stream is not None
    first = next(started.stream)
    started.sources = [first]  # one source read: a child would share the archive's file offset
    assert build_snapshot(started, origin="x", keep_raw=False) == serial
    assert fanout.children_max_rss_kib == []


def test_no_fork_with_another_thread_alive(archive: Path, serial: MeshSnapshot) -> None:
    import threading

    results: list[MeshSnapshot] = []
    worker = threading.Thread(target=lambda: results.append(build_snapshot(_streamed(archive), origin="x")))
    worker.start()
    worker.join()
    assert results == [serial]
    assert fanout.children_max_rss_kib == []


def test_the_envoy_sources_are_dealt_in_turn() -> None:
    deal = loadsplit._Dealer()
    envoy = [RawSource(f"envoy:{n}", "envoy") for n in range(12)]
    done = RawSource("envoy:done", "envoy", part=SnapshotPart())
    failed = RawSource("envoy:failed", "envoy", error="refused")
    picks = [deal.to_child(r) for r in [RawSource("prometheus", "prometheus"), done, failed, *envoy]]
    k, n = loadsplit.CHILD_SHARE
    assert picks[:3] == [False, False, False]  # not Envoy, normalised already, nothing to read
    assert picks[3:] == [(i % n) < k for i in range(12)]


# -- the hand-back ----------------------------------------------------------------------------


def test_the_hand_back_gives_the_same_objects() -> None:
    tz = timezone(timedelta(hours=2))
    shared = FrozenDict({"rq": 0, "nested": FrozenDict({"a": (1, 2)})})
    status = SourceStatus("envoy:a", SourceState.OK, duration_s=0, inputs=shared)  # an int in a float field
    proxy = Proxy(id="a.ns", pod="a", namespace="ns", uptime_s=3, update_rejected=shared)
    obj = [proxy, status, ServiceRef("ns", "svc"), datetime(2026, 1, 1, tzinfo=tz), datetime(2026, 1, 1, tzinfo=UTC)]
    back = pickle.loads(handback.dumps(obj))
    assert back == obj
    assert [type(x) for x in back] == [type(x) for x in obj]
    assert back[1].duration_s.__class__ is int and back[0].uptime_s.__class__ is int  # not made floats
    assert back[3].tzinfo == tz  # not moved to UTC
    assert back[0].update_rejected is back[1].inputs  # shared as before
    assert type(back[0].update_rejected) is FrozenDict and back[0].update_rejected["nested"]["a"] == (1, 2)
    assert handback.reducers()[Proxy] is not None
    written = io.BytesIO()
    handback.dump(obj, written)  # what a forked child writes to its file as it pickles
    assert written.getvalue() == handback.dumps(obj)


def test_only_dataclasses_rebuilt_exactly_by_their_constructor_are_pickled_through_it() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int
        b: str = "x"

    @dataclasses.dataclass
    class After:
        a: int

        def __post_init__(self) -> None:
            self.a += 1

    @dataclasses.dataclass
    class Hidden:
        a: int
        b: int = dataclasses.field(init=False, default=0)

    @dataclasses.dataclass(kw_only=True)
    class Keywords:
        a: int

    @dataclasses.dataclass
    class Own:
        a: int

        def __init__(self, a: int, extra: int = 0) -> None:
            self.a = a + extra

    assert handback.by_constructor(Plain)
    assert handback.by_constructor(Proxy) and handback.by_constructor(SourceStatus)
    for cls in (After, Hidden, Keywords, Own, FrozenDict, MeshSnapshot, int):
        assert not handback.by_constructor(cls), cls


def test_a_model_covering_some_proxies_leaves_the_others_shared_on_two_cores(
        tmp_path: Path, serial: MeshSnapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle's model (meshobs.modelcache) that covers every other source: the parent and the
    child deal only the sources left to normalise, and agree on them; a child that dies leaves
    its share to the parent, which reads the archive again without decoding the model again."""
    import io
    import tarfile

    import msgspec

    from meshobs import modelcache
    from meshobs.bundle import MODEL

    monkeypatch.delenv(modelcache.ENV, raising=False)
    modelcache.allow(True)
    path = write_bundle(load_demo(MESH), tmp_path / "full.tar.gz")
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    doc = msgspec.msgpack.decode(members[MODEL], type=modelcache.Model)
    members[MODEL] = msgspec.msgpack.encode(msgspec.structs.replace(doc, sources=doc.sources[::2]))
    del members[modelcache.ASSEMBLED]  # else the replay reads the assembled snapshot, no part
    half = tmp_path / "half.tar.gz"
    with tarfile.open(half, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    fanout.children_max_rss_kib.clear()  # the writer's (it normalised on two cores too)
    bundle = _streamed(half)
    assert bundle.stream_kinds is not None and 10 < bundle.stream_kinds["envoy"] < len(serial.proxies)
    assert build_snapshot(bundle, origin="x", keep_raw=False) == serial
    assert len(fanout.children_max_rss_kib) == 1
    decoded = []
    real = modelcache.decode
    monkeypatch.setattr(modelcache, "decode", lambda *a: decoded.append(1) or real(*a))
    _in_child(monkeypatch, lambda: os._exit(9))
    assert build_snapshot(_streamed(half), origin="x", keep_raw=False) == serial
    assert decoded == [1]
