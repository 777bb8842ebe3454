"""Tuned configs for the H200 shapes outside the artifact plan (causal, bf16, D=128 at S=512 and
4096), from the landscape of run 5 (bench/triton_attention/run5-h200-sweep/tune.json): the fastest
config of each group and shape, saved as harness/tuned/ records so that `triton_attention` uses
it on an H200 instead of the default. Honest about what it is: one do_bench_cudagraph round per
config, no confidence interval (the record's verdict and notes say so).

    python3 bench/triton_attention/save_group_tuned.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from harness import tuned  # noqa: E402
from harness.workloads import triton_attention  # noqa: E402,F401 - only for TUNABLES below
from harness.workloads.triton_attention import TUNABLES  # noqa: E402

SOURCE = HERE / "run5-h200-sweep" / "tune.json"


def main() -> int:
    data = json.loads(SOURCE.read_text())
    meta, rows = data["meta"], [r for r in data["rows"] if r["phase"].startswith("G-")]
    written = []
    for group in sorted({r["phase"] for r in rows}):
        for seq in sorted({r["seq"] for r in rows if r["phase"] == group}):
            here = [r for r in rows if r["phase"] == group and r["seq"] == seq and r["status"] == "ok"]
            tri = [r for r in here if r["workload"] == "triton_attention"]
            lib = [r for r in here if r["workload"] == "sdpa"]
            if not tri or not lib:
                continue
            best, base = min(tri, key=lambda r: r["median_ms"]), min(lib, key=lambda r: r["median_ms"])
            # Run 5's kernel had one more tunable (the hand-pipelined loop, off in these configs).
            config = {k: v for k, v in best["config"].items() if k in TUNABLES}
            ratio = best["median_ms"] / base["median_ms"]
            record = tuned.TunedConfig(
                gpu_name=meta["device"], compute_capability=meta["capability"], batch=best["batch"], heads=best["heads"],
                seq=seq, head_dim=best["head_dim"], dtype=best["dtype"], causal=best["causal"], config=config,
                median_ms=best["median_ms"], baseline_backend=base["backend"], baseline_median_ms=base["median_ms"],
                ratio=ratio, ratio_ci_low=ratio, ratio_ci_high=ratio,
                verdict="landscape only: one do_bench_cudagraph round per config, no CI",
                configs_tried=len(tri), triton_version=meta["triton"], torch_version=meta["torch"],
                created_at=meta["started"], source=f"bench/triton_attention/save_group_tuned.py from {SOURCE.relative_to(HERE.parents[1])}",
                notes=[f"group {group[2:]}; relative error {best['rel_error']:.2e}; measure with `harness optimize --config` "
                       "for a CI before claiming anything"],
            )
            written.append(tuned.save(record))
    for p in written:
        print(f"wrote {p.relative_to(HERE.parents[1])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
