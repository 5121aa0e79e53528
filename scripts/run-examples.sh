#!/usr/bin/env bash
# Runs the examples on data they were not tuned on and records each output (command, commit,
# date, machine) under docs/results/: classify on two UEA sets, fit_trajectories on the
# measured coupled oscillators, the Fisher–KPP surrogate at a grid and growth rate the
# experiment does not use, the SDE-GAN generator on the daily demand curves of
# ItalyPowerDemand (the 1029 days of its TEST file; real data, while the GAN's recipe was set on
# an OU process).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p revode-cde --example classify -p revode-core --example fit_trajectories \
    -p revode-pde --example surrogate -p revode-sde --example generate
for spec in "BasicMotions --method auto" "ItalyPowerDemand --method reversible"; do
    set -- $spec
    name=$1; shift
    scripts/record.sh "docs/results/classify/$name.txt" target/release/examples/classify \
        "data/uea/${name}_TRAIN.ts" "data/uea/${name}_TEST.ts" --epochs 100 "$@"
done
scripts/record.sh docs/results/fit-trajectories/oscillators.txt \
    target/release/examples/fit_trajectories data/physical/oscillators.csv --until 3 --steps 1000
scripts/record.sh docs/results/surrogate-example/fisher-48-cells.txt \
    target/release/examples/surrogate --cells 48 --rho 4 --iterations 300
scripts/record.sh docs/results/generate/ItalyPowerDemand.txt target/release/examples/generate \
    data/uea/ItalyPowerDemand_TEST.ts --steps 4000 --paths 20 \
    --out docs/results/generate/ItalyPowerDemand-generated.csv
