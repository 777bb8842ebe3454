#!/usr/bin/env bash
# Machine D (nvidia-h200, started after the reference was fixed, not in it): the reviewer's path
# exactly, `make reproduce` on a fresh clone-like tree (natively: no Docker there), then the GPU
# tests (the census under the lock matches the unlocked call for every backend and the
# candidate) and the independent fidelity check of the run reproduce made.
set -uo pipefail
export PYTHONUNBUFFERED=1
W=/tmp/d; mkdir -p $W
pack() { tar czf "$OUT/d.tgz" -C /tmp d 2>/dev/null; }
step() { local name=$1 t=$2; shift 2; echo "=== $name $(date -u +%T)"; timeout "$t" "$@"; echo "=== $name rc=$? $(date -u +%T)"; pack; }
{
step reproduce 420 /usr/bin/time -f "%e s wall" make reproduce STAMP=fresh-D1
if [ ! -f results/fresh-D1/verdict.json ]; then
    step reproduce-direct 300 env PYTHONPATH=. python3 -m artifact.cli reproduce --runtime native --out results/fresh-D1b
fi
cp -r results/fresh-D1* $W/ 2>/dev/null
du -sh .venv-reproduce 2>/dev/null
run=$(ls -d $W/fresh-D1* | head -n 1)
step gpu-tests 240 env PYTHONPATH=. python3 -m pytest -q -p no:cacheprovider tests/harness/test_census.py -k on_a_gpu
step fidelity-D1 200 env PYTHONPATH=. python3 bench/fidelity.py --results "$run" --out $W/fidelity-D1 --rounds 3
} 2>&1 | tee "$OUT/log-d.txt"
pack
