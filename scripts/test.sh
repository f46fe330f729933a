#!/usr/bin/env bash
# Set-up + ruff + the test suite (what CI runs). Use: bash scripts/test.sh [pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# The study tests start a throw-away PostgreSQL server; install one where apt can (they skip, saying
# why, where none can be started).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null \
   && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  echo "== installing PostgreSQL for the storage tests"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql >/dev/null; } \
    || echo "warning: could not install postgresql; its tests will be skipped" >&2
fi
# Lint first (pyproject.toml's [tool.ruff]): a style or import error fails the run like a test.
echo "== ruff check"
.venv/bin/ruff check aecls tests scripts || exit 1
# Two pytest-xdist workers (CI's machine has two cores), each on one thread (tests/conftest.py):
# most tests are small fits or processes that wait, so two side by side keep both cores busy
# (what it saves: docs/developing.md). AECLS_TEST_WORKERS=N for another number, 0 for one process.
.venv/bin/python -m pytest -q -n "${AECLS_TEST_WORKERS:-2}" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "ERROR: pytest collected no tests; an empty run is a failure" >&2
  exit 1
fi
exit "$rc"
