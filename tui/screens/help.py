"""``?``: every key, generated from the bindings and the keymap in effect."""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import help_lines

INTRO = """\
[b]meshobs dashboard[/b]: the mesh at a glance, worst services first.
Source bar: √ ok · ‼ stale: the last good answer is shown · × down: why
Rebind keys in meshobs.yaml by the id on the right: dashboard.keys.ID: KEY
"""

OUTRO = """\
Live refresh runs in the background and never blocks the keys.
--from PATH: a recorded bundle (frozen); --config: a live mesh; neither:
the built-in demo. NO_COLOR=1: bold and reverse instead of colours."""

CLOSE = "esc / q / ? to close · ↑↓ scroll"


def help_text(keymap: Mapping[str, str]) -> str:
    return INTRO + "\n" + "\n".join(help_lines(keymap)) + OUTRO


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
                                  border: round $primary; background: $surface; padding: 0 1; }
    """

    def __init__(self, keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = dict(keymap or {})

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "help"
            box.border_subtitle = CLOSE  # on the frame: visible even when the text scrolls
            yield Static(help_text(self.keymap))
