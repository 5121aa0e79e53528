#!/usr/bin/env bash
# Runs the criterion micro-benchmarks (revode-bench/benches/hot_paths.rs) and records their
# medians with provenance in docs/results/criterion/criterion.json, the file docs/src/
# benchmarks.md quotes through figure markers.
#
#     scripts/criterion-results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--warm-up-time 1 --measurement-time 2)
rm -rf target/criterion
start=$(date +%s)
cargo bench -p revode-bench --bench hot_paths -- "${args[@]}"
wall=$(( $(date +%s) - start ))
commit="$(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!docs/results' || echo ' (dirty)')"
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores"
mkdir -p docs/results/criterion
python3 - "$commit" "$machine" "$wall" "${args[*]}" <<'PY'
import json, pathlib, re, sys, datetime, os
commit, machine, wall, args = sys.argv[1:5]
rows = []
for bench in sorted(pathlib.Path("target/criterion").glob("*/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())
    full = meta["full_id"]
    rows.append({
        "slug": re.sub(r"[^a-z0-9]+", "-", full.lower()).strip("-"),
        "id": full,
        "median_ns": est["median"]["point_estimate"],
        "median_ci_ns": [est["median"]["confidence_interval"]["lower_bound"],
                         est["median"]["confidence_interval"]["upper_bound"]],
    })
out = {
    "command": f"scripts/criterion-results.sh (cargo bench -p revode-bench --bench hot_paths -- {args})",
    "commit": commit,
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "machine": machine,
    "wall_s": int(wall),
    "benchmarks": rows,
}
path = pathlib.Path("docs/results/criterion/criterion.json")
tmp = path.with_suffix(".json.tmp")
tmp.write_text(json.dumps(out, indent=2) + "\n")
os.replace(tmp, path)
for r in rows:
    print(f"{r['median_ns']:>14.1f} ns  {r['id']}")
PY
