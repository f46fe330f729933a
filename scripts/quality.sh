#!/usr/bin/env bash
# Real-data quality runs (RESULTS.md, Autoencoders): each config is trained with its own values, then its
# best checkpoint is tested beside its baseline (PCA at the same latent dim / independent pixels).
# Use: bash scripts/quality.sh [cae dae vae mlp_ae]      (tens of minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
for cfg in "${@:-cae dae vae}"; do
  for c in $cfg; do
    echo "== $c: aecls fit --config configs/$c.yaml"
    start=$(date +%s)
    .venv/bin/aecls fit --config "configs/$c.yaml" --trainer.enable_progress_bar false \
      --trainer.enable_model_summary false
    echo "== $c: wall time $(( $(date +%s) - start )) s (fit + test)"
  done
done
