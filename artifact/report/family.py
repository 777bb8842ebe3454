"""A family of cases (one workload, shape but S, dtype, cache and device: the rows of one table and
the lines of one plot) and the peaks its shares are measured against."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from artifact.reference import Peak, Reference
from artifact.results.folder import ResultSet
from artifact.textfmt import env_hardware
from harness.records import CaseSpec


def family(spec: CaseSpec) -> tuple:
    """Cases that differ only in backend (of any workload: a candidate kernel stands beside the
    library backends it competes with) and S: one plot, one table block."""
    return (spec.batch, spec.heads, spec.head_dim, spec.dtype, spec.causal, spec.cache, spec.device)



def family_name(key: tuple) -> str:
    b, h, d, dtype, causal, cache, device = key
    return f"attention B={b} H={h} D={d} {dtype}{' causal' if causal else ''} {cache} L2, {device}"



def family_slug(key: tuple) -> str:
    return re.sub(r"[^a-z0-9]+", "-", family_name(key).lower()).strip("-")



@dataclass
class Peaks:
    tflops: Optional[Peak]
    gbps: Optional[Peak]
    why_missing: str = ""



def peaks_for(results: ResultSet, reference: Optional[Reference], dtype: str) -> Peaks:
    """The card's ceilings measured in the same run (ceilings.json) when there are any; else the
    reference's measured peaks, only when the results ran on the reference's hardware."""
    ceil = results.ceilings
    if ceil is not None:
        mm, bw = ceil.get("matmul_tflops"), ceil.bandwidth()
        t = g = None
        why = []
        if mm is not None and mm.dtype == dtype:
            t = Peak("tflops", mm.value, mm.unit, f"measured in this run: {mm.what}", mm.dtype)
        elif mm is not None:
            why.append(f"the run's matmul ceiling is {mm.dtype}, these cases are {dtype}")
        else:
            why.append("the run measured no matmul ceiling" + (f" ({ceil.unavailable['matmul_tflops']})"
                                                              if "matmul_tflops" in ceil.unavailable else ""))
        if bw is not None:
            g = Peak("gbps", bw.value, bw.unit, f"measured in this run: {bw.what}")
        else:
            why.append("the run measured no copy ceiling")
        return Peaks(t, g, "; ".join(why))
    if reference is None:
        return Peaks(None, None, "no reference file given (--reference) to take measured peaks from")
    if not reference.hardware.matches(results.env):
        return Peaks(None, None, f"the reference's peaks were measured on {reference.hardware.describe()}, not on {env_hardware(results.env)}")
    t, g = reference.hardware.peak("tflops", dtype), reference.hardware.peak("gbps")
    gap = "" if t and g else f"the reference lists no measured {'TFLOP/s' if not t else 'GB/s'} peak for {dtype}"
    return Peaks(t, g, gap)

