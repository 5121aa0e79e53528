#!/usr/bin/env bash
# scripts/record.sh OUT_FILE COMMAND [ARGS…]: runs COMMAND and writes its output to OUT_FILE
# (atomically), headed by the command, the git commit (with a dirty flag; docs/results is
# ignored), the date and the machine.
set -euo pipefail
out=$1; shift
mkdir -p "$(dirname "$out")"
{
    echo "command: $*"
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!docs/results' || echo ' (dirty)')"
    echo "date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores"
    echo
    "$@" 2>/dev/null
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
