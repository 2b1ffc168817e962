"""Styles that carry meaning (failing, error, warning, drift), with and without colour.

Under ``NO_COLOR`` Textual turns every colour into a grey of the same luminance, so red on
the dark background becomes dark grey on dark grey: the meaning disappears. Here a style is
kept as is with colour, and without colour its colour words are replaced by emphasis that
survives monochrome (bold, reverse, italic) and the text keeps the default foreground.
"""

from __future__ import annotations

from typing import Any

# Colour word -> emphasis that says the same without colour. Red is the alarm: reverse video.
EMPHASIS = {"red": "bold reverse", "yellow": "bold", "magenta": "bold underline", "green": "",
            "cyan": "", "blue": "", "dim": "italic"}


def plain(style: str) -> str:
    """``style`` with colours replaced by emphasis ("bold red" -> "bold reverse")."""
    out: list[str] = []
    for word in style.split():
        for part in EMPHASIS.get(word, word).split():
            if part not in out:
                out.append(part)
    return " ".join(out)


def adapt(style: str, no_color: bool) -> str:
    """The style to use: as is with colour, :func:`plain` under ``NO_COLOR``."""
    return plain(style) if no_color and style else style


def is_no_color(widget: Any) -> bool:
    """Whether the app of ``widget`` runs without colour (``NO_COLOR`` was set)."""
    try:
        return bool(getattr(widget.app, "no_color", False))
    except Exception:  # not mounted yet: no app to ask
        return False
