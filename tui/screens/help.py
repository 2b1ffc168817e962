"""``?``: every key, in one modal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# Two columns of 36 characters: the modal is 80 wide with a border and padding, so every line
# stays within 76 columns and never wraps on an 80-column terminal.
HELP = """\
[b]meshobs dashboard[/b]: the mesh at a glance, worst services first.

[b]Everywhere[/b]
  ?      this help (esc / q / ? close)  q      quit
  r      refresh now                    p      pause / resume live refresh
  f      findings of the mesh           s      save the snapshot (to cwd)
  esc    back

[b]Overview[/b]
  ↑ ↓    move                           enter  open the service
  /      search: text, ns:NAME, health:failing (enter applies)
  esc    clear the search and filters
  n      cycle namespace                h      cycle health filter
  o      cycle sort column              O      reverse the sort
  click a column header to sort by it; → marks outbound numbers
  (a service nobody calls, e.g. a gateway: its calls to others)

[b]Service[/b]
  t      traffic                        x      proxies
  d      diagnosis                      T      traces
  g      config (live vs effective)     c      copy finding as markdown

[b]Findings[/b]   by severity, then rank (1 = most likely root cause)
  enter  open the finding's service     c      copy as markdown

Live refresh runs in the background and never blocks the keys; a failing
source is listed in the status line while the rest keeps working.
--from PATH: a recorded bundle (frozen); --config: a live mesh; neither:
the built-in demo. NO_COLOR=1: bold and reverse instead of colours.
"""

CLOSE = "esc / q / ? to close"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
                                  border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "help"
            box.border_subtitle = CLOSE  # on the frame: visible even when the text scrolls
            yield Static(HELP.rstrip("\n"))
