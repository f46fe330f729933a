#!/usr/bin/env bash
# GPU check, one script, a few minutes on one GPU: measurements (scripts/gpu_check.py: CUDA fit of
# configs/cae.yaml, plain loop vs Lightning on CUDA per speed variant at batch 128 and 512, a study
# with 1, 2, 4 and 8 workers on one GPU, the best trial re-run with its seed) and then the
# GPU-marked tests. Results: OUT/gpu_check.md
# (default OUT: gpu_check/), the tests' summary in OUT/gpu_tests.log.
# Use: bash scripts/gpu_check.sh [OUT]    PYTHON=python3 to use another interpreter than .venv's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi -L || true
"$PY" scripts/gpu_check.py --out "$OUT"
set +e
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$OUT/gpu_tests.log"
rc=${PIPESTATUS[0]}
set -e
echo "GPU-marked tests: exit $rc" | tee -a "$OUT/gpu_check.md"
exit "$rc"
