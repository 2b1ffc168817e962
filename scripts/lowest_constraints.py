"""Print a pip constraints file pinning every runtime dependency of meshobs (and of its runtime
extras) to its lower bound: ``name>=X`` becomes ``name==X``. Test and development tools are left
to the resolver: the contract under test is what meshobs itself declares.

    python scripts/lowest_constraints.py > lowest.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

RUNTIME_EXTRAS = ("aws",)
LOWER = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(?:[^;]*?)>=\s*([0-9][^,;\s]*)")


def lowest(requirements: list[str]) -> list[str]:
    out = []
    for req in requirements:
        match = LOWER.match(req)
        if match is None:
            raise SystemExit(f"no lower bound in {req!r}: every runtime dependency needs one")
        out.append(f"{match.group(1)}=={match.group(3)}")
    return out


def main() -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    sys.stdout.write("\n".join(lowest(requirements)) + "\n")


if __name__ == "__main__":
    main()
