"""Text output that stays readable in a narrow terminal: long lines wrap at spaces with a hanging
indent; a name longer than the width stays whole (beside its label), never cut."""

from __future__ import annotations

import os
import re
import sys

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
HANG = 4  # continuation lines are indented this much more than the line they continue


def output_width() -> int:
    """The width to wrap stdout at: the terminal's when stdout is one (rich measures it),
    else ``$COLUMNS``, else 80 (files, pipes and CI logs read fine at 80)."""
    if sys.stdout.isatty():
        from rich.console import Console

        return max(Console(file=sys.stdout).width, 40)
    try:
        return max(int(os.environ.get("COLUMNS", "")), 40)
    except ValueError:
        return 80


def visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def wrap_line(line: str, width: int) -> list[str]:
    """``line`` as lines of at most ``width`` visible characters where spaces allow."""
    if visible_len(line) <= width:
        return [line]
    indent = len(line) - len(line.lstrip(" "))
    hang = " " * min(indent + HANG, width // 2)
    out: list[str] = []
    current = line[:indent]
    room = width
    for word in line[indent:].split():
        fits = visible_len(current) + 1 + visible_len(word) <= room
        # A word too long for a line of its own stays with a one-word label ("at <long path>").
        with_label = not out and len(current.split()) == 1 and len(hang) + visible_len(word) > width
        if visible_len(current.strip()) and not fits and not with_label:
            out.append(current.rstrip())
            current = hang + word
        else:
            current = f"{current} {word}" if current.strip() else current + word
    out.append(current.rstrip())
    return out


def wrap(text: str, width: int) -> str:
    """Every line of ``text`` wrapped at ``width`` (see :func:`wrap_line`)."""
    return "\n".join(part for line in text.split("\n") for part in wrap_line(line, width))
