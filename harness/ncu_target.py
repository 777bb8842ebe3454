"""The process Nsight Compute profiles: one case's call, once, between cudaProfilerStart/Stop.

`harness profile` starts `ncu --profile-from-start off ... python -m harness.ncu_target --spec
JSON`, so ncu captures exactly one call of the case (every kernel it launches) after warm-up
calls have compiled and cached everything, under the same lock as a timed run.

    python -m harness.ncu_target --spec '{"workload": "sdpa", "backend": "cudnn", ...}' [--seed N]
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.envlock import prepare_process_env

prepare_process_env()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", required=True, help="the CaseSpec as JSON")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    from harness import envlock, workloads
    from harness.records import CaseSpec

    spec = CaseSpec(**json.loads(args.spec))
    envlock.lock(args.seed)
    w = workloads.get(spec.workload)
    fn = w.make_fn(spec, w.make_inputs(spec, args.seed))
    for _ in range(max(1, args.warmup)):
        fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
