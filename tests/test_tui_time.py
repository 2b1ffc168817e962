"""Time: a range control that re-queries (w cycles 5m/15m/1h/6h, :range, :at), sparklines on a
sensible scale (noise is not a cliff; labelled min/max), whole trace ids with a link."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.bundle import Bundle
from meshobs.config import Config
from meshobs.model import MeshSnapshot
from meshobs.tui.data import SourceLoader
from meshobs.tui.links import TraceLinks
from meshobs.tui.service_model import SlowTrace
from meshobs.tui.timerange import TimeRange, parse_at, parse_window
from meshobs.tui.viewmodel import fmt_rate, spark_range, sparkline
from meshobs.tui.widgets.tables import SyncTable
from tests.test_tui import _deterministic, anyio_backend, app_for, demo_pair, settle, status_text  # noqa: F401

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo() -> tuple[object, MeshSnapshot]:
    return demo_pair()
ELEVEN = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


async def test_w_and_range_commands_re_query(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert app.loads == 1 and "last 5m" in status_text(app)
        await pilot.press("w")
        await settle(app, pilot)
        assert app.loader.ranges == [TimeRange(900.0)]  # type: ignore[attr-defined]
        assert app.loads == 2 and "last 15m" in status_text(app)
        await pilot.press("colon", *"range 1h", "enter")
        await settle(app, pilot)
        await pilot.press("colon", *"at 2026-11-20T11:00:00Z", "enter")
        await settle(app, pilot)
        assert app.loader.ranges[-2:] == [TimeRange(3600.0), TimeRange(3600.0, ELEVEN)]  # type: ignore[attr-defined]
        assert app.loads == 4 and "1h to 2026-11-20 12:00" in status_text(app)
        await pilot.press("colon", *"range soon", "enter")
        await settle(app, pilot)
        assert app.loads == 4 and any(":range soon" in n.message for n in app._notifications)


async def test_a_recorded_bundle_says_it_cannot_be_re_queried(demo) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    app.loader.live, app.loader._range = False, None  # type: ignore[attr-defined]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("w")
        await settle(app, pilot)
        assert app.loads == 1
        assert any("cannot be re-queried" in n.message and "5m to 2026-11-20 12:00:00" in n.message
                   for n in app._notifications)


def test_a_live_loader_collects_the_window_and_time_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(raw={"sources": {"prometheus": {"url": "http://prom:9090"}}}, window_s=300.0)
    asked: list[tuple[float, datetime | None]] = []

    def collect(cfg: Config, **_bounds: object) -> Bundle:  # (deadline=: each refresh is bounded)
        asked.append((cfg.window_s, cfg.time))
        return Bundle(time=cfg.time or ELEVEN, window_s=cfg.window_s, sources=[])

    monkeypatch.setattr("meshobs.cli.common.load_bundle",
                        lambda *a, **k: (Bundle(time=ELEVEN, window_s=300.0, sources=[]), config, "live"))
    monkeypatch.setattr("meshobs.collect.collect", collect)
    loader = SourceLoader(None, None)
    loader.load()
    assert loader.time_range() == TimeRange(300.0, None)
    loader.set_time_range(TimeRange(3600.0, ELEVEN))
    loader.load()
    assert asked == [(3600.0, ELEVEN)]


def test_range_words_parse() -> None:
    assert parse_window("15m") == 900.0 and parse_at("now") is None and parse_at("2026-11-20T11:00:00Z") == ELEVEN
    with pytest.raises(ValueError):
        parse_window("0s")
    with pytest.raises(ValueError):
        parse_at("yesterday")
    assert TimeRange(300.0).next_preset() == TimeRange(900.0)
    assert TimeRange(21600.0).next_preset() == TimeRange(300.0)
    assert TimeRange(900.0, ELEVEN).label() == "15m to 11-20 11:00:00"


def test_sparkline_noise_is_not_a_cliff_and_change_still_shows() -> None:
    assert sparkline([30.0] * 7 + [30.000000000000004]) == "▅" * 8  # was █▁▁▁▁▁▁▁
    wobble = sparkline([30.0, 30.0, 30.3, 30.0])
    assert len(set(wobble)) == 2 and "█" not in wobble and "▁" not in wobble  # a ripple, one step
    assert sparkline([1.0, 5.0, 10.0]) == "▁▄█"  # a real change uses the whole height
    assert sparkline([0.0, 0.0]) == "▁▁" and sparkline([None, 2.0]) == " ▅"
    assert spark_range([11.8, 12.3], fmt_rate) == "min 11.8 max 12.3"
    assert spark_range([30.0, 30.000000000000004], fmt_rate) == "= 30.0"


def test_trace_links_from_the_configured_sources() -> None:
    jaeger = TraceLinks.of({"sources": {"jaeger": {"url": "http://tracing.istio-system:16686/jaeger/"}}})
    tid = "416e99b0e13e213ebdaaea00a01d616f"
    assert jaeger.url(tid) == f"http://tracing.istio-system:16686/jaeger/trace/{tid}"
    xray = TraceLinks.of({"sources": {"xray": {"region": "eu-west-1"}}})
    xid = "1-5f84c7a1-2b2c7a3c4d5e6f7a8b9c0d1e"
    assert xray.url(xid) == ("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
                             f"#xray:traces/{xid}")
    assert xray.url(tid) is None and jaeger.url(xid) is None
    # A URL with credentials in it is never shown.
    assert TraceLinks.of({"sources": {"jaeger": {"url": "http://u:secret@jaeger:16686"}}}).url(tid) is None


async def test_traces_tab_shows_whole_ids_and_links(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for(demo)
    app.loader._links = TraceLinks("http://jaeger.example:16686")  # type: ignore[attr-defined]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter", "4")
        await settle(app, pilot)
        slowest = app.screen.query_one("#slowest", SyncTable)
        traces = slowest.rows_shown
        assert traces and all(isinstance(t, SlowTrace) and len(t.trace_id) == 32 for t in traces)
        first = traces[0]
        assert first.link == f"http://jaeger.example:16686/trace/{first.trace_id}"  # type: ignore[attr-defined]
        assert str(slowest.get_row_at(0)[0]) == first.trace_id  # type: ignore[attr-defined]
        await pilot.press("c")
        assert app.clipboard == first.link  # type: ignore[attr-defined]
