#!/usr/bin/env bash
# Set-up + the main job: train the seed CAE on the real Fashion-MNIST and print its test MSE.
# Use: bash scripts/quickstart.sh            (EPOCHS=20 for the full-quality run; default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
EPOCHS=${EPOCHS:-5}
echo "== training the CAE (latent 14, 16 channels) for $EPOCHS epochs; logs in lightning_logs/cae"
.venv/bin/aecls fit --config configs/cae.yaml --trainer.max_epochs "$EPOCHS" --trainer.enable_progress_bar false
echo "== done. TensorBoard: .venv/bin/tensorboard --logdir lightning_logs"
