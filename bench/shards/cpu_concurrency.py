"""Does a second shard running at the same time move a case's times? (issue 13, on the CPU)

The same smoke case (math, S=256, one intra-op thread) is measured by `harness bench` alone, then
while a second `harness bench` process measures the whole smoke plan in a loop beside it, in
alternating rounds. The case's median per round, and the spread of the alone rounds (the noise),
go to DIR/concurrency.json; the verdict: the concurrent medians lie outside the alone rounds'
range by more than that range, or not.

    python3 bench/shards/cpu_concurrency.py --out bench/shards/cpu-<machine> [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASE = ["--device", "cpu", "--seq", "256", "--backends", "math", "--batch", "2", "--heads", "4", "--head-dim", "32",
        "--dtype", "float32", "--no-ceilings", "--no-census", "--no-correctness", "--no-progress"]
LOAD = ["--profile", "smoke", "--device", "cpu", "--no-ceilings", "--no-census", "--no-progress"]


def bench(args: list[str], out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "bench", *args, "--out", str(out)], env=env,
                          capture_output=True, text=True)


def median_of(out: Path) -> float:
    (case,) = [json.loads(p.read_text()) for p in (out / "cases").glob("*.json")]
    return case["timing"]["summary"]["median_ms"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    alone, together = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for r in range(args.rounds):
            bench(CASE, tmp / f"alone-{r}")
            alone.append(median_of(tmp / f"alone-{r}"))
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            load = subprocess.Popen(["bash", "-c", f"while true; do {sys.executable} -m harness.cli bench {' '.join(LOAD)} "
                                     f"--out {tmp}/load-$RANDOM >/dev/null 2>&1; done"], env=env, start_new_session=True)
            time.sleep(3)  # the other shard is measuring by now
            bench(CASE, tmp / f"together-{r}")
            os.killpg(load.pid, 15)
            load.wait()
            together.append(median_of(tmp / f"together-{r}"))
            print(f"round {r}: alone {alone[-1]:.4f} ms, beside another shard {together[-1]:.4f} ms", flush=True)
    lo, hi = min(alone), max(alone)
    noise = (hi - lo) / statistics.median(alone)
    shift = statistics.median(together) / statistics.median(alone) - 1
    outside = sum(1 for x in together if x < lo - (hi - lo) or x > hi + (hi - lo))
    doc = {"kind": "shard_concurrency", "device": "cpu", "cpu": platform.processor() or platform.machine(),
           "cpu_count": os.cpu_count(), "case": "sdpa math S=256 B=2 H=4 D=32 float32, one thread",
           "alone_ms": alone, "beside_another_shard_ms": together, "alone_noise": noise, "median_shift": shift,
           "rounds_outside_noise": outside,
           "distorts": outside > args.rounds // 2 and abs(shift) > noise,
           "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concurrency.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("alone_noise", "median_shift", "rounds_outside_noise", "distorts")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
