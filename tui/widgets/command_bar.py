"""The ``:`` prompt at the bottom of every screen, with completion (tab or →)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.message import Message
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Input

from ..commands import HINT, candidates, complete
from .prompt import Prompt

Words = Callable[[], tuple[Sequence[str], Sequence[str]]]  # (namespaces, services)


class CommandSuggester(Suggester):
    """Completes verbs, then namespaces / services / ranges for the verb typed."""

    def __init__(self, words: Words) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.words = words

    async def get_suggestion(self, value: str) -> str | None:
        namespaces, services = self.words()
        done = complete(value, namespaces, services)
        # The Input shows a suggestion as the rest of what was typed; tab takes any completion.
        return done if done is not None and done.startswith(value) else None


class CommandBar(Prompt):
    """Hidden until ``:``; enter runs the command (posted as :class:`Run`), esc closes."""
    DEFAULT_CSS = """
    CommandBar { dock: bottom; display: none; height: 3; border: tall $accent; }
    CommandBar.-open { display: block; }
    """

    class Run(Message):
        """The user entered a command line (without the leading colon)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, words: Words, **kwargs: object) -> None:
        super().__init__(placeholder=HINT, suggester=CommandSuggester(words), **kwargs)  # type: ignore[arg-type]
        self.words = words
        self.border_title = ":"
        self._previous: Widget | None = None

    def open(self) -> None:
        """Show and take focus *now*: keys already queued (a paste) must land here."""
        self.value = ""
        self.add_class("-open")
        focused = self.screen.focused
        self._previous = focused if focused is not self else self._previous
        self.screen.set_focus(self)

    def action_close(self) -> None:
        self.remove_class("-open")
        self.value = ""
        # Back where the keys were, now (not later): the next key of a burst goes there.
        if self._previous is not None and self._previous.is_attached:
            self.screen.set_focus(self._previous)
        else:
            self.screen.set_focus(None)

    def complete(self) -> None:
        namespaces, services = self.words()
        done = complete(self.value, namespaces, services)
        if done is not None:
            self.value = done + (" " if " " not in done else "")
            self.cursor_position = len(self.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        namespaces, services = self.words()
        found = candidates(event.value, namespaces, services)
        self.border_title = ": " + ("  ".join(found[:8]) if found else "no match")

    def finish(self, key: str) -> None:
        """enter: close (focus back where it was, at once) and run the command; esc: close."""
        text = self.value
        self.action_close()
        if key == "enter":
            self.post_message(self.Run(text))
