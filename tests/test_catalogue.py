"""The finding catalogue and the check registry agree, and every code is documented."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from meshobs.catalogue import CATALOGUE, RANGES, Category
from meshobs.checks import registry
from meshobs.checks.base import finding
from meshobs.engine.inputs import INPUTS

REPO = Path(__file__).resolve().parents[1]
MODULE_CATEGORY = {"internal": Category.INTERNAL, "proxy": Category.PROXY, "config": Category.CONFIG,
                   "networking": Category.CONFIG, "security": Category.CONFIG, "workloads": Category.CONFIG,
                   "appmesh": Category.CONFIG,
                   "certs": Category.CERTS, "traffic": Category.TRAFFIC, "traces": Category.TRACES}
SECTIONS = ("## What it means", "## How it shows up", "## How to confirm it by hand", "## How to fix it")


def test_codes_are_unique_well_formed_and_in_their_module_range() -> None:
    seen: list[str] = []
    for module, category in MODULE_CATEGORY.items():
        for code in importlib.import_module(f"meshobs.catalogue.{module}").CODES:
            assert re.fullmatch(r"MSH\d{4}", code.code), code.code
            assert code.number in RANGES[category], f"{code.code} listed under {module}"
            assert code.category is category
            assert code.title and code.template
            seen.append(code.code)
    assert len(seen) == len(set(seen)) == len(CATALOGUE)


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_code_has_a_docs_page_with_the_four_sections(code: str) -> None:
    page = REPO / "docs" / "findings" / f"{code}.md"
    assert page.is_file(), f"missing {page.relative_to(REPO)}"
    assert CATALOGUE[code].doc == f"meshobs explain {code}"  # what a pip user has (the page ships)
    text = page.read_text(encoding="utf-8")
    assert text.startswith(f"# {code}")
    for section in SECTIONS:
        assert section in text, f"{page.name} lacks '{section}'"


def test_every_check_names_existing_codes_and_every_code_has_an_emitter() -> None:
    checks = registry.load()
    assert checks, "no checks registered"
    emitted = {c for check in checks.values() for c in check.codes}
    assert emitted <= set(CATALOGUE)
    engine_codes = {"MSH0001", "MSH0002", "MSH0003"}  # emitted by the engine itself
    assert set(CATALOGUE) - emitted - engine_codes == set()


def test_every_check_has_a_stable_id_category_and_docstring() -> None:
    for check in registry.load().values():
        prefix = check.id.split(".", 1)[0]
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", check.id), check.id
        assert MODULE_CATEGORY[{"proxy": "proxy", "config": "config", "certs": "certs", "traffic": "traffic",
                                "traces": "traces", "appmesh": "config"}[prefix]] is check.category
        assert check.doc, f"{check.id} has no docstring"
        for need in check.needs:
            assert set(need.split("|")) <= set(INPUTS)
        for code in check.codes:
            assert CATALOGUE[code].category is check.category or code.startswith("MSH00")


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_finding_refuses_missing_template_fields(code: str) -> None:
    fields = CATALOGUE[code].fields - {"service"}
    if not fields:
        pytest.skip("template has no fields")
    with pytest.raises(KeyError):
        finding(code, "test.check", "Subject")
    complete = finding(code, "test.check", "Subject", **dict.fromkeys(fields, 1),
                       **({"service": "default/x"} if "service" in CATALOGUE[code].fields else {}))
    assert complete.message
