#!/usr/bin/env bash
# The suite against the LOWEST versions meshobs allows: every runtime dependency pinned to its
# lower bound (scripts/lowest_constraints.py), in a second venv (.venv-lowest), so a bound that
# is too low fails CI instead of a user. Run by scripts/test.sh after the main run; arguments
# go to pytest. Left out: the SVG snapshots (pixels of one pinned Textual release) and the
# release build (it installs the newest dependencies into a clean venv by design).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv-lowest/bin/python ]; then
  echo "== creating .venv-lowest"
  "$PY" -m venv .venv-lowest
fi
"$PY" scripts/lowest_constraints.py > .venv-lowest/constraints.txt
echo "== installing meshobs with its lowest allowed dependencies into .venv-lowest"
.venv-lowest/bin/python -m pip install -q --upgrade pip >/dev/null
.venv-lowest/bin/python -m pip install -q -c .venv-lowest/constraints.txt -e ".[test]"
# Fail loudly if the resolver did not give exactly the lower bounds.
.venv-lowest/bin/python - .venv-lowest/constraints.txt <<'PYCHECK'
import sys
from importlib.metadata import version
from packaging.version import Version
wrong = []
for line in open(sys.argv[1]):
    name, _, want = line.strip().partition("==")
    if name and Version(version(name)) != Version(want):
        wrong.append(f"{name} {version(name)} (wanted {want})")
print("== lowest versions:", ", ".join(l.strip() for l in open(sys.argv[1])))
if wrong:
    sys.exit("not the lowest versions: " + "; ".join(wrong))
PYCHECK

export MESHOBS_REQUIRE_PROMETHEUS=1 MESHOBS_REQUIRE_VICTORIAMETRICS=1 MESHOBS_REQUIRE_MOTO=1
echo "== pytest (lowest versions)"
.venv-lowest/bin/pytest -n "${MESHOBS_TEST_WORKERS:-auto}" -p no:cacheprovider --ignore=tests/test_tui_snapshots.py \
  --deselect tests/test_packaging.py::test_release_build_installs_and_runs_in_a_clean_venv "$@"
