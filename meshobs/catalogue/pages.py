"""The documentation page of each finding code, wherever meshobs is installed.

The pages are written in the repository's ``docs/findings/<CODE>.md`` and ship inside the
package as ``meshobs/docs/findings/<CODE>.md`` (see ``package-dir`` in pyproject.toml), so a
pip user reads them with ``meshobs explain <CODE>``; in a source checkout they are read in place.
"""

from __future__ import annotations

from pathlib import Path

import meshobs


def findings_dir() -> Path | None:
    """The folder holding the finding pages: installed package data, else the checkout's docs/."""
    package = Path(meshobs.__file__).resolve().parent
    for candidate in (package / "docs" / "findings", package.parent / "docs" / "findings"):
        if candidate.is_dir():
            return candidate
    return None


def page(code: str) -> str | None:
    """The Markdown page of ``code`` (``MSH0406``), or None when there is none."""
    folder = findings_dir()
    path = folder / f"{code}.md" if folder else None
    return path.read_text(encoding="utf-8") if path is not None and path.is_file() else None
