"""The timeline on hand-built meshes: several sources on one time axis, the changes each source
dates and the services they touch, and the pairing of an onset with the change before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meshobs.checks.base import Settings
from meshobs.model import (
    ConfigResource,
    ContainerRestarts,
    Edge,
    History,
    HistorySeries,
    MeshSnapshot,
    ObjectDates,
    Pod,
    Proxy,
    Service,
    ServiceRef,
    Workload,
    WorkloadRef,
    Write,
    XdsResource,
    freeze,
    frozen_map,
)
from meshobs.timeline import build
from meshobs.timeline.changes import changes_between, touches
from meshobs.timeline.frame import CALLERS, OUTBOUND, SERVICE, frames

END = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
START = END - timedelta(hours=1)
STEP = 15.0
N = 241
ONSET = END - timedelta(minutes=20)

WEB, API, DB = ServiceRef("shop", "web"), ServiceRef("shop", "api"), ServiceRef("data", "db")
WEB_W, API_W, DB_W = WorkloadRef("shop", "web-v1"), WorkloadRef("shop", "api-v3"), WorkloadRef("data", "db-v2")


def times(offset: float = 0.0) -> list[float]:
    return [START.timestamp() + STEP * k + offset for k in range(N)]


def points(value: object, offset: float = 0.0, since: datetime | None = None) -> tuple[tuple[float, float], ...]:
    """Points every step (shifted by ``offset`` s, as another engine aligns them), from ``since``."""
    out = []
    for t in times(offset):
        if since is not None and t < since.timestamp():
            continue
        v = value(t) if callable(value) else value  # type: ignore[operator]
        out.append((t, float(v)))
    return tuple(out)


def history(*series: HistorySeries) -> History:
    return History(start=START, end=END, step_s=STEP, series=series,
                   signals=frozenset({"requests", "errors", "p99_ms"}), rate_window_s=60.0)


def dr(name: str, host: str, changed: datetime | None, created: datetime = END - timedelta(days=30)) -> ConfigResource:
    writes = [Write(created, "helm", "Update")] + ([Write(changed, "kubectl-edit", "Update")] if changed else [])
    return ConfigResource("DestinationRule", "data", name, freeze({"host": host}),
                          dates=ObjectDates(created, 2 if changed else 1, tuple(writes)))


def mesh(hist: History, *config: ConfigResource, pods: tuple[Pod, ...] = (), proxies: tuple[Proxy, ...] = ()
         ) -> MeshSnapshot:
    services = (Service(WEB, workloads=(WEB_W,)), Service(API, workloads=(API_W,)), Service(DB, workloads=(DB_W,)))
    workloads = (Workload(WEB_W, services=(WEB,), labels=frozen_map({"app": "web"})),
                 Workload(API_W, services=(API,), labels=frozen_map({"app": "api"})),
                 Workload(DB_W, services=(DB,), labels=frozen_map({"app": "db"})))
    edges = (Edge(WEB_W, API, API_W, WEB, request_rate=50.0), Edge(API_W, DB, DB_W, API, request_rate=40.0))
    return MeshSnapshot(time=END, window_s=300.0, services=services, workloads=workloads, edges=edges,
                        config=config, pods=pods, proxies=proxies, history=hist)


def ramp(rate: float, onset: datetime) -> object:
    """What rate(x[1m]) answers for a counter that starts growing at ``rate`` at ``onset``."""
    return lambda t: rate * min(1.0, max(0.0, (t - onset.timestamp()) / 60.0))


def failing_db(onset: datetime = ONSET, offset: float = 0.0) -> History:
    """api calls db at 40 req/s; 25 % of them fail since ``onset`` (an error series born then),
    seen by api's proxy; db's own proxy reports at timestamps ``offset`` s off the grid."""
    return history(
        HistorySeries("requests", DB, "source", API_W, points(40.0)),
        HistorySeries("errors", DB, "source", API_W, points(ramp(10.0, onset), since=onset + timedelta(seconds=15))),
        HistorySeries("requests", DB, "destination", API_W, points(40.0, offset)),
        HistorySeries("requests", API, "source", WEB_W, points(50.0)),
    )


def test_sources_are_put_on_one_time_axis() -> None:
    """Another engine's timestamps (7 s off the grid) land on the nearest step; a step where
    requests flowed but no error series existed yet is 0, not a gap; no requests is a gap."""
    hist = failing_db(offset=7.0)
    gap = tuple(p for p in hist.series[0].points if not (1000 <= p[0] - START.timestamp() < 1300))
    hist = history(HistorySeries("requests", DB, "source", API_W, gap), *hist.series[1:])
    fr = frames(hist, lambda w: [{WEB_W: WEB, API_W: API, DB_W: DB}[w]])
    views = fr.views(DB)
    assert set(views) == {CALLERS, SERVICE}
    callers = views[CALLERS]
    assert len(callers) == N and callers.index[0] == START.timestamp()
    assert callers.iloc[0] == 0.0 and callers.iloc[-1] == pytest.approx(0.25)
    assert callers.iloc[1000 // 15 + 2] != callers.iloc[1000 // 15 + 2]  # NaN: the gap
    assert views[SERVICE].iloc[0] == 0.0 and views[SERVICE].notna().all()  # 7 s off, snapped
    assert set(fr.edges(DB, CALLERS)) == {str(API_W)}


def test_calls_to_no_service_are_filed_under_the_caller() -> None:
    blackhole = ServiceRef("unknown", "BlackHoleCluster")
    hist = history(HistorySeries("requests", DB, "source", API_W, points(30.0)),
                   HistorySeries("requests", blackhole, "source", API_W, points(10.0, since=ONSET)),
                   HistorySeries("errors", blackhole, "source", API_W, points(10.0, since=ONSET)))
    fr = frames(hist, lambda w: [API] if w == API_W else [])
    outbound = fr.views(API)[OUTBOUND]
    assert outbound.iloc[0] == 0.0 and outbound.iloc[-1] == pytest.approx(10.0 / 40.0)
    assert ServiceRef("unknown", "BlackHoleCluster") not in fr.services


def test_an_onset_is_paired_with_the_change_just_before_it() -> None:
    snap = mesh(failing_db(), dr("db", "db.data.svc.cluster.local", ONSET - timedelta(seconds=40)),
                dr("other", "other.data.svc.cluster.local", ONSET - timedelta(seconds=5)))
    tl = build(snap, Settings())
    onset = tl.onset(DB, "errors")
    assert onset is not None and onset.started == ONSET and onset.view == CALLERS
    assert onset.edges == (str(API_W),) and onset.after == pytest.approx(0.25)
    # The later edit touches another host: the one that touches db is named.
    assert onset.change is not None and onset.change.subject == "DestinationRule data/db"
    assert onset.lead_s == 40.0 and onset.via is None
    assert onset.change.detail == "kubectl-edit, Update; generation 2"


def test_a_callers_onset_is_paired_through_the_service_it_calls() -> None:
    hist = history(*failing_db().series,
                   HistorySeries("errors", API, "source", WEB_W, points(ramp(12.5, ONSET), since=ONSET)))
    tl = build(mesh(hist, dr("db", "db.data.svc.cluster.local", ONSET - timedelta(seconds=40))), Settings())
    api = tl.onset(API, "errors")
    assert api is not None and api.via == DB and api.lead_s == 40.0
    assert [str(s) for s, _t in _order(tl)] == ["data/db", "shop/api"]


def _order(tl: object) -> list[tuple[ServiceRef, datetime | None]]:
    from meshobs.render.timeline import order

    return order(tl)  # type: ignore[arg-type]


def test_a_change_older_than_the_lookback_is_not_named() -> None:
    old = dr("db", "db.data.svc.cluster.local", ONSET - timedelta(minutes=11))
    tl = build(mesh(failing_db(), old), Settings())
    onset = tl.onset(DB, "errors")
    assert onset is not None and onset.change is None
    # ... but it is in the history's changes, and a longer lookback names it.
    assert any(c.subject == "DestinationRule data/db" and c.what == "changed" for c in tl.changes)
    longer = build(mesh(failing_db(), old), Settings(change_lookback_s=900.0))
    assert longer.onset(DB, "errors").change is not None  # type: ignore[union-attr]


def test_a_push_counts_only_right_before_and_only_without_an_edit() -> None:
    def proxies(pushed: datetime) -> tuple[Proxy, ...]:
        return (Proxy("db-1.data", "db-1", "data", DB_W, xds=(XdsResource("cds", "v9", pushed),)),)

    far = build(mesh(failing_db(), proxies=proxies(ONSET - timedelta(minutes=4))), Settings())
    assert far.onset(DB, "errors").change is None  # type: ignore[union-attr]
    near = build(mesh(failing_db(), proxies=proxies(ONSET - timedelta(seconds=30))), Settings())
    assert near.onset(DB, "errors").change.kind == "xds"  # type: ignore[union-attr]
    edited = build(mesh(failing_db(), dr("db", "db.data.svc.cluster.local", ONSET - timedelta(minutes=3)),
                        proxies=proxies(ONSET - timedelta(seconds=30))), Settings())
    assert edited.onset(DB, "errors").change.kind == "config"  # type: ignore[union-attr]


def test_rollouts_and_restarts_are_dated_from_the_pods() -> None:
    started = ONSET - timedelta(seconds=50)
    pods = (Pod("data", "db-v2-abc-1", DB_W, started=started),
            Pod("data", "db-v2-abc-2", DB_W, started=started + timedelta(seconds=20)),
            Pod("shop", "api-v3-x-1", API_W, started=END - timedelta(days=3),
                restart_history=(ContainerRestarts("api", 1, END - timedelta(minutes=5), "OOMKilled"),)))
    found = changes_between(mesh(failing_db(), pods=pods), START, END)
    rollout = next(c for c in found if c.kind == "rollout")
    assert (rollout.subject, rollout.at, rollout.services) == ("Workload data/db-v2", started, (DB,))
    assert rollout.detail == "2 of 2 pods started"
    restart = next(c for c in found if c.kind == "restart")
    assert (restart.subject, restart.detail) == ("Pod shop/api-v3-x-1", "OOMKilled")
    # The old start is outside the history.
    assert not any(c.subject == "Workload shop/api-v3" and c.kind == "rollout" for c in found)
    paired = build(mesh(failing_db(), pods=pods), Settings()).onset(DB, "errors")
    assert paired is not None and paired.change == rollout and paired.lead_s == 50.0


@pytest.mark.parametrize(("kind", "namespace", "spec", "touched"), [
    ("DestinationRule", "data", {"host": "db"}, [DB]),
    ("VirtualService", "shop",
     {"hosts": ["api"], "http": [{"route": [{"destination": {"host": "db.data.svc.cluster.local"}}]}]}, [DB, API]),
    ("AuthorizationPolicy", "data", {"selector": {"matchLabels": {"app": "db"}}, "action": "DENY"}, [DB]),
    ("AuthorizationPolicy", "shop", {"action": "DENY"}, [API, WEB]),  # no selector: its namespace
    ("PeerAuthentication", "istio-system", {"mtls": {"mode": "STRICT"}}, [DB, API, WEB]),  # the root: everything
    ("Sidecar", "shop", {"workloadSelector": {"labels": {"app": "web"}}, "egress": [{"hosts": ["./*"]}]}, [WEB]),
    ("ServiceEntry", "shop", {"hosts": ["api.partner.example"]}, []),
    ("Gateway", "shop", {"selector": {"istio": "ingressgateway"}}, []),
])
def test_what_a_resource_touches(kind: str, namespace: str, spec: dict[str, object],
                                 touched: list[ServiceRef]) -> None:
    snap = mesh(failing_db())
    resource = ConfigResource(kind, namespace, "x", freeze(spec))
    assert sorted(touches(snap, resource)) == sorted(touched)


def test_no_history_cannot_be_checked() -> None:
    tl = build(mesh(failing_db()).__class__(time=END, window_s=300.0), Settings())
    assert not tl.checked and tl.reason == "no metric history: no Prometheus source"
    assert tl.onsets == () and tl.changes == ()


def test_a_small_and_a_big_history_give_the_same_frames_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small history is summed in plain Python, a big one pivoted by pandas: the same cells, the
    same bits (several callers' noisy rates summed into one step, points off the grid, a p99 from
    two reporters, calls to no service, gaps)."""
    import random

    import numpy as np

    from meshobs.timeline import frame

    rng = random.Random(7)

    def noisy(level: float, gaps: bool = False) -> tuple[tuple[float, float], ...]:
        return tuple((t + rng.uniform(-7.0, 7.0), level * rng.uniform(0.5, 1.5) + rng.random() / 3)
                     for t in times() if not (gaps and rng.random() < 0.1))

    callers = [WorkloadRef("shop", f"web-v{i}") for i in range(4)]
    series = [HistorySeries(signal, DB, reporter, w, noisy(level, gaps=signal == "errors"))
              for w in callers for reporter in ("source", "destination")
              for signal, level in (("requests", 40.0), ("errors", 0.1), ("p99_ms", 120.0))]
    series += [HistorySeries("requests", ServiceRef("unknown", "BlackHoleCluster"), "source", callers[0], noisy(3.0)),
               HistorySeries("errors", ServiceRef("unknown", "BlackHoleCluster"), "source", callers[0], noisy(3.0)),
               HistorySeries("p99_ms", API, "", None, noisy(80.0))]
    hist = history(*series)

    def services_of(w: WorkloadRef) -> list[ServiceRef]:
        return [WEB] if w in callers else []

    pivoted: list[int] = []
    by_pandas = frame._cells_pandas
    monkeypatch.setattr(frame, "_cells_pandas", lambda rows, *a: pivoted.append(len(rows)) or by_pandas(rows, *a))
    small = frames(hist, services_of)
    assert not pivoted
    monkeypatch.setattr(frame, "SMALL", 0)
    monkeypatch.setattr(frame, "IMPORT_PAYS", 0)
    big = frames(hist, services_of)
    assert pivoted
    for name in ("ratio", "edge_ratio", "p99"):
        mine, theirs = getattr(small, name), getattr(big, name)
        assert sorted(mine) == sorted(theirs) and mine
        for key in mine:
            assert np.array_equal(mine[key], theirs[key], equal_nan=True), (name, key)
    assert small.services == big.services == sorted([API, DB, WEB])


