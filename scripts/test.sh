#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian/Ubuntu machine, then run it all:
# ruff, mypy, and pytest (including the tests against a real Prometheus, a real VictoriaMetrics and
# a real moto server, which must run, not skip), then the suite again against the lowest dependency
# versions meshobs allows (scripts/test-lowest.sh; MESHOBS_SKIP_LOWEST=1 skips it for a quick local
# run, never in CI). Arguments go to pytest. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
need_apt=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# The live PromQL tests also run against VictoriaMetrics (victoria-metrics and vmalert).
command -v victoria-metrics >/dev/null 2>&1 && command -v vmalert >/dev/null 2>&1 || need_apt+=(victoria-metrics)
# Debian's python3 has no venv module until python3-venv is installed.
"$PY" -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing meshobs, its test dependencies and the development tools into .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"

# The real-server tests fail instead of skipping when their server is missing.
export MESHOBS_REQUIRE_PROMETHEUS=1 MESHOBS_REQUIRE_VICTORIAMETRICS=1 MESHOBS_REQUIRE_MOTO=1

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy meshobs
echo "== pytest"
# One worker per core (MESHOBS_TEST_WORKERS=0 runs in this process, e.g. to debug one test).
.venv/bin/pytest -n "${MESHOBS_TEST_WORKERS:-auto}" "$@"

if [ "${MESHOBS_SKIP_LOWEST:-}" != "1" ]; then
  bash scripts/test-lowest.sh "$@"
fi
