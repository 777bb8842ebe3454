"""Compile the search space in parallel before measuring it (GPU only).

Triton compiles one kernel per process at a time, about 1-3 s each on the H100 machine's CPUs:
serially that would eat most of a 120 s budget. Worker processes fill Triton's on-disk cache;
the measuring process then only loads each kernel.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, Optional

from harness.optimize.halving import Log
from harness.optimize.plans import Clock
from harness.records import CaseSpec


def compile_one(job: tuple[dict[str, Any], dict[str, Any]]) -> Optional[str]:
    """Worker process: launch one config on a one-head copy of the shape. None, or why it failed."""
    spec_fields, config = job
    try:
        import torch

        from harness.workloads import triton_attention as ta

        spec = CaseSpec(**{**spec_fields, "batch": 1, "heads": 1, "config": config})
        q, k, v = ta.WORKLOAD.make_inputs(spec, 0)
        ta.attention(q, k, v, causal=spec.causal, config=config)
        torch.cuda.synchronize()
        return None
    except Exception as exc:  # noqa: BLE001 - a config that does not compile is a result, not a crash
        msg = str(exc).strip().splitlines()
        return f"compile failed: {type(exc).__name__}: {msg[0][:200] if msg else ''}"


def precompile(shape: CaseSpec, space: list[dict[str, Any]], deadline_s: float, clock: Clock, log: Log,
               workers: Optional[int] = None) -> dict[int, str]:
    """Returns {index in space: why it failed}. Stops at the deadline; whatever is not compiled
    by then is compiled on first use instead."""
    import multiprocessing as mp

    workers = workers or max(1, min(len(space), (os.cpu_count() or 2) - 2, 16))
    fields = {k: v for k, v in asdict(shape).items() if k != "config"}
    fields.update(workload="triton_attention", backend="triton")
    failed: dict[int, str] = {}
    t0 = clock.spent()
    # spawn, not fork: a forked child would inherit this process's CUDA context, which CUDA forbids.
    pool = mp.get_context("spawn").Pool(workers)
    try:
        for i, err in enumerate(pool.imap(compile_one, [(fields, c) for c in space])):
            if err:
                failed[i] = err
            if clock.spent() > deadline_s:
                log(f"precompile stopped at the deadline after {i + 1} of {len(space)} configs")
                break
    finally:
        pool.terminate()
        pool.join()
    log(f"precompiled {len(space)} configs on {workers} processes in {clock.spent() - t0:.1f} s, {len(failed)} failed")
    return failed

