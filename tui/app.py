"""The dashboard app and its factory, shared by ``meshobs dashboard`` and the tests.

All I/O and heavy work (collection, diagnosis, view models) runs in
``@work(thread=True, exclusive=True, exit_on_error=False)`` workers that post :class:`DataLoaded`;
the UI thread only copies finished rows into widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState, get_current_worker

from meshobs.model import ServiceRef

from .data import Analysis, DataFailed, DataLoaded, Loader, SourceLoader, analyse
from .screens.findings import FindingsScreen
from .screens.help import HelpScreen
from .screens.overview import OverviewScreen
from .screens.service import ServiceScreen
from .service_model import time_label
from .widgets.status_line import StatusLine

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class MeshobsApp(App[None]):
    """k9s for the mesh: overview -> service -> diagnosis, refreshed in the background."""

    TITLE = "meshobs"
    # The footer shows only what fits at 80 columns next to a screen's own keys; every key is
    # in help (?), which the footer always shows.
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("f", "findings", "Findings"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("p", "toggle_pause", "Pause", show=False),
        Binding("s", "save", "Save bundle", show=False),
    ]

    def __init__(self, loader: Loader, *, refresh_s: float = 10.0, clock: Clock = _now,
                 diagnose: bool = True, save_dir: Path | None = None) -> None:
        super().__init__()
        self.loader, self.refresh_s, self.clock, self.diagnose = loader, refresh_s, clock, diagnose
        self.save_dir = save_dir
        self.analysis: Analysis | None = None
        self.paused = False
        self.loading = False
        self.last_error: str | None = None
        self.loaded_at: datetime | None = None
        self.loads = 0

    def on_mount(self) -> None:
        self.push_screen(OverviewScreen())  # type: ignore[no-untyped-call]
        self.update_status()
        self.reload()
        if self.refresh_s > 0:
            self.set_interval(self.refresh_s, self._tick)

    # -- loading ----------------------------------------------------------------------------
    def _tick(self) -> None:
        # A frozen bundle never changes; a slow live collection is not stacked up.
        if self.loader.live and not self.paused and not self.loading:
            self.reload()

    def reload(self) -> None:
        self.loading = True
        self.update_status()
        self.load_data()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_data(self) -> None:
        """Collect (or replay), diagnose and build the overview rows, off the UI thread."""
        analysis = analyse(self.loader, diagnose=self.diagnose)
        if not get_current_worker().is_cancelled:
            self.post_message(DataLoaded(analysis))

    def on_data_loaded(self, message: DataLoaded) -> None:
        self.analysis, self.loading, self.last_error = message.analysis, False, None
        self.loaded_at, self.loads = self.clock(), self.loads + 1
        for screen in self.screen_stack:
            show = getattr(screen, "show_analysis", None)
            if show is not None:
                show(message.analysis)
        self.update_status()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures surface: as a status-line error and a notification."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            text = str(error) if error is not None and str(error) else type(error).__name__
            if event.worker.group == "load":
                self.post_message(DataFailed(text))
            else:
                self.notify(f"{event.worker.name}: {text}", severity="error")

    def on_data_failed(self, message: DataFailed) -> None:
        self.loading, self.last_error = False, f"load failed: {message.error}"
        self.notify(self.last_error, severity="error", timeout=8)
        self.update_status()

    # -- status -----------------------------------------------------------------------------
    def status_summary(self, screen: object = None) -> str:
        """Origin, time, counts and refresh state; ``screen`` may word the service count
        (the overview adds "2 of 5 · filter: data" while a filter is on)."""
        a = self.analysis
        parts = [self.loader.description if a is None else (a.snapshot.origin or self.loader.description)]
        if a is not None:
            failing = sum(1 for r in a.rows if r.health == "failing")
            label = getattr(screen, "services_label", None)
            count = label(len(a.rows)) if label is not None else f"{len(a.rows)} services"
            # Counts before the time: at 80 columns the line is cut at the end, and the filter
            # in effect matters more than the seconds of the snapshot time.
            parts += [count, f"{failing} failing", time_label(a.snapshot.time)]
            if a.rows and not any(r.has_history for r in a.rows):
                parts.append("no history")
        if self.loading:
            parts.append("loading…")
        elif self.loader.live:
            parts.append("paused" if self.paused else f"⟳ {self.refresh_s:g}s")
        else:
            parts.append("frozen")
        return " · ".join(parts)

    def update_status(self) -> None:
        failing = self.analysis.failing if self.analysis else []
        for screen in self.screen_stack:
            summary = self.status_summary(screen)
            for line in screen.query(StatusLine):
                line.show(summary, failing, self.last_error)

    # -- actions ----------------------------------------------------------------------------
    def open_service(self, ref: ServiceRef) -> None:
        self.push_screen(ServiceScreen(ref))  # type: ignore[no-untyped-call]

    def action_help(self) -> None:
        self.push_screen(HelpScreen())  # type: ignore[no-untyped-call]

    def action_refresh(self) -> None:
        if not self.loading:
            self.reload()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("live refresh paused" if self.paused else "live refresh resumed")
        self.update_status()

    def action_findings(self) -> None:
        if not isinstance(self.screen, FindingsScreen):
            self.push_screen(FindingsScreen())  # type: ignore[no-untyped-call]

    def action_save(self) -> None:
        if self.analysis is None or self.analysis.bundle is None:
            self.notify("nothing to save yet", severity="warning")
            return
        stamp = self.clock().strftime("%Y%m%dT%H%M%SZ")
        path = (self.save_dir or Path.cwd()) / f"meshobs-{stamp}.tar.gz"
        self.save_bundle(self.analysis, path)

    @work(thread=True, exit_on_error=False, group="save")
    def save_bundle(self, analysis: Analysis, path: Path) -> None:
        from meshobs.bundle import write_bundle

        assert analysis.bundle is not None
        written = write_bundle(analysis.bundle, path)
        self.call_from_thread(self.notify, f"saved the snapshot to {written.name} "
                                           f"(replay: meshobs dashboard --from {written.name})")



def make_app(from_path: str | None = None, config_path: str | None = None, *, loader: Loader | None = None,
             refresh_s: float = 10.0, clock: Clock = _now, diagnose: bool = True,
             save_dir: Path | None = None) -> MeshobsApp:
    """The dashboard for ``--from``/``--config`` (or an explicit ``loader``), as the CLI runs it."""
    return MeshobsApp(loader or SourceLoader(from_path, config_path), refresh_s=refresh_s, clock=clock,
                      diagnose=diagnose, save_dir=save_dir)
