#!/usr/bin/env bash
# Creates peers/.venv with the pinned peer libraries, installed by name from PyPI.
# Python 3.11 (the project machine's): jax 0.10.2 is the newest jax for Python 3.11.
# torch from PyPI is the CUDA build (several GB with its nvidia-* dependencies); the
# comparison runs it on the CPU only.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
"$PY" -m venv .venv
.venv/bin/pip install --upgrade pip==23.2.1 >/dev/null 2>&1 || true
.venv/bin/pip install \
  "diffrax==0.7.2" \
  "equinox==0.13.8" \
  "lineax==0.1.1" \
  "jax==0.10.2" \
  "jaxlib==0.10.2" \
  "numpy==2.4.6" \
  "scipy==1.17.1" \
  "torch==2.15.0" \
  "torchdiffeq==0.2.5" \
  "torchsde==0.2.6" \
  "torchcde==0.2.5"
.venv/bin/python -c "import diffrax, jax, torch, torchdiffeq, torchsde, torchcde; print('peers ready')"
