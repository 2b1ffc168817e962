"""A one-line prompt (search box, ``:`` command) whose keys are taken in order, even in a burst.

Textual hands each key to the widget focused when the *app* reads it, and the widget handles
it later in its own task; a prompt's enter therefore moved the focus only after the keys typed
after it had already been handed to the prompt (a paste, ``tmux send-keys``): "/cart⏎q" typed
"q" into the search box. The app passes the keys a prompt understands to :meth:`take_key`
straight away instead (see ``MeshobsApp.on_event``), so typing, enter and esc happen in order.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class Prompt(Input):
    """An Input edited in the app's turn: printable keys, backspace, tab, enter and esc."""

    TAKES = ("enter", "escape", "backspace", "tab")

    def take_key(self, event: events.Key) -> bool:
        """Handle ``event`` now; False leaves it to the usual routing (arrows, home, ...)."""
        if event.is_printable and event.character is not None:
            selection = self.selection
            if selection.is_empty:
                self.insert_text_at_cursor(event.character)
            else:  # typing over a selection replaces it
                self.replace(event.character, *selection)
        elif event.key == "backspace":
            self.action_delete_left()
        elif event.key == "tab":
            self.complete()
        elif event.key in ("enter", "escape"):
            self.finish(event.key)
        else:
            return False
        return True

    def complete(self) -> None:
        """Tab: accept the suggestion shown, if any."""
        if self._suggestion and len(self._suggestion) > len(self.value):
            self.value = self._suggestion
            self.cursor_position = len(self.value)

    def finish(self, key: str) -> None:
        """enter or esc: the screen decides (apply the search, close the box, move the focus)."""
        done = getattr(self.screen, "prompt_done", None)
        if done is not None:
            done(self, key)
