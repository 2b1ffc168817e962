"""``meshobs explain``: every code's page, from wherever meshobs is installed."""

from __future__ import annotations

from click.testing import CliRunner

from meshobs.catalogue import CATALOGUE
from meshobs.catalogue.pages import page
from meshobs.cli.main import cli


def test_every_code_has_a_page_the_locator_finds() -> None:
    for code in CATALOGUE:
        text = page(code)
        assert text is not None and text.startswith(f"# {code}"), code


def test_explain_prints_the_page() -> None:
    result = CliRunner().invoke(cli, ["explain", "MSH0406"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# MSH0406") and "## How to fix it" in result.stdout


def test_explain_accepts_lowercase_and_bare_numbers() -> None:
    for spelling in ("msh0406", "406", "0406"):
        assert CliRunner().invoke(cli, ["explain", spelling]).stdout.startswith("# MSH0406"), spelling


def test_explain_lists_every_code_without_an_argument() -> None:
    result = CliRunner().invoke(cli, ["explain"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == sorted(CATALOGUE)


def test_unknown_code_is_a_usage_error_with_suggestions() -> None:
    result = CliRunner().invoke(cli, ["explain", "MSH0499"])
    assert result.exit_code == 2
    assert "MSH0409" in result.stderr
