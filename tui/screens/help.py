"""``?``: every key, in one modal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]meshobs dashboard[/b]: the mesh at a glance, worst services first.

[b]Everywhere[/b]
  ?        this help              q        quit
  r        refresh now            p        pause / resume live refresh
  f        findings of the mesh   s        save the snapshot as a bundle (cwd)
  escape   back

[b]Overview[/b]
  ↑ ↓      move                   enter    open the service
  /        search (text, ns:NAME, health:failing); enter applies, esc clears
  n        cycle namespace        h        cycle health filter
  o        cycle sort column      O        reverse the sort
  click a column header to sort by it

[b]Service[/b]
  t traffic   x proxies   d diagnosis   T traces   g config
  c        copy the selected finding as markdown

[b]Findings[/b]
  enter    open the finding's service     c   copy as markdown

Live refresh runs in the background and never blocks the keys; a failing
source is listed in the status line while the rest keeps working.
--from PATH shows a recorded bundle (frozen time); --config a live mesh;
without either, the built-in demo.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
                                  border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP)
