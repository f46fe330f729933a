#!/usr/bin/env bash
# Set-up on a bare machine: .venv with aecls (+ dev tools), and the real Fashion-MNIST files.
# Idempotent: a second run only checks what is there. Use: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import aecls, optuna, lightning, torchvision, pandas, pytest, xdist" 2>/dev/null; then
  echo "== installing aecls and its dependencies into .venv (torch 2.14.1: a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
fi

# Real data: Debian's package puts the four IDX files in /usr/share/datasets/fashion-mnist.
DATA=/usr/share/datasets/fashion-mnist
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ] && [ -z "${AECLS_DATA:-}" ] && command -v apt-get >/dev/null; then
  echo "== installing the Fashion-MNIST data (apt-get install dataset-fashion-mnist)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; then
    echo "warning: could not install dataset-fashion-mnist; set AECLS_DATA to a directory with the IDX files" >&2
  fi
fi
echo "== set-up done"
