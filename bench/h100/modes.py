"""Exercise the timing modes the sweeps do not use, on a GPU: cold L2 (flush before each sample),
the eager fallback when CUDA-graph capture fails, and K=3 independent repetitions.

    PYTHONPATH=. python3 bench/h100/modes.py --out DIR      -> DIR/modes.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from harness.envlock import prepare_process_env

prepare_process_env()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import torch

    from harness import envlock, storage, timing
    from harness.plan import TimingConfig
    from harness.records import CaseSpec
    from harness.runner import run_case

    envlock.lock(1234)
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    cfg = TimingConfig()
    rows = []

    def record(label, r):
        s = r.timing.summary if r.timing else None
        rows.append({"label": label, "case_id": r.case.case_id, "status": r.status, "reason": r.reason,
                     "method": r.timing.method if r.timing else None,
                     "fallback_reason": r.timing.fallback_reason if r.timing else None,
                     "median_ms": s.median_ms if s else None, "ci": [s.ci_low_ms, s.ci_high_ms] if s else None,
                     "n_repetitions": s.n_repetitions if s else None, "converged": s.converged if s else None,
                     "flags": s.flags if s else None,
                     "rep_medians": [sorted(x.samples_ms)[len(x.samples_ms) // 2] for x in r.timing.repetitions] if r.timing else None})
        print(f"{label:<10} {r.case.backend:>6} S={r.case.seq:<5} {r.status} {r.timing.method if r.timing else ''} "
              f"median {s.median_ms if s else float('nan'):.5f} ms CI [{s.ci_low_ms if s else 0:.5f}, {s.ci_high_ms if s else 0:.5f}] "
              f"flags {s.flags if s else []}", flush=True)
        storage.write_case(args.out / label, r)

    for seq in (512, 4096):
        for backend in ("flash", "cudnn"):
            warm = CaseSpec("sdpa", backend, 32, 8, seq, 64)
            record("warm", run_case(warm, cfg, l2_bytes=l2))
            record("cold", run_case(replace(warm, cache="cold"), cfg, l2_bytes=l2))
    record("repeats3", run_case(CaseSpec("sdpa", "cudnn", 32, 8, 512, 64), replace(cfg, repeats=3), l2_bytes=l2))

    real_capture = timing.capture_graph

    def refuse(fn, inner):
        raise RuntimeError("capture refused (planted by bench/h100/modes.py)")

    timing.capture_graph = refuse
    try:
        record("eager", run_case(CaseSpec("sdpa", "flash", 32, 8, 4096, 64), cfg, l2_bytes=l2))
        record("eager", run_case(CaseSpec("sdpa", "flash", 32, 8, 128, 64), cfg, l2_bytes=l2))
    finally:
        timing.capture_graph = real_capture
    doc = {"schema_version": 1, "kind": "timing_modes", "gpu": torch.cuda.get_device_name(0), "created_at": storage.utc_now(),
           "rows": rows}
    storage.atomic_write_text(args.out / "modes.json", json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