def test_pandas_is_imported_for_the_frames_only_where_its_import_pays() -> None:
    """Importing pandas costs a one-shot question ~0.2 s of CPU; pivoting beats summing in
    Python only past IMPORT_PAYS points then, and past SMALL once it is loaded anyway."""
    from meshobs.timeline.frame import IMPORT_PAYS, SMALL, pandas_pays

    assert SMALL < IMPORT_PAYS
    assert not pandas_pays(SMALL, imported=True)
    assert pandas_pays(SMALL + 1, imported=True)
    assert not pandas_pays(30_000, imported=False)  # the hot 5,000-service question's history
    assert not pandas_pays(IMPORT_PAYS, imported=False)
    assert pandas_pays(IMPORT_PAYS + 1, imported=False)


def test_a_timelines_part_about_some_services_is_looked_up_as_a_scan_would_find_it() -> None:
    """for_services, onset, onsets_of and unchecked_of answer from an index (a --all asks them of
    every service): the same items, in the timeline's order, as filtering every onset, unchecked
    signal and change."""
    import random

    from meshobs.timeline import ERRORS, LATENCY, Change, Onset, Timeline, Unchecked

    rng = random.Random(7)
    svcs = [ServiceRef(f"ns-{i % 3}", f"svc-{i}") for i in range(12)]
    t0 = datetime(2026, 5, 6, 7, 0, tzinfo=UTC)
    onsets = tuple(Onset(rng.choice(svcs), rng.choice((ERRORS, LATENCY)), t0 + timedelta(minutes=i), 0.0, 1.0)
                   for i in range(30))
    unchecked = tuple(Unchecked(rng.choice(svcs), ERRORS, f"why {i}") for i in range(10))
    changes = tuple(Change(t0 + timedelta(minutes=i), "config", f"DestinationRule x/y{i}", "changed",
                           services=tuple(rng.sample(svcs, rng.randint(0, 3)))) for i in range(40))
    whole = Timeline(start=t0, end=t0 + timedelta(hours=1), onsets=onsets, changes=changes,
                     unchecked=unchecked, services=frozenset(svcs))
    for _ in range(50):
        keep = frozenset(rng.sample(svcs, rng.randint(0, len(svcs))))
        part = whole.for_services(keep)
        assert part.onsets == tuple(o for o in onsets if o.service in keep)
        assert part.unchecked == tuple(u for u in unchecked if u.service in keep)
        assert part.changes == tuple(c for c in changes if keep & set(c.services))
        assert part.services == keep
    for s in svcs:
        for signal in (ERRORS, LATENCY):
            assert whole.onset(s, signal) == next((o for o in onsets if o.service == s and o.signal == signal), None)
    for s in svcs:
        assert whole.onsets_of(s) == [o for o in onsets if o.service == s]
        assert whole.unchecked_of(s) == [u for u in unchecked if u.service == s]


