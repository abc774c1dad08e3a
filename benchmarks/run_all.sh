#!/usr/bin/env bash
# The full engine benchmark, twice, then the engine's profiles; everything also goes to a log.
#   benchmarks/run_all.sh [LOGFILE]        (default: benchmarks-<UTC time>.log in the current directory)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
py="${PYTHON:-$root/.venv/bin/python}"
log="${1:-benchmarks-$(date -u +%Y%m%dT%H%M%SZ).log}"
{
  for run in 1 2; do
    echo "######## run $run"
    "$py" "$here/engine_bench.py" all
  done
  echo "######## profiles (cProfile, top 15 by tottime)"
  "$py" "$here/engine_bench.py" all --profile
} 2>&1 | tee "$log"
echo "log: $log"
