#!/usr/bin/env bash
# Set-up + the main job: the whole pipeline on the real Fashion-MNIST (a small CAE study, best-trial
# re-run, CAE/DAE/VAE fits, transfer sweep, a frozen-encoder classifier) -> reports/quickstart/report.md.
# Use: bash scripts/quickstart.sh [--full] [--fresh]    (a second run skips what is done)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/aecls pipeline "$@"
