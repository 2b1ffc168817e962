"""The dashboard app and its factory, shared by ``meshobs dashboard`` and the tests.

All I/O and heavy work (collection, diagnosis, view models) runs in
``@work(thread=True, exclusive=True, exit_on_error=False)`` workers that post :class:`DataLoaded`;
the UI thread only copies finished rows into widgets.

A load is shown in two stages, as soon as each is ready: the worker posts the snapshot's rows
(traffic, errors, latency) as :class:`DataLoaded` before it diagnoses, then the same snapshot
with its findings as :class:`DiagnosisReady`. Meanwhile every screen says "diagnosing…": before
the first diagnosis nothing is called healthy, and on a refresh the previous refresh's health
and findings stay, marked as such, until the new ones replace them.

A refresh where no source answered (the mesh is unreachable) replaces nothing: the last good
data stays, greyed and labelled with its age, and the source bar says what failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, work
from textual.actions import SkipAction
from textual.app import App
from textual.widgets import Input
from textual.worker import Worker, WorkerState, get_current_worker

from meshobs.model import ServiceRef, SourceStatus

from .commands import parse
from .data import Analysis, DataFailed, DataLoaded, DiagnosisReady, Loader, SourceLoader, diagnosed, numbers
from .gc_policy import FullCollections
from .keys import APP, bindings
from .release import release
from .screens.base import MeshScreen
from .screens.findings import FindingsScreen
from .screens.help import HelpScreen
from .screens.overview import OverviewScreen
from .sources import SourceEntry, SourceHistory, age
from .status import summary_line
from .timerange import TimeRange, fmt_window, parse_at, parse_window
from .widgets.prompt import Prompt
from .widgets.source_bar import SourceBar
from .widgets.status_line import StatusLine

if TYPE_CHECKING:
    from .load_process import LoadProcess

Clock = Callable[[], datetime]
# How long the diagnosis waits for the overview to show a load's rows before it starts. Run
# side by side, the diagnosis (pure Python, holding the GIL) slowed the table's time slices
# tenfold: every turn of the event loop waits for the GIL (1,000 rows took 2.8-4 s instead of
# 0.2-0.6 s, load average 12). The wait is bounded: a stalled UI never stalls the diagnosis.
TABLE_FIRST_S = 2.0
# With the load process: every this many loads shown (two per refresh: numbers, then findings)
# the UI unfreezes and collects its own heap (the cyclic garbage Textual leaves, frozen with
# each settled load; see gc_policy.py). Each such collection walks the whole UI heap: at 1,000
# services ~100 ms of CPU every 2 loads shown, 230-290 ms every 10 (benchmarks/results/
# dashproc.md): the rarer one costs less in all and interrupts less often.
UI_COLLECT_EVERY = 10
# How often the app asks whether the user is quiet enough for that collection (s).
QUIET_CHECK_S = 0.25


def _now() -> datetime:
    return datetime.now(UTC)


class MeshobsApp(App[None]):
    """k9s for the mesh: overview -> service -> diagnosis, refreshed in the background."""

    TITLE = "meshobs"
    BINDINGS = bindings(APP, back=False)

    def __init__(self, loader: Loader, *, refresh_s: float = 10.0, clock: Clock = _now,
                 diagnose: bool = True, save_dir: Path | None = None,
                 keymap: Mapping[str, str] | None = None, process: bool = False) -> None:
        super().__init__()
        self.loader, self.refresh_s, self.clock, self.diagnose = loader, refresh_s, clock, diagnose
        # ``process``: loads are built in a process of their own (load_process.py), which
        # keeps the model; this process renders. Else in thread workers here.
        self.load_process: LoadProcess | None = None
        self._process_loader = loader if process else None
        self.save_dir = save_dir
        self.keys: dict[str, str] = dict(keymap or {})
        self.analysis: Analysis | None = None
        self.paused = False
        self.loading = False  # a load (numbers, then diagnosis) is running
        self.diagnosing = False  # ... and its numbers are shown: the diagnosis runs
        self.load_seq = 0  # the latest load asked for: messages of earlier ones are dropped
        self.shown_seq = -1  # the load whose numbers are on screen
        # The load the numbers replaced, freed once the diagnosis is done (see _show).
        self.retired_after_diagnosis: list[object] = []
        self.last_error: str | None = None
        self.loaded_at: datetime | None = None
        self.loads = 0
        self.history = SourceHistory()
        self.board: list[SourceEntry] = []
        # Set while the screens show the last good load because later ones failed as a whole.
        self.stale_since: datetime | None = None
        self.failed_attempt: list[SourceStatus] = []  # the statuses of that failed refresh
        # No automatic full collection while a load is being shown (see gc_policy.py).
        self.full_gc = FullCollections(UI_COLLECT_EVERY if process else 0)
        self.last_key_at = time.monotonic()  # the periodic collection waits for a quiet moment

    async def on_event(self, event: events.Event) -> None:
        # Keys a focused prompt understands are taken now, in order (see widgets/prompt.py).
        # Only keys from the terminal: a forwarded key bubbling back up was already routed.
        if isinstance(event, events.Key) and not event.is_forwarded:
            self.last_key_at = time.monotonic()
            if isinstance(self.focused, Prompt) and self.focused.take_key(event):
                return
        await super().on_event(event)

    def on_unmount(self) -> None:
        self.full_gc.release()  # the thresholds are the process's, not the app's
        if self.load_process is not None:
            self.load_process.close()

    def on_mount(self) -> None:
        if self._process_loader is not None:
            from .load_process import LoadProcess

            self.load_process = LoadProcess(self._process_loader, self.diagnose)
            self.loader = self.load_process.loader
            self.load_process.start(self.post_message)
            self.full_gc.hold()  # for the app's life (see gc_policy.FullCollections)
            self.set_interval(QUIET_CHECK_S, self._collect_when_quiet)
        if self.keys:
            self.set_keymap(self.keys)
        self.push_screen(OverviewScreen())
        self.update_status()
        self.reload()
        if self.refresh_s > 0:
            self.set_interval(self.refresh_s, self._tick)
        self.set_interval(1.0, self.update_status)  # ages ("stale since 12:03:10 (45s)") move on

    def _collect_when_quiet(self) -> None:
        # Not while a load's rows arrive and fill the table: that is when keys wait already.
        if not self.loading or self.diagnosing:
            self.full_gc.when_quiet(time.monotonic() - self.last_key_at)

    # -- loading ----------------------------------------------------------------------------
    def _tick(self) -> None:
        # A frozen bundle never changes; a slow live collection is not stacked up.
        if self.loader.live and not self.paused and not self.loading:
            self.reload()

    def reload(self) -> None:
        self.load_seq += 1
        self.loading, self.diagnosing = True, False
        self.update_status()
        if self.load_process is not None:
            self.load_process.load(self.load_seq)  # superseded loads are dropped by seq, as below
            return
        # Handed over in a list the worker empties: a reference kept in the worker's arguments
        # would outlive the release thread's teardown of the old load (see release.py).
        self.load_data(self.load_seq, [self.analysis] if self.analysis is not None else [])

    # A description: without one Textual names the worker after the call, repr() of every
    # argument, on the UI thread; the repr of a 1,000-service Analysis held it for 13 s (load
    # average 12). Every worker handed an Analysis has one.
    @work(thread=True, exclusive=True, exit_on_error=False, group="load", description="load")
    def load_data(self, seq: int, previous: list[Analysis]) -> None:
        """Collect (or replay) and build the overview rows, post them; then diagnose and post
        the findings: the table does not wait for the diagnosis. Off the UI thread."""
        worker = get_current_worker()
        carried = previous.pop() if previous else None
        first = numbers(self.loader, diagnose=self.diagnose, previous=carried)
        del carried
        if worker.is_cancelled:
            return
        shown = threading.Event()  # set by the UI thread once the overview shows these rows
        self.post_message(DataLoaded(first, seq, final=not self.diagnose, shown=shown))
        if not self.diagnose:
            return
        shown.wait(TABLE_FIRST_S)
        # A newer load (a new time range) cancels this worker, but until its numbers replace
        # these on screen this diagnosis is the one the screen waits for: a newer load that
        # brings nothing (no source answered) keeps these numbers, which would otherwise say
        # "diagnosing…" for good.
        if worker.is_cancelled and self.shown_seq != seq:
            return
        second = diagnosed(self.loader, first)
        del first  # the UI thread holds it until the diagnosis replaces it, then releases it
        self.post_message(DiagnosisReady(second, seq))  # dropped unless its load is still shown

    def on_data_loaded(self, message: DataLoaded) -> None:
        if message.seq is not None and message.seq != self.load_seq:
            if message.shown is not None:
                message.shown.set()  # its worker is cancelled: it need not wait for the table
            return  # a load superseded by a newer one (a new time range, r)
        new = message.analysis
        self.loading, self.last_error = not message.final, None
        now = self.clock()
        if not new.answered and self.analysis is not None:
            # Nothing answered: an empty mesh now would read as calm. Keep what we had (and
            # drop this load's diagnosis when it comes: shown_seq stays on the old one).
            self.diagnosing = False
            if message.shown is not None:
                message.shown.set()
            self.failed_attempt = new.statuses_now()
            self.stale_since = self.stale_since or self.loaded_at or now
            _stale, self.board = self.history.after_failure(self.failed_attempt, self.analysis.snapshot)
            self._mark_stale()
            self.update_status()
            return
        self.shown_seq = message.seq if message.seq is not None else self.shown_seq
        self.diagnosing = new.pending
        self._show(new, later=new.pending)
        if message.shown is not None:
            self._when_table_settled(message.shown.set)
        self.stale_since, self.failed_attempt = None, []
        self.loaded_at, self.loads = now, self.loads + 1
        self.history.observe(new.snapshot, now, new.stale)
        self.board = new.board
        self._mark_stale()
        self.update_status()

    def on_diagnosis_ready(self, message: DiagnosisReady) -> None:
        """The findings of the load on screen: the same snapshot, now diagnosed (also when a
        newer load was asked for since: until its numbers arrive, these are the ones shown)."""
        if message.seq == self.load_seq:
            self.loading = self.diagnosing = False
        elif message.seq != self.shown_seq:
            return
        if message.seq == self.shown_seq:
            self._show(message.analysis)
        self._release_retired()
        self.update_status()

    def _when_table_settled(self, callback: Callable[[], None]) -> None:
        """``callback`` once the overview's table shows the load (now if there is none)."""
        for screen in self.screen_stack:
            if isinstance(screen, OverviewScreen) and screen.is_attached:
                screen.table.when_settled(callback)
                return
        callback()

    def _show(self, new: Analysis, later: bool = False) -> None:
        # The load shown until now goes to a thread that frees it piece by piece: dropped here it
        # would hold the UI thread for 0.1-0.2 s at 5,000 services (see release.py). ``later``:
        # once the diagnosis is done, not while it runs: a third thread wanting the GIL (the
        # teardown) made every key wait longer for it (as before the two stages, the old load
        # lives until the diagnosis of the new one is done).
        retired: list[object] = [self.analysis] if self.analysis is not None else []
        self.analysis = new
        self.full_gc.hold()
        for screen in self.screen_stack:
            # A screen pushed but not built yet (its widgets compose on its own turn) shows the
            # load when it mounts (MeshScreen.on_mount reads self.analysis, set above).
            if isinstance(screen, MeshScreen) and screen.is_mounted:
                screen.show_analysis(new)
        self._when_table_settled(self.full_gc.settled)
        self.retired_after_diagnosis.extend(retired)  # after the screens: they held it too
        del retired
        if not later:
            self._release_retired()

    def _release_retired(self) -> None:
        retired, self.retired_after_diagnosis = self.retired_after_diagnosis, []
        release(retired)

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
        self.loading, self.diagnosing, self.last_error = False, False, f"load failed: {message.error}"
        self._release_retired()
        if self.analysis is not None:
            self.stale_since = self.stale_since or self.loaded_at or self.clock()
            _stale, self.board = self.history.after_failure((), self.analysis.snapshot, why=message.error)
        else:
            self.board = [SourceEntry("load", "down", message.error)]
        self._mark_stale()
        self.notify(self.last_error, severity="error", timeout=8)
        self.update_status()

    def _mark_stale(self) -> None:
        for screen in self.screen_stack:
            screen.set_class(self.stale_since is not None, "-stale")

    # -- status -----------------------------------------------------------------------------
    def status_summary(self, screen: object = None) -> str:
        """Origin, health counts, time range and refresh state; ``screen`` may word the
        service count (the overview adds "2 of 5 · filter: data" while a filter is on)."""
        every = f"⟳ {self.refresh_s:g}s" if self.refresh_s > 0 else "refresh on r"
        # While the diagnosis runs the counts say "diagnosing…": the refresh word need not.
        refresh = ("loading…" if self.loading and not self.diagnosing else ("paused" if self.paused else every)
                   if self.loader.live else "frozen")
        return summary_line(self.analysis, self.loader.description, refresh, screen)

    def stale_label(self) -> str | None:
        if self.stale_since is None:
            return None
        return f"STALE: last good data from {self.stale_since:%H:%M:%S} ({age(self.clock(), self.stale_since)} ago)"

    def update_status(self) -> None:
        for screen in self.screen_stack:
            self.refresh_bars(screen)

    def refresh_bars(self, screen: object) -> None:
        """Status line and source bar of one screen (also when it is first shown)."""
        if not isinstance(screen, MeshScreen) or not screen.is_attached or not screen.is_mounted:
            # Closed before its first refresh came round, or pushed and not built yet (the
            # status tick can come between the two on a loaded machine): its on_mount draws them.
            return
        screen.set_class(self.stale_since is not None, "-stale")
        summary, stale, now = self.status_summary(screen), self.stale_label(), self.clock()
        for line in screen.query(StatusLine):
            line.show(summary, stale, self.last_error)
        for bar in screen.query(SourceBar):
            bar.show(self.board, now)
        screen.status_changed()

    # -- navigation -------------------------------------------------------------------------
    def root(self) -> OverviewScreen:
        """Back to the overview (closing every view above it)."""
        while len(self.screen_stack) > 2 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()
        screen = self.screen
        assert isinstance(screen, OverviewScreen)
        return screen

    def back(self) -> None:
        if len(self.screen_stack) > 2:
            self.pop_screen()

    def open_service(self, ref: ServiceRef) -> None:
        from .screens.service import ServiceScreen

        self.push_screen(ServiceScreen(ref))

    def open_graph(self, ref: ServiceRef | None) -> None:
        from .screens.graph import GraphScreen

        if ref is None:
            self.notify("select a service first (or :graph NAME)", severity="warning")
            return
        self.push_screen(GraphScreen(ref))

    def find_service(self, name: str) -> ServiceRef | None:
        """A service as typed (``cart-service``, ``shop/cart-service``, ``cart-service.shop``)."""
        if self.analysis is None:
            return None
        found = self.analysis.snapshot.find_services(name)
        if len(found) == 1:
            return found[0].ref
        self.notify(f"no service {name!r}" if not found else
                    f"{name!r} is in {len(found)} namespaces: type NAMESPACE/{name}", severity="warning")
        return None

    def run_command(self, text: str) -> None:
        """A ``:`` command (see :mod:`.commands`)."""
        try:
            cmd = parse(text)
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        current = self.screen.selected_service() if isinstance(self.screen, MeshScreen) else None
        if cmd.verb == "quit":
            self.exit()
        elif cmd.verb == "help":
            self.action_help()
        elif cmd.verb == "svc":
            ref = self.find_service(cmd.arg) if cmd.arg else None
            self.root()
            if ref is not None:
                self.open_service(ref)
        elif cmd.verb == "ns":
            self.root().set_namespace(cmd.arg)
        elif cmd.verb in ("proxies", "findings", "sources"):
            self.root()
            self._push_view(cmd.verb)
        elif cmd.verb == "graph":
            ref = self.find_service(cmd.arg) if cmd.arg else current
            if ref is not None or not cmd.arg:
                self.root()
                self.open_graph(ref)
        elif cmd.verb in ("range", "at"):
            self._set_range(cmd.verb, cmd.arg)

    def _push_view(self, view: str) -> None:
        from .screens.proxies import ProxiesScreen
        from .screens.sources import SourcesScreen

        screens = {"proxies": ProxiesScreen, "findings": FindingsScreen, "sources": SourcesScreen}
        self.push_screen(screens[view]())

    # -- time range ----------------------------------------------------------------------------
    def _set_range(self, verb: str, arg: str) -> None:
        current = self.loader.time_range()
        if current is None:
            self._frozen_range()
            return
        try:
            wanted = (TimeRange(parse_window(arg), current.at) if verb == "range"
                      else TimeRange(current.window_s, parse_at(arg)))
        except ValueError as exc:
            self.notify(f":{verb} {arg}: {exc}", severity="warning")
            return
        self.use_range(wanted)

    def use_range(self, wanted: TimeRange) -> None:
        """Re-query for ``wanted``; the data of the old range stays until the new one is in."""
        self.loader.set_time_range(wanted)
        self.history.forget()
        self.notify(f"time range: {wanted.label()} (re-querying)")
        self.reload()  # exclusive: a load of the old range still running is cancelled

    def _frozen_range(self) -> None:
        snap = self.analysis.snapshot if self.analysis else None
        held = f" (it holds {fmt_window(snap.window_s)} to {snap.time:%Y-%m-%d %H:%M:%S})" if snap else ""
        self.notify(f"a recorded bundle cannot be re-queried{held}; use --config for a live mesh",
                    severity="warning")

    def action_cycle_range(self) -> None:
        current = self.loader.time_range()
        if current is None:
            self._frozen_range()
            return
        self.use_range(current.next_preset())

    # -- actions ----------------------------------------------------------------------------
    def action_command(self) -> None:
        if isinstance(self.focused, Input):
            raise SkipAction()  # a ":" typed into a prompt is a character
        if isinstance(self.screen, MeshScreen):
            self.screen.open_command()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keys))

    def action_refresh(self) -> None:
        if not self.loading:
            self.reload()

    def action_toggle_pause(self) -> None:
        if not self.loader.live:
            self.notify("a recorded bundle is frozen in time: there is no live refresh to pause",
                        severity="warning")
            return
        self.paused = not self.paused
        self.notify("live refresh paused" if self.paused else "live refresh resumed")
        self.update_status()

    def action_findings(self) -> None:
        if not isinstance(self.screen, FindingsScreen):
            self.push_screen(FindingsScreen())

    def action_save(self) -> None:
        if self.analysis is None or (self.analysis.bundle is None and self.analysis.remote is None):
            self.notify("nothing to save yet", severity="warning")
            return
        stamp = self.clock().strftime("%Y%m%dT%H%M%SZ")
        path = (self.save_dir or Path.cwd()) / f"meshobs-{stamp}.tar.gz"
        self.save_bundle(self.analysis, path)

    @work(thread=True, exit_on_error=False, group="save", description="save")
    def save_bundle(self, analysis: Analysis, path: Path) -> None:
        written = analysis.views(self.loader).save(path)
        self.call_from_thread(self.notify, f"saved the snapshot to {written.name} "
                                           f"(replay: meshobs dashboard --from {written.name})")


def make_app(from_path: str | None = None, config_path: str | None = None, *, loader: Loader | None = None,
             refresh_s: float = 10.0, clock: Clock = _now, diagnose: bool = True,
             save_dir: Path | None = None, keymap: Mapping[str, str] | None = None,
             process: bool = False) -> MeshobsApp:
    """The dashboard for ``--from``/``--config`` (or an explicit ``loader``), as the CLI runs it
    (``process``: loads built in a process of their own; the loader must pickle)."""
    return MeshobsApp(loader or SourceLoader(from_path, config_path, clock=clock), refresh_s=refresh_s,
                      clock=clock, diagnose=diagnose, save_dir=save_dir, keymap=keymap, process=process)
