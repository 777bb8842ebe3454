#!/usr/bin/env bash
# Machine B, call 1 (nvidia-h200): pick the Triton candidate's config per S for the H200 plan
# (tune.py --phase final: the run-5 leaders and 256-row blocks, 3 rounds at every S beside cudnn
# and default), measure each winner with `harness optimize --config ... --save-tuned` (S=128
# meets the 1.10x target, so its comparison.json carries the Nsight Compute profile), and write
# the plan. Outputs under /tmp/b (kept for call 2 on the same machine) and $OUT/b1.tgz.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
W=/tmp/b; mkdir -p $W/tuned
pack() { tar czf "$OUT/b1.tgz" -C /tmp b 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
step tune 240 python3 bench/triton_attention/tune.py --out $W/tune-final --phase final --workers 14
for S in 128 512 1024 2048 4096; do
    cfg=$(python3 -c "import json,sys; print(json.dumps(json.load(open('$W/tune-final/winners.json'))['$S']))")
    step "optimize-s$S" 120 python3 -m harness.cli optimize --seq $S --config "$cfg" --save-tuned --budget-s 100 --out $W/opt-s$S
done
cp harness/tuned/nvidia-h200-*.json $W/tuned/ 2>/dev/null
step plan 60 python3 bench/triton_attention/make_plan.py --gpu "NVIDIA H200" --out $W/h200-artifact.yaml
cat $W/h200-artifact.yaml
} 2>&1 | tee "$OUT/log-b1.txt"
pack
