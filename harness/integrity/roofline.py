"""The fastest a case can run on this GPU, from the run's own ceilings (torch-free).

A kernel must do its FLOPs and move its bytes. With the ceilings measured in the same run
(ceilings.json: cuBLAS fp16 matmul TFLOP/s, copy GB/s), a case's time cannot fall below
max(FLOPs / matmul roof, bytes / copy roof). Two allowances keep honest kernels clear of it:

- The measured roofs are what cuBLAS and a copy kernel reach, not the datasheet's: on the H200 the
  matmul ceiling reads 656-679 TFLOP/s against a dense fp16 peak of 989. A specialised kernel may
  beat the measured matmul roof, never the datasheet, so a case is impossible only when it is
  faster than the roofline by more than SLACK (1.5: 1.5 x 679 = 1019 TFLOP/s, above the
  datasheet). Each roof is taken at its CI's fast end: the ceilings' own uncertainty counts for the
  kernel.
- With a warm cache, bytes that fit in L2 need not come from DRAM: only the bytes beyond the L2's
  size are held to the copy roof. With a cold cache all of them are. Where the cache's size is
  not known (the CPU), a warm case is held to the compute roof alone.

On the committed H200 runs the fastest honest case (cudnn, S=4096) ran at 1.47 x the roofline time;
the bound trips at 0.67 x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from harness.records import CeilingsRecord

SLACK = 1.5
# A CPU's ceilings move with the load on the machine and its thread count (a busy 2-core CI
# machine measured them at half speed): there, only a case 10x beyond them is called impossible,
# which still catches a call that does no work (thousands of times beyond).
CPU_SLACK = 10.0


def slack(device: str) -> float:
    return SLACK if device == "cuda" else CPU_SLACK


@dataclass(frozen=True)
class RooflineBound:
    min_ms: float  # the roofline time: max(compute time, memory time) at the fast ends of the ceilings' CIs
    compute_ms: Optional[float]
    memory_ms: Optional[float]
    dram_bytes: float  # bytes held to the copy roof (warm cache: only those beyond L2)
    limit_ms: float  # min_ms / slack: a median below this is impossible
    slack: float = SLACK

    def describe(self) -> str:
        parts = []
        if self.compute_ms is not None:
            parts.append(f"compute {self.compute_ms:.4g} ms")
        if self.memory_ms is not None:
            parts.append(f"memory {self.memory_ms:.4g} ms for {self.dram_bytes / 1e6:.4g} MB")
        return f"roofline {self.min_ms:.4g} ms ({', '.join(parts)})"


def _fast_end(work: float, ci_low_ms: float, median_ms: float) -> Optional[float]:
    """Work per second at the fast end of the ceiling's CI (the largest roof the data allow)."""
    ms = ci_low_ms if ci_low_ms > 0 else median_ms
    return work / (ms / 1e3) if ms > 0 and work > 0 else None


def contended(ceilings: Optional[CeilingsRecord]) -> bool:
    """Ceilings measured while another process was on the GPU (their watch says so): they are
    the contention's, not the card's, and hold nothing to them."""
    return ceilings is not None and ceilings.watch is not None and ceilings.watch.shared


def bound(flops: float, nbytes: float, ceilings: Optional[CeilingsRecord], *, cache: str,
          l2_bytes: Optional[int], device: str = "cuda") -> Optional[RooflineBound]:
    """The roofline of one case, or None when the run has no ceiling to hold it to (none measured,
    or measured while another process was on the GPU: contended ceilings are not the card's)."""
    if ceilings is None or contended(ceilings):
        return None
    compute_ms = memory_ms = None
    mm = ceilings.get("matmul_tflops")
    if mm is not None and flops > 0:
        rate = _fast_end(mm.work, mm.ci_low_ms, mm.median_ms)
        if rate:
            compute_ms = flops / rate * 1e3
    if cache == "cold":
        dram = float(nbytes)
    elif l2_bytes:
        dram = max(0.0, float(nbytes) - float(l2_bytes))
    else:
        # A warm cache of unknown size (a CPU: L2 and L3 vary by model) may hold every byte.
        dram = 0.0
    bw = ceilings.bandwidth()
    if bw is not None and dram > 0:
        rate = _fast_end(bw.work, bw.ci_low_ms, bw.median_ms)
        if rate:
            memory_ms = dram / rate * 1e3
    known = [t for t in (compute_ms, memory_ms) if t is not None]
    if not known:
        return None
    best = max(known)
    return RooflineBound(min_ms=best, compute_ms=compute_ms, memory_ms=memory_ms, dram_bytes=dram,
                         limit_ms=best / slack(device), slack=slack(device))


def impossible(median_ms: float, b: RooflineBound) -> Optional[str]:
    """The reason a median is faster than this GPU can do the work, or None."""
    if median_ms >= b.limit_ms:
        return None
    return (f"faster than this GPU can do the work: median {median_ms:.4g} ms is {b.min_ms / median_ms:.3g}x below the "
            f"{b.describe()} from this run's ceilings; the bound allows {b.slack:g}x")
