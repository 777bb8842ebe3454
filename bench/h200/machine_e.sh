#!/usr/bin/env bash
# Machine E (nvidia-h200): the code after issue 12's restructuring (results-folder module, claims
# package, optimize package, record-version registry, reviewer fixes) on the GPU, which the CPU CI
# cannot reach: the reviewer's `make reproduce`, the GPU census tests, `harness optimize` with the
# shipped H200 config and an Nsight Compute profile, and the report of the reproduce run.
set -uo pipefail
export PYTHONUNBUFFERED=1
W=/tmp/e; mkdir -p $W
pack() { tar czf "$OUT/e.tgz" -C /tmp e 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
step reproduce 300 /usr/bin/time -f "%e s wall" make reproduce STAMP=fresh-E1
cp -r results/fresh-E1 $W/run-E1 2>/dev/null
step gpu-tests 120 env PYTHONPATH=. python3 -m pytest -q -p no:cacheprovider tests/harness/test_census.py -k on_a_gpu
step optimize-s128 90 env PYTHONPATH=. python3 -m harness.cli optimize --seq 128 --reuse-tuned --budget-s 45 --ncu always --out $W/opt-s128
step report 60 env PYTHONPATH=. python3 -m artifact.cli report $W/run-E1
} 2>&1 | tee "$OUT/log-e.txt"
pack
