"""The device's own ceilings, measured in the same run as the cases: ceilings.json.

"Share of peak" then needs no peaks file from another machine, and a claim such as "cudnn at
S=4096 reaches at least X of this card's measured matmul rate" travels across GPU models of one
family while still catching a slowdown of every case at once (the ceilings do not slow down with
the kernels under test).

Two numbers, each timed like a case (CUDA-graph replays between events, adaptive stopping):
- matmul: an N x N x N product of random operands into a preallocated output (fp16 on a GPU,
  float32 on the CPU), 2 N^3 FLOP per call;
- copy: a device-to-device copy of a random buffer by an elementwise kernel (dst = src + 1.0),
  counting bytes read plus bytes written; and `memcpy_gbps`, the same bytes through
  `Tensor.copy_` (cudaMemcpyAsync, which a CUDA graph turns into a memcpy node: on the H200 it
  moved 2.76 TB/s where SM kernels move about 4.2). The bandwidth roof is the larger of the two.
Seconds, not minutes: the sizes are large enough to fill the chip and the timing stops at 1% CI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Optional

from harness.plan import TimingConfig
from harness.records import Ceiling, CeilingsRecord
from harness.storage import utc_now

# Sizes: on a GPU a product that fills every SM for milliseconds (8192^3: about 1.6 ms on an
# H100/H200) and a copy far beyond L2 (1 GiB each way); on the CPU, sizes that one thread does
# in about a millisecond a call, so the CPU smoke run stays fast.
GPU_MATMUL_N, GPU_COPY_BYTES = 8192, 1 << 30
CPU_MATMUL_N, CPU_COPY_BYTES = 384, 64 << 20

TIMING = TimingConfig(target_rel_ci=0.01, min_samples=20, max_samples=1000, min_time_s=0.1, max_time_s=1.0,
                      warmup_ms=150.0, sample_target_ms=2.0)
CPU_TIMING = replace(TIMING, min_samples=10, min_time_s=0.02, max_time_s=0.3, warmup_ms=10.0)


def _measure(fn: Callable[[], Any], device: str, cfg: TimingConfig, watch: Any = None) -> tuple[float, float, float, int]:
    from harness import stats
    from harness.timing import measure_cpu, measure_cuda

    rep = (measure_cuda(fn, cfg, watch=watch) if device == "cuda" else measure_cpu(fn, cfg)).repetition
    s = stats.summarize_repetitions([rep.samples_ms], [rep.converged], seed=cfg.seed)
    return s.median_ms, s.ci_low_ms, s.ci_high_ms, s.n_samples


def _ceiling(metric: str, unit: str, dtype: Optional[str], what: str, work: float, scale: float,
             timed: tuple[float, float, float, int]) -> Ceiling:
    median, lo, hi, n = timed
    return Ceiling(metric=metric, value=float(f"{work / (median / 1e3) / scale:.4g}"), unit=unit, dtype=dtype, what=what,
                   median_ms=median, ci_low_ms=lo, ci_high_ms=hi, work=work, n_samples=n)


def measure(device: str, gpu_name: Optional[str] = None, *, seed: int = 1234, watch: Any = None) -> CeilingsRecord:
    """Both ceilings; one that cannot be measured is recorded under `unavailable`, never raised.
    `watch` (harness/machine/watch.py) sees the machine while they are timed: ceilings measured
    beside another process are recorded as such and used for nothing."""
    import torch

    record = CeilingsRecord(created_at=utc_now(), device=device, gpu_name=gpu_name, ceilings=[])
    cfg = replace(TIMING if device == "cuda" else CPU_TIMING, seed=seed)
    if watch is not None:
        watch.start()
    gen = torch.Generator(device=device).manual_seed(seed)
    if device == "cuda":
        n, dtype, copy_bytes = GPU_MATMUL_N, torch.float16, GPU_COPY_BYTES
    else:
        n, dtype, copy_bytes = CPU_MATMUL_N, torch.float32, CPU_COPY_BYTES
    dtype_name = str(dtype).replace("torch.", "")
    def matmul() -> Callable[[], Any]:
        a = torch.randn(n, n, generator=gen, device=device, dtype=dtype)
        b = torch.randn(n, n, generator=gen, device=device, dtype=dtype)
        c = torch.empty(n, n, device=device, dtype=dtype)
        return lambda: torch.mm(a, b, out=c)

    def copy(kernel: bool) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            src = torch.randn(copy_bytes // 4, generator=gen, device=device, dtype=torch.float32)
            dst = torch.empty_like(src)
            if kernel:
                return lambda: torch.add(src, 1.0, out=dst)
            return lambda: dst.copy_(src)
        return make

    mib = copy_bytes >> 20
    jobs = (("matmul_tflops", "TFLOP/s", dtype_name, f"torch.mm {n}x{n}x{n} {dtype_name}, random operands", 2.0 * n**3, 1e12, matmul),
            ("copy_gbps", "GB/s", None, f"elementwise copy (dst = src + 1) of {mib} MiB, bytes read + written",
             2.0 * copy_bytes, 1e9, copy(True)),
            ("memcpy_gbps", "GB/s", None, f"Tensor.copy_ of {mib} MiB, bytes read + written", 2.0 * copy_bytes, 1e9, copy(False)))
    for metric, unit, dt, what, work, scale, make in jobs:
        try:
            timed = _measure(make(), device, cfg, watch)  # the buffers live as long as the callable
            record.ceilings.append(_ceiling(metric, unit, dt, what, work, scale, timed))
        except (RuntimeError, ValueError) as exc:
            record.unavailable[metric] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if device == "cuda":
            torch.cuda.empty_cache()
    if watch is not None and device == "cuda":
        record.watch = watch.record()
    return record
