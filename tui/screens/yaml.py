"""``y``: the selected resource as YAML, intended (Git) and live side by side, drift marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Static

from meshobs.model import ConfigResource

from ..keys import YAML, bindings
from ..styles import adapt, is_no_color
from ..yaml_model import YamlLine, YamlView
from .base import MeshScreen

if TYPE_CHECKING:
    from ..data import Analysis


def render_side(lines: list[YamlLine] | None, empty: str, no_color: bool) -> Text:
    if lines is None:
        return Text(empty, style=adapt("dim", no_color))
    text = Text()
    for line in lines:
        if line.drifted:
            text.append("≠ " + line.text, style=adapt("bold magenta", no_color))
            if line.note:
                text.append(f"   # {line.note}", style=adapt("bold yellow", no_color))
        else:
            text.append("  " + line.text)
        text.append("\n")
    return text


class YamlScreen(MeshScreen):
    BINDINGS = bindings(YAML)
    AUTO_FOCUS = "#yaml-live"
    DEFAULT_CSS = """
    YamlScreen #yaml-head { height: auto; max-height: 7; padding: 0 1; }
    YamlScreen #yaml-sides { height: 1fr; }
    YamlScreen #yaml-sides.stacked { layout: vertical; }
    YamlScreen .side { width: 1fr; height: 1fr; border: round $primary; padding: 0 1; }
    """

    class ViewReady(Message):
        def __init__(self, view: YamlView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, resource: ConfigResource) -> None:
        super().__init__()
        self.resource = resource
        self.view: YamlView | None = None

    def body(self) -> ComposeResult:
        yield Static(f"{self.resource}  loading…", id="yaml-head")
        with Horizontal(id="yaml-sides"):
            with VerticalScroll(id="yaml-intended", classes="side") as left:
                left.border_title = "intended (Git)"
                yield Static(id="yaml-intended-text")
            with VerticalScroll(id="yaml-live", classes="side") as right:
                right.border_title = "live (cluster)"
                yield Static(id="yaml-live-text")

    def show_analysis(self, analysis: Analysis) -> None:
        self.build(analysis)

    @work(thread=True, exclusive=True, exit_on_error=False, group="yaml", description="yaml")
    def build(self, analysis: Analysis) -> None:
        """Comparing with every proxy's routes, and reading the intended files, is not UI work."""
        self.post_message(self.ViewReady(analysis.views(self.app.loader).yaml(self.resource.key)))  # type: ignore[attr-defined]

    def on_yaml_screen_view_ready(self, message: ViewReady) -> None:
        if not self.is_attached:  # closed while its worker ran
            return
        self.view = view = message.view
        mono = is_no_color(self)
        head = Text(view.title, style="bold")
        head.append(f"  {len(view.drifts)} difference(s)" if view.drifts else "  no drift", style="bold")
        for line in view.drifts:
            head.append("\n" + line, style=adapt("bold magenta", mono))
        for note in view.notes:
            head.append("\n" + note, style=adapt("dim", mono))
        self.query_one("#yaml-head", Static).update(head)
        self.query_one("#yaml-intended-text", Static).update(
            render_side(view.intended, "no intended copy of this resource", mono))
        self.query_one("#yaml-live-text", Static).update(
            render_side(view.live, "not in the cluster", mono))
        # A side with nothing to show gives its width to the other; below 100 columns two
        # sides of YAML wrap every line, so they stack (l switches).
        self.query_one("#yaml-intended").display = view.intended is not None
        self.query_one("#yaml-live").display = view.live is not None
        self.query_one("#yaml-sides").set_class(self.size.width < 100, "stacked")

    def action_layout(self) -> None:
        self.query_one("#yaml-sides").toggle_class("stacked")
