#!/usr/bin/env bash
# The adversarial suite and the honest H200 plan on one GPU machine (device tool, nvidia-h200):
#   1. `make reproduce` as a reviewer runs it (the machine's plan and references: on an H200 the
#      H200 artifact plan and h200.yaml; honest cases, none may be invalid; its wall time)
#   2. every cheat of bench/adversarial/cheats.py through the public door (plan-h200.yaml)
#   3. the patched timer, in a process of its own
#   4. the GPU tests of the integrity checks and the census
# Output: $OUT/adv.tgz (the result folders) and $OUT/log-adv.txt.
set -uo pipefail
# PYTHONPATH only for the harness steps: with the checkout on it, `import docker` (the SDK) in
# `make reproduce` finds the repository's docker/ folder instead.
export PYTHONUNBUFFERED=1
H="env PYTHONPATH=. python3"
W=/tmp/adv; mkdir -p $W
pack() { tar czf "$OUT/adv.tgz" -C /tmp adv 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
nvidia-smi -L; date -u
step reproduce 150 /usr/bin/time -f "%e s wall" make reproduce STAMP=adv-honest
cp -r results/adv-honest $W/honest 2>/dev/null
step cheats 100 $H -m harness.cli bench --plan bench/adversarial/plan-h200.yaml --out $W/cheats --no-progress
step timer 30 $H -m harness.cli bench --workload bench.adversarial.patched_timer:PATCHED_TIMER --backends default \
    --seq 512 --out $W/timer --no-progress --no-ceilings
step gpu-tests 60 $H -m pytest -q -p no:cacheprovider tests/harness/test_census.py tests/harness/test_adversarial.py -k "gpu"
} 2>&1 | tee "$OUT/log-adv.txt"
pack
