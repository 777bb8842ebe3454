#!/usr/bin/env bash
# Call A on the device tool's nvidia-h200 (issue 8/9/11 exploration): the machine's software, the
# shipped H100 artifact plan with the fixed lock (census, ceilings, clocks), the independent
# fidelity check on it, the same with the fill on (must fail), and an ncu probe.
# Everything lands in /tmp/explore, re-packed into $OUT/explore.tgz after every step so a run cut
# off by the time limit still returns what it finished.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
W=/tmp/explore; mkdir -p $W
pack() { tar czf "$OUT/explore.tgz" -C /tmp explore 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
step info 60 bash -c "python3 --version; nvidia-smi; python3 -m pip list > $W/pip-list.txt 2>&1; which ncu; ncu --version; nproc;
  python3 -c 'import torch, triton; print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), triton.__version__)'"
step plan 240 /usr/bin/time -f "%e s wall" python3 -m harness.cli bench --plan harness/plans/h100-artifact.yaml --out $W/run-A1 --no-progress
step fidelity 200 python3 bench/fidelity.py --results $W/run-A1 --out $W/fidelity-A1 --rounds 3
step fillrun 200 /usr/bin/time -f "%e s wall" python3 bench/h200/with_fill.py bench --profile full --out $W/fill-A1 --no-progress
step fidelity-fill 150 python3 bench/fidelity.py --results $W/fill-A1 --out $W/fidelity-fill-A1 --rounds 2
step ncu 150 bash bench/h200/ncu_probe.sh $W/ncu
} 2>&1 | tee "$OUT/log.txt"