def test_an_onset_is_paired_with_the_change_a_scan_of_every_change_would_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    """_paired looks only at the changes touching the onset's service or its callees (an
    index): on random timelines it picks what looking at every change picks, at the lookback's
    edges too."""
    import random

    import meshobs.timeline as timeline
    from meshobs.timeline import ERRORS, Change, Onset
    from meshobs.timeline.changes import KINDS

    rng = random.Random(11)
    svcs = [ServiceRef("ns", f"svc-{i}") for i in range(6)]

    class Calls:
        def callees(self, service: ServiceRef) -> list[ServiceRef]:
            return [s for s in svcs if s.name > service.name][:2]

    t0 = datetime(2026, 5, 6, 7, 0, tzinfo=UTC)
    lookback, step = 600.0, 15.0
    paired = 0
    for _ in range(40):
        onset_at = t0 + timedelta(seconds=rng.randint(0, 3600))
        # Changes on and around the window's bounds (to the microsecond), and far from it.
        offsets = [-lookback, -lookback - 1e-6, step, step + 1e-6, -60.0, 0.0,
                   *(rng.uniform(-4000, 4000) for _ in range(60))]
        changes = sorted((Change(onset_at + timedelta(seconds=o), rng.choice(KINDS), f"X ns/x{i}", "changed",
                                 services=tuple(rng.sample(svcs, rng.randint(0, 2))))
                          for i, o in enumerate(offsets)), key=lambda c: (c.at, KINDS.index(c.kind), c.subject))
        onset = Onset(rng.choice(svcs), ERRORS, onset_at, 0.0, 0.5)
        index = timeline.touching(changes)
        fast = timeline._paired(Calls(), onset, changes, index, step, lookback)  # type: ignore[arg-type]
        with monkeypatch.context() as m:
            m.setattr(timeline, "_touching", lambda changes, *_: changes)
            scanned = timeline._paired(Calls(), onset, changes, index, step, lookback)  # type: ignore[arg-type]
        assert fast == scanned
        paired += fast.change is not None
    assert paired > 20  # most onsets do have a change to pair


def test_a_resource_changed_only_before_the_window_is_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The services a resource touches are looked up only when one of its changes is in the
    window (a big mesh's thousands of resources were mostly written long before): the changes
    found are the same."""
    from meshobs.timeline import changes as changes_module

    edited = dr("db", "db.data.svc.cluster.local", ONSET - timedelta(minutes=3))
    born = dr("db-new", "db.data.svc.cluster.local", None, created=ONSET - timedelta(minutes=5))
    old = dr("db-old", "db.data.svc.cluster.local", END - timedelta(days=2))
    snapshot = mesh(failing_db(), edited, born, old)
    looked: list[str] = []
    real = changes_module.touches
    monkeypatch.setattr(changes_module, "touches", lambda s, r: looked.append(r.name) or real(s, r))
    found = changes_between(snapshot, START, END)
    assert sorted(looked) == ["db", "db-new"]
    assert [(c.subject, c.what, c.services) for c in found if c.kind == "config"] == [
        ("DestinationRule data/db-new", "created", (DB,)), ("DestinationRule data/db", "changed", (DB,))]
    # The creation of the edited one, long before, is outside the window as it always was.
    assert not any(c.what == "created" and c.subject == "DestinationRule data/db" for c in found)
