#!/usr/bin/env bash
# Machine B, call 2 (same machine, right after call 1): two runs of the H200 artifact plan that
# call 1 wrote, the independent fidelity check on the first, and Nsight Compute profiles of cudnn
# and the candidate at S=1024 (the profiles behind bench/triton_attention/NOTES.md, run 6).
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
W=/tmp/b; P=${PLAN:-$W/h200-artifact.yaml}
pack() { tar czf "$OUT/b2.tgz" -C /tmp b/run-B1 b/run-B2 b/fidelity-B1 b/profiles 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
step run-B1 200 /usr/bin/time -f "%e s wall" python3 -m harness.cli bench --plan $P --out $W/run-B1 --no-progress
step run-B2 200 /usr/bin/time -f "%e s wall" python3 -m harness.cli bench --plan $P --out $W/run-B2 --no-progress
step fidelity-B1 200 python3 bench/fidelity.py --results $W/run-B1 --out $W/fidelity-B1 --rounds 3
tri=$(ls $W/run-B1/cases/triton_attention-triton-b32h8s1024*.json | head -n 1)
step profile-triton 120 python3 -m harness.cli profile "$tri" --out $W/profiles
step profile-cudnn 120 python3 -m harness.cli profile --backend cudnn --seq 1024 --out $W/profiles
} 2>&1 | tee "$OUT/log-b2.txt"
pack
