#!/usr/bin/env bash
# MPI tests of the distributed trainer (feature `mpi`), on this machine only (loopback and
# shared memory): 2 ranks give bitwise the parameters of 1 rank on the same global batch; a
# run checkpointed on 2 ranks resumes on 1 rank bit-identically; a failing rank stops every
# rank with a clear error and none hangs. Needs an MPI (Debian: openmpi-bin libopenmpi-dev)
# and libclang-dev to build the bindings.
set -euo pipefail
cd "$(dirname "$0")/.."
# Open MPI refuses to run as root without these (CI runs as root); --oversubscribe lets 2
# ranks share fewer cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun_() { timeout 300 mpirun --oversubscribe --bind-to none -np "$@"; }
cargo build --release -p revode-core --features mpi --example mpi_train
bin=target/release/examples/mpi_train
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
body() { tail -n +2 "$1"; }  # drop the header line (it names the rank count)

echo "== 1 rank vs 2 ranks, 20 steps"
mpirun_ 1 "$bin" --steps 20 --out "$dir/one.txt"
mpirun_ 2 "$bin" --steps 20 --out "$dir/two.txt"
cmp <(body "$dir/one.txt") <(body "$dir/two.txt")
echo "bitwise equal"

echo "== interrupted after step 10 on 2 ranks (checkpoint every 5), resumed to 20 on 1 rank"
mpirun_ 2 "$bin" --steps 20 --stop-after 10 --out "$dir/half.txt" --checkpoint "$dir/ckpt" --checkpoint-every 5
mpirun_ 1 "$bin" --steps 20 --out "$dir/resumed.txt" --checkpoint "$dir/ckpt" --resume
cmp <(body "$dir/one.txt") <(body "$dir/resumed.txt")
echo "bitwise equal"

echo "== rank 1 fails at step 3: every rank stops with an error, none hangs"
set +e
mpirun_ 2 "$bin" --steps 20 --out "$dir/fail.txt" --fail-rank 1 --fail-step 3 >"$dir/fail.log" 2>&1
code=$?
set -e
cat "$dir/fail.log"
if [ "$code" -eq 0 ] || [ "$code" -eq 124 ] || [ -e "$dir/fail.txt" ]; then
    echo "expected a clean failure (exit $code)"; exit 1
fi
[ "$(grep -c 'rank 1 at step 3' "$dir/fail.log")" -eq 2 ] || { echo "both ranks must report it"; exit 1; }
echo "mpi-tests: passed"
