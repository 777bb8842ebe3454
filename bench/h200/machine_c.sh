#!/usr/bin/env bash
# Machine C (nvidia-h200, a separately started machine): two runs of harness/plans/h200-artifact.yaml
# and the independent fidelity check on the first. With machine B's two runs these are the runs
# artifact/references/h200.yaml is derived from.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
W=/tmp/c; mkdir -p $W
pack() { tar czf "$OUT/c.tgz" -C /tmp c 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
step run-C1 200 /usr/bin/time -f "%e s wall" python3 -m harness.cli bench --plan harness/plans/h200-artifact.yaml --out $W/run-C1 --no-progress
step run-C2 200 /usr/bin/time -f "%e s wall" python3 -m harness.cli bench --plan harness/plans/h200-artifact.yaml --out $W/run-C2 --no-progress
step fidelity-C1 200 python3 bench/fidelity.py --results $W/run-C1 --out $W/fidelity-C1 --rounds 3
} 2>&1 | tee "$OUT/log-c.txt"
pack
