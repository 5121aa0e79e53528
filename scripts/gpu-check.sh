#!/usr/bin/env bash
# The GPU check: build revode with dfdx's CUDA backend, run the device tests, and time the
# compute-bound neural ODE (d = 32, MLP 32 → 128 → 128 → 32, batch 256, midpoint, N = 100) on
# the CPU and on the GPU. Needs a CUDA toolkit (nvcc on PATH, or CUDA_ROOT set) and a Rust
# toolchain; CI only type-checks this build (`--features cuda,dfdx/ci-check`, no GPU needed).
#
#   scripts/gpu-check.sh [OUT_DIR]      # default OUT_DIR: gpu-check
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
mkdir -p "$out"
log="$out/gpu-check.log"
{
    echo "# revode GPU check"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(uname -m), $(nproc) cores"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    command -v nvcc >/dev/null && nvcc --version | tail -n 2
    rustc --version
} | tee "$log"
# Device tests: CPU and GPU gradients agree, and reversible equals the full tape on the GPU.
cargo test --release -p revode-core --features cuda --test cuda 2>&1 | tee -a "$log"
# Compute benchmark: the same gradient on CPU and GPU, timed, with the cross-device error.
cargo run --release -p revode-core --features cuda --example cuda_check 2>&1 | tee -a "$log"
echo "gpu-check: passed; log in $log"
