"""Cross-check the harness's medians against triton.testing.do_bench_cudagraph, case by case,
back to back in one process (issue 2's acceptance test). Run on a GPU machine:

    PYTHONPATH=. python3 bench/gpu_crosscheck.py --out DIR [--rounds 3]

For each case of the full profile, alternately: the harness's run_case, then do_bench_cudagraph
(median of its replays), `rounds` times each, so the card's own round-to-round noise is visible
next to the harness/triton ratio. Writes DIR/crosscheck.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from harness.envlock import prepare_process_env

prepare_process_env()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seqs", default="128,512,1024,2048,4096")
    args = ap.parse_args()

    import torch
    import triton.testing

    from harness import envlock, plan, storage, workloads
    from harness.nvml import Nvml
    from harness.runner import run_case

    settings, failures = envlock.lock(1234)
    seqs = {int(s) for s in args.seqs.split(",")}
    cases = [c for c in plan.from_profile("full", "cuda").cases if c.seq in seqs]
    cfg = plan.TimingConfig()
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    nvml = Nvml(0)
    rows = []
    t0 = time.perf_counter()
    for spec in cases:
        w = workloads.get(spec.workload)
        harness_ms, triton_ms, statuses = [], [], set()
        for r in range(args.rounds):
            res = run_case(spec, cfg, check_correctness_first=(r == 0), l2_bytes=l2, nvml=nvml)
            statuses.add(res.status)
            if res.status != "ok":
                break
            harness_ms.append(res.timing.summary.median_ms)
            inputs = w.make_inputs(spec, 99 + r)
            fn = w.make_fn(spec, inputs)
            triton_ms.append(float(triton.testing.do_bench_cudagraph(fn, rep=100, return_mode="median")))
            del fn, inputs
            torch.cuda.empty_cache()
        if not harness_ms:
            rows.append({"case_id": spec.case_id, "status": sorted(statuses), "reason": res.reason})
            continue
        h, t = statistics.median(harness_ms), statistics.median(triton_ms)
        rows.append({
            "case_id": spec.case_id, "backend": spec.backend, "seq": spec.seq,
            "harness_ms": harness_ms, "triton_ms": triton_ms,
            "harness_median_ms": h, "triton_median_ms": t, "ratio": h / t,
            # the card's own noise: spread of each method across rounds, relative to its median
            "harness_round_spread": (max(harness_ms) - min(harness_ms)) / h,
            "triton_round_spread": (max(triton_ms) - min(triton_ms)) / t,
        })
        print(f"{spec.backend:>9} S={spec.seq:<5} harness {h:.5f} ms  triton {t:.5f} ms  ratio {h / t:.4f}  "
              f"spread h {rows[-1]['harness_round_spread']:.2%} t {rows[-1]['triton_round_spread']:.2%}", flush=True)
    doc = {
        "schema_version": 1, "kind": "crosscheck", "created_at": storage.utc_now(),
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "triton": triton.__version__,
        "rounds": args.rounds, "wall_s": time.perf_counter() - t0, "lock": settings, "lock_failures": failures,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    storage.atomic_write_text(args.out / "crosscheck.json", json.dumps(doc, indent=2) + "\n")
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    if ratios:
        print(f"ratio harness/triton: min {min(ratios):.4f} max {max(ratios):.4f} over {len(ratios)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
