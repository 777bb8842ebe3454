#!/usr/bin/env bash
# The adversarial suite and the honest H200 plan on one GPU machine (device tool, nvidia-h200):
#   1. the H200 artifact plan (PLAN=... for another) through `harness bench` (honest cases: none may be invalid; wall time)
#   2. every cheat of bench/adversarial/cheats.py through the public door (plan-h200.yaml)
#   3. the patched timer, in a process of its own
#   4. the GPU tests of the integrity checks and the census
# Output: $OUT/adv.tgz (the result folders) and $OUT/log-adv.txt.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=.
W=/tmp/adv; mkdir -p $W
pack() { tar czf "$OUT/adv.tgz" -C /tmp adv 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
nvidia-smi -L; date -u
step honest 180 /usr/bin/time -f "%e s wall" python3 -m harness.cli bench --plan "${PLAN:-harness/plans/h200-artifact.yaml}" \
    --out $W/honest --no-progress
step cheats 150 python3 -m harness.cli bench --plan bench/adversarial/plan-h200.yaml --out $W/cheats --no-progress
step timer 60 python3 -m harness.cli bench --workload bench.adversarial.patched_timer:PATCHED_TIMER --backends default \
    --seq 512 --out $W/timer --no-progress --no-ceilings
step gpu-tests 120 python3 -m pytest -q -p no:cacheprovider tests/harness/test_census.py tests/harness/test_adversarial.py -k "gpu"
} 2>&1 | tee "$OUT/log-adv.txt"
pack
