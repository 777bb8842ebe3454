"""Device-time measurement of one repetition of a kernel.

GPU, warm cache: the kernel is captured `inner` times into a CUDA graph and each sample is one
replay bracketed by CUDA events, divided by `inner`. Host overhead (Python, the SDPA dispatcher,
the backend-selection context) happens at capture and is not in the numbers: on an H100 at
B=32,H=8,S=128,D=64 fp16, one eager call between events read 0.088 ms, graph replay 0.0077 ms.
If capture fails, samples are `inner` eager launches between events and the record says so.

GPU, cold cache: each sample writes a buffer several times the L2 size, then times one replay;
the flush is queued ahead of the start event so the GPU never idles waiting for the host.

CPU: perf_counter_ns around `inner` calls.

Sampling is adaptive: after every `cfg.batch` samples the distribution-free 95% CI of the median is
computed; the repetition stops once its half-width is within `cfg.target_rel_ci` of the median
(and at least `cfg.min_samples` were taken over at least `cfg.min_time_s`), or at `cfg.max_time_s` / `cfg.max_samples`, recorded
as not converged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from harness.plan import TimingConfig
from harness.records import Repetition
from harness.stats import median_ci_distribution_free, median_ci_min_samples

MAX_INNER = 4096  # bounds graph size (and capture time) for the tiniest kernels


# What an NVML probe returns after a batch: clock-event reasons, SM clock MHz, memory clock MHz.
ProbeReading = tuple[list[str], Optional[int], Optional[int]]


@dataclass
class RepetitionTiming:
    repetition: Repetition
    method: str
    fallback_reason: str | None
    warmup_calls: int
    throttle_reasons: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)
    clock_readings: list[tuple[Optional[int], Optional[int]]] = field(default_factory=list)
    setup_s: float = 0.0  # warm-up, calibration and graph capture before the first sample


def rel_halfwidth(samples: list[float], level: float = 0.95) -> float | None:
    if len(samples) < median_ci_min_samples(level):
        return None
    x = np.asarray(samples)
    lo, hi = median_ci_distribution_free(x, level)
    mid = float(np.median(x))
    if mid <= 0:
        return None
    return max(mid - lo, hi - mid) / mid


class _Stopper:
    def __init__(self, cfg: TimingConfig):
        self.cfg = cfg
        self.t0 = time.perf_counter()
        self.reason = ""
        self.rel: float | None = None

    def done(self, samples: list[float]) -> bool:
        cfg = self.cfg
        self.rel = rel_halfwidth(samples)
        elapsed = time.perf_counter() - self.t0
        if (len(samples) >= cfg.min_samples and elapsed >= cfg.min_time_s
                and self.rel is not None and self.rel <= cfg.target_rel_ci):
            self.reason = "converged"
        elif len(samples) >= cfg.max_samples:
            # min_time_s only delays the stop; precision reached by the cap is convergence.
            met = self.rel is not None and self.rel <= cfg.target_rel_ci
            self.reason = "converged" if met else "max_samples"
        elif elapsed >= cfg.max_time_s and (len(samples) >= cfg.min_samples or elapsed >= 3 * cfg.max_time_s):
            # A one-off stall (first-use initialisation) must not end a repetition with a
            # handful of samples; only a persistently slow kernel reaches 3x the cap.
            self.reason = "max_time"
        else:
            return False
        return True

    def repetition(self, samples: list[float], inner: int) -> Repetition:
        return Repetition(
            samples_ms=samples,
            inner_iters=inner,
            converged=self.reason == "converged",
            stop_reason=self.reason,
            rel_halfwidth=self.rel,
            wall_s=round(time.perf_counter() - self.t0, 4),
        )


# --------------------------------------------------------------------------- CPU
def measure_cpu(fn: Callable[[], Any], cfg: TimingConfig) -> RepetitionTiming:
    # Warm-up until warmup_ms have passed (and at least 3 calls): first-call allocations and
    # lazy initialisation stay out of the samples.
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or (time.perf_counter() - t0) * 1e3 < cfg.warmup_ms:
        fn()
        calls += 1
    est_ms = max((time.perf_counter() - t0) * 1e3 / calls, 1e-6)
    inner = int(min(MAX_INNER, max(1, round(cfg.sample_target_ms / est_ms))))
    setup_s = time.perf_counter() - t0
    stop = _Stopper(cfg)
    samples: list[float] = []
    while True:
        for _ in range(cfg.batch):
            s = time.perf_counter_ns()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter_ns() - s) / 1e6 / inner)
        if stop.done(samples):
            break
    return RepetitionTiming(stop.repetition(samples, inner), "perf_counter", None, calls, setup_s=setup_s)


# --------------------------------------------------------------------------- CUDA
def _warmup_cuda(fn: Callable[[], Any], cfg: TimingConfig) -> tuple[int, float]:
    import torch

    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    calls, elapsed = 1, 0.0
    while calls < 4 or elapsed < cfg.warmup_ms:
        start.record()
        n = max(1, calls)  # doubling batches reach warmup_ms quickly even for tiny kernels
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        batch_ms = start.elapsed_time(end)
        elapsed += batch_ms
        calls += n
        est = batch_ms / n
    return calls, est


def capture_graph(fn: Callable[[], Any], inner: int):
    import torch

    graph = torch.cuda.CUDAGraph()
    # Capture on a side stream (torch.cuda.graph does this); outputs are dropped at once so
    # the graph's private pool reuses one output buffer for all `inner` calls.
    with torch.cuda.graph(graph):
        for _ in range(inner):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    return graph


def measure_cuda(
    fn: Callable[[], Any],
    cfg: TimingConfig,
    *,
    cache: str = "warm",
    l2_bytes: int | None = None,
    probe: Callable[[], ProbeReading] | None = None,
) -> RepetitionTiming:
    import torch

    t_setup = time.perf_counter()
    warmup_calls, est_ms = _warmup_cuda(fn, cfg)
    cold = cache == "cold"
    inner = 1 if cold else int(min(MAX_INNER, max(1, round(cfg.sample_target_ms / max(est_ms, 1e-4)))))
    method, fallback = "cuda_graph", None
    try:
        graph = capture_graph(fn, inner)
        if not cold:
            # Eager launches of a ~10 us kernel are host-bound, so the warm-up estimate can be
            # 10x too long; re-derive `inner` from a replay of the graph itself.
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            per_call = max(start.elapsed_time(end) / inner, 1e-5)
            want = int(min(MAX_INNER, max(1, round(cfg.sample_target_ms / per_call))))
            if want > 1.5 * inner:
                del graph
                inner = want
                graph = capture_graph(fn, inner)
        run = graph.replay
    except Exception as exc:  # capture refused (e.g. a host sync inside the kernel wrapper)
        torch.cuda.synchronize()
        method = "cuda_events"
        fallback = f"CUDA graph capture failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); timed {inner} back-to-back launches per sample instead"

        def run() -> None:
            for _ in range(inner):
                fn()

    flush = None
    if cold:
        # Several times the L2 so no line of the inputs survives; int32 fill is one write pass.
        n = max(4 * (l2_bytes or 64 << 20), 256 << 20) // 4
        flush = torch.empty(n, dtype=torch.int32, device="cuda")

    throttles: set[str] = set()
    flags: set[str] = set()
    clocks: list[tuple[Optional[int], Optional[int]]] = []
    setup_s = time.perf_counter() - t_setup
    stop = _Stopper(cfg)
    samples: list[float] = []
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(cfg.batch)]
    while True:
        if flush is None:
            # After the last batch's synchronize the GPU is idle, so the first timed replay would
            # include the launch latency (seen on the H100: +3% on that sample). One untimed
            # replay keeps the GPU busy while the timed ones are queued behind it.
            run()
        host_s = 0.0
        for start, end in events:
            if flush is not None:
                flush.fill_(len(samples))
            start.record()
            t = time.perf_counter()
            run()
            host_s += time.perf_counter() - t
            end.record()
        events[-1][1].synchronize()
        batch = [s.elapsed_time(e) for s, e in events]
        if method == "cuda_events" and host_s * 1e3 >= 0.9 * sum(batch):
            # Enqueuing took as long as the GPU ran: it waited on the host between launches, so
            # these "device" times include launch overhead (on the H100, eager flash at S=128
            # read several times its graph-replay time; bench/h100/modes/).
            flags.add("host_bound")
        samples.extend(x / inner for x in batch)
        if probe is not None:
            # Read right after the batch's last event: the clocks have not had time to fall back
            # from their loaded state (they take milliseconds, the read microseconds).
            reasons, sm_mhz, mem_mhz = probe()
            throttles.update(reasons)
            clocks.append((sm_mhz, mem_mhz))
        if stop.done(samples):
            break
    del flush
    return RepetitionTiming(stop.repetition(samples, inner), method, fallback, warmup_calls, throttles, flags, clocks,
                            setup_s)
