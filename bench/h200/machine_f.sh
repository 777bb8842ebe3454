#!/usr/bin/env bash
# Machine F (nvidia-h200, one GPU): the sharded path of issue 13 on a GPU. The H200 plan split in
# two shards that share the one GPU (one after another, as `artifact run` does without a --gpus
# list), then `artifact check` of the sharded folder: the shards merged into one verdict against
# h200.yaml. A multi-GPU host was never lent; this is the most of issue 13 one GPU can run.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=.
W=/tmp/f; mkdir -p $W
pack() { tar czf "$OUT/f.tgz" -C /tmp f 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
nvidia-smi -L
step shards 200 /usr/bin/time -f "%e s wall" python3 -m artifact.cli run --runtime native --shards 2 \
    --plan harness/plans/h200-artifact.yaml --out $W/shards-F1
step check 60 python3 -m artifact.cli check $W/shards-F1
} 2>&1 | tee "$OUT/log-f.txt"
pack
