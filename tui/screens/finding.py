"""One finding in full: what fired, the evidence (the numbers), the hint and its doc page."""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Markdown, Static

from meshobs.catalogue import CATALOGUE
from meshobs.checks.base import Finding
from meshobs.model import thaw

from ..keys import FINDING, bindings
from ..styles import adapt, is_no_color
from ..viewmodel import finding_markdown
from ..widgets.tables import style_of
from .base import MeshScreen


def doc_path(code: str) -> Path | None:
    """``docs/findings/CODE.md`` of a source checkout (wheels do not ship docs/)."""
    import meshobs

    for base in Path(meshobs.__file__).resolve().parents[:3]:
        candidate = base / "docs" / "findings" / f"{code}.md"
        if candidate.is_file():
            return candidate
    return None


def finding_text(f: Finding, rank: int, no_color: bool) -> Text:
    """Header, message, causes, hint and evidence, wrapped to the width."""
    entry = CATALOGUE[f.code]
    text = Text()
    text.append(f"{'#' + str(rank) + ' ' if rank else ''}{f.code} ", style="bold")
    text.append(f.severity.value, style=style_of(f.severity.value, no_color))
    text.append(f"  {entry.title}\n", style="bold")
    text.append(f"subject: {f.subject}" + (f"  (service {f.service})" if f.service else "") + "\n")
    text.append(f"check:   {f.check} ({f.category.value})\n\n", style=adapt("dim", no_color))
    text.append(f.message + "\n")
    if f.caused_by:
        text.append("\ncaused by: " + "; ".join(f.caused_by) + "\n", style=adapt("yellow", no_color))
    if f.cause_of:
        text.append(f"\nexplains {len(f.cause_of)}: " + "; ".join(f.cause_of) + "\n", style=adapt("yellow", no_color))
    if f.hint:
        text.append("\nhint: " + f.hint + "\n", style=adapt("cyan", no_color))
    evidence = thaw(f.evidence)
    if evidence:
        text.append("\nevidence\n", style="bold")
        dumped = yaml.safe_dump(evidence, sort_keys=False, default_flow_style=False, width=70)
        text.append("".join("  " + line + "\n" for line in dumped.rstrip("\n").splitlines()))
    return text


class FindingScreen(MeshScreen):
    """Opened in place from the findings list or a service's diagnosis (enter)."""

    BINDINGS = bindings(FINDING)
    AUTO_FOCUS = "#finding-scroll"
    DEFAULT_CSS = """
    FindingScreen #finding-scroll { height: 1fr; padding: 0 1; }
    FindingScreen #finding-doc { margin-top: 1; }
    """

    class DocLoaded(Message):
        def __init__(self, markdown: str) -> None:
            super().__init__()
            self.markdown = markdown

    def __init__(self, finding: Finding, rank: int = 0) -> None:
        super().__init__()
        self.finding, self.rank = finding, rank

    def body(self) -> ComposeResult:
        with VerticalScroll(id="finding-scroll") as box:
            box.border_title = f"{self.finding.code} {self.finding.subject}"
            yield Static(finding_text(self.finding, self.rank, is_no_color(self)), id="finding-text")
            yield Markdown(f"doc: `{self.finding.doc}` (loading…)", id="finding-doc")

    def on_mount(self) -> None:
        # Textual runs MeshScreen.on_mount too (every class's handler in the MRO): not super().
        self.load_doc()

    @work(thread=True, exclusive=True, exit_on_error=False, group="doc")
    def load_doc(self) -> None:
        """The doc page is a file: read it off the UI thread."""
        path = doc_path(self.finding.code)
        text = (path.read_text(encoding="utf-8") if path is not None else
                f"doc: `{self.finding.doc}` (not installed with this copy of meshobs; "
                "see the project's docs/findings/)")
        self.post_message(self.DocLoaded(text))

    def on_finding_screen_doc_loaded(self, message: DocLoaded) -> None:
        if not self.is_attached:  # closed while its worker ran
            return
        self.query_one("#finding-doc", Markdown).update(message.markdown)

    def selected_service(self):  # type: ignore[no-untyped-def]
        return self.finding.service

    def action_open_service(self) -> None:
        if self.finding.service is None:
            self.notify(f"{self.finding.code} is about the mesh, not one service", severity="warning")
            return
        self.app.open_service(self.finding.service)  # type: ignore[attr-defined]

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(finding_markdown(self.finding))
        self.notify(f"copied {self.finding.code} {self.finding.subject} as markdown")
