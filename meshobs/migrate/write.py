"""The translation on disk: one YAML file per resource, each naming the App Mesh resources it
came from, and ``MIGRATION.md`` (what was not translated, and why)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .manifest import Manifest
from .report import markdown

HEADER = "# Translated by meshobs migrate appmesh-to-istio from App Mesh:\n"
REPORT = "MIGRATION.md"  # not .yaml/.json: `kubectl apply -f DIR` must not read it


class OutputNotEmpty(Exception):
    """The output directory holds files already (perhaps a reviewed earlier translation)."""


def manifest_text(m: Manifest) -> str:
    sources = "".join(f"#   {s}\n" for s in m.sources) or "#   (the mesh as a whole)\n"
    return HEADER + sources + yaml.safe_dump(m.doc, sort_keys=False, default_flow_style=False)


def write(translation: object, out: str | Path, *, force: bool = False, extra: str = "") -> list[Path]:
    """Write every manifest and the report into ``out``; refuse a non-empty directory unless
    ``force`` (files of the same name are then replaced, others left alone)."""
    from .translate import Translation

    assert isinstance(translation, Translation)
    root = Path(out).expanduser()
    if root.exists() and not root.is_dir():
        raise OutputNotEmpty(f"{root}: exists and is not a directory")
    if not force and root.is_dir() and any(root.iterdir()):
        raise OutputNotEmpty(f"{root}: exists and is not empty (use --force to overwrite)")
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for m in translation.manifests:
        path = root / m.filename
        path.write_text(manifest_text(m), encoding="utf-8")
        written.append(path)
    report = root / REPORT
    report.write_text(markdown(translation) + extra, encoding="utf-8")
    written.append(report)
    return written
