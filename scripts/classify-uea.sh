#!/usr/bin/env bash
# Runs the classify example on the UEA data sets it was not tuned on and writes each output,
# with the command, commit, date and machine, to docs/results/classify/<name>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p revode-cde --example classify
out=docs/results/classify
mkdir -p "$out"
for spec in "BasicMotions --method auto" "ItalyPowerDemand --method reversible"; do
    set -- $spec
    name=$1; shift
    cmd="target/release/examples/classify data/uea/${name}_TRAIN.ts data/uea/${name}_TEST.ts --epochs 100 $*"
    {
        echo "command: $cmd"
        echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!docs/results' || echo ' (dirty)')"
        echo "date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores"
        echo
        $cmd 2>/dev/null
    } > "$out/$name.txt.tmp"
    mv "$out/$name.txt.tmp" "$out/$name.txt"
    cat "$out/$name.txt"
done
