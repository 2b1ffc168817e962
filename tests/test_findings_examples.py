"""The documentation's examples are executable: for every analyzer code, the YAML under
"## Example: broken" in docs/findings/<CODE>.md produces that code, and the YAML under
"## Example: fixed" produces no finding at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.manifests import analyzer_findings, analyzers, manifests_snapshot

REPO = Path(__file__).resolve().parents[1]
CODES = sorted({code for a in analyzers() for code in a.codes})


def example(code: str, which: str) -> str:
    text = (REPO / "docs" / "findings" / f"{code}.md").read_text(encoding="utf-8")
    section = re.search(rf"^## Example: {which}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, f"{code}: no '## Example: {which}' section"
    block = re.search(r"```yaml\n(.*?)```", section.group(1), re.S)
    assert block, f"{code}: the {which} example has no yaml block"
    return block.group(1)


@pytest.mark.parametrize("code", CODES)
def test_broken_example_produces_the_code(code: str) -> None:
    snapshot = manifests_snapshot({f"{code}-broken.yaml": example(code, "broken")})
    found = analyzer_findings(snapshot)
    assert code in {f.code for f in found}
    # ... on the file, at a line of the example.
    lines = len(example(code, "broken").splitlines())
    assert all(f.file == f"{code}-broken.yaml" and 1 <= f.line <= lines for f in found if f.code == code)


@pytest.mark.parametrize("code", CODES)
def test_fixed_example_produces_nothing(code: str) -> None:
    snapshot = manifests_snapshot({f"{code}-fixed.yaml": example(code, "fixed")})
    assert [(f.code, f.subject) for f in analyzer_findings(snapshot)] == []
