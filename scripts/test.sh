#!/usr/bin/env bash
# Set-up + the test suite (what CI runs). Use: bash scripts/test.sh [pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "ERROR: pytest collected no tests; an empty run is a failure" >&2
  exit 1
fi
exit "$rc"
