"""The baseline: every SDPA backend measured at the shape; the fastest that passes correctness."""

from __future__ import annotations

from dataclasses import replace

from harness.optimize.halving import Log, Measure
from harness.optimize.records import BaselineRecord, median_ms
from harness.plan import TimingConfig
from harness.records import CaseSpec
from harness.workloads import SDPA_BACKENDS

SELECTION = "lowest median of the backends that passed correctness (selection timing)"


def select_baseline(shape: CaseSpec, timing: TimingConfig, measure: Measure, log: Log) -> BaselineRecord:
    results = []
    for i, backend in enumerate(SDPA_BACKENDS):
        spec = replace(shape, workload="sdpa", backend=backend, config=None)
        r = measure(spec, replace(timing, seed=timing.seed + 101 * (i + 1)))
        results.append(r)
        log(f"baseline {backend:9s} {r.status:7s} " + (f"{median_ms(r):.4f} ms" if r.status == "ok" else (r.reason or "")))
    ok = [r for r in results if r.status == "ok"]
    best = min(ok, key=median_ms) if ok else None
    return BaselineRecord(
        shape_key=shape.shape_key,
        best_backend=best.case.backend if best else None,
        best_median_ms=median_ms(best) if best else None,
        selection=SELECTION,
        results=results,
    )
