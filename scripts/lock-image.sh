#!/usr/bin/env bash
# Regenerate docker/requirements.lock: the exact versions of every package the image installs
# (meshobs with the [aws] extra), resolved in a clean venv.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PYTHON:-python3}" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q ".[aws]"
{
  echo "# The exact versions the image installs (Dockerfile: pip install -c). Regenerate with"
  echo "# scripts/lock-image.sh after changing dependencies; tests/test_dockerfile.py checks it still"
  echo "# satisfies pyproject.toml."
  "$tmp/venv/bin/pip" freeze --exclude meshobs
} > docker/requirements.lock
echo "wrote docker/requirements.lock"
