"""What the documentation tells people to run or open exists: every ``meshobs ...`` command line
in README.md, CONTRIBUTING.md, CHANGELOG.md, docs/ and config/ names a real command and real
options, and every relative Markdown link points at a file in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from meshobs.cli.main import cli

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted({*REPO.glob("*.md"), *(REPO / "docs").rglob("*.md"), *(REPO / "config").glob("*.yaml"),
                *(REPO / "config").glob("**/*.yaml"), *(REPO / "config").glob("*.example")})
# A command line: inside `backticks`, or a line of a code block / YAML file.
COMMAND = re.compile(r"(?:^|[`\s\"'\[])meshobs((?: +(?:[a-z][a-z-]*|-{1,2}[a-z][a-z-]*))+)")


def command_lines() -> list[tuple[str, list[str]]]:
    out = []
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            for match in COMMAND.finditer(line):
                words = match.group(1).split()
                if words and (words[0] in cli.list_commands(click.Context(cli)) or words[0].startswith("-")):
                    out.append((f"{page.relative_to(REPO)}: meshobs {match.group(1).strip()}", words))
    return out


LINES = command_lines()


def test_command_lines_are_found() -> None:
    assert len(LINES) > 20


@pytest.mark.parametrize("where, words", LINES, ids=[w for w, _ in LINES])
def test_documented_command_lines_exist(where: str, words: list[str]) -> None:
    ctx = click.Context(cli)
    command: click.Command = cli
    options = {o for p in cli.params for o in getattr(p, "opts", [])} | {"-h", "--help"}
    for word in words:
        if word.startswith("-"):
            assert word in options, f"{where}: {word} is not an option of this command"
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(ctx, word)
            if sub is not None:
                command = sub
                options = {o for p in sub.params for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}
                options |= {"-h", "--help"}


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", [p for p in PAGES if p.suffix == ".md"], ids=lambda p: str(p.relative_to(REPO)))
def test_relative_markdown_links_resolve(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to missing {target}"
