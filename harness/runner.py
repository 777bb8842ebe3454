"""Run one case end to end: fit check, correctness, memory, timing, throughput -> CaseResult.

A case that cannot run here is SKIPPED with the reason; one that breaks (OOM, a kernel error) is
FAILED with the reason. Neither stops the sweep.
"""

from __future__ import annotations

import gc
import math
import warnings
from pathlib import Path
from typing import Any

from harness import __version__, envlock, stats, workloads
from harness.nvml import BENIGN_REASONS, Nvml
from harness.plan import TimingConfig
from harness.records import CaseResult, CaseSpec, ClockStats, Correctness, Memory, Throughput, Timing
from harness.storage import utc_now
from harness.timing import RepetitionTiming, measure_cpu, measure_cuda

# Leave headroom for the allocator's rounding and the CUDA context.
_FIT_FRACTION = 0.9


class CaseSkipped(Exception):
    pass


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def _host_available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _first_call(fn) -> Any:
    """Run the kernel once; an SDPA backend that refuses the shape becomes a SKIP with torch's why."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return fn()
        except RuntimeError as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "No available kernel" in msg or "not supported" in msg.lower():
                why = "; ".join(str(w.message).splitlines()[0] for w in caught if "kernel not used" in str(w.message).lower() or "because" in str(w.message))
                raise CaseSkipped(f"backend cannot run this case: {msg}" + (f" ({why})" if why else "")) from None
            raise


def check_correctness(workload, spec: CaseSpec, seed: int) -> Correctness:
    import torch

    inputs = workload.make_inputs(spec, seed)
    fn = workload.make_fn(spec, inputs)
    # Outputs NaN-poisoned here (and only here): an element the kernel never wrote fails.
    with envlock.poisoned():
        out = _first_call(fn)
        again = fn()
    bitwise = bool(torch.equal(out, again))
    ref = workload.reference(spec, inputs)
    diff = torch.linalg.vector_norm((out.double() - ref).flatten())
    rel = float(diff / torch.linalg.vector_norm(ref.flatten()))
    tol = workload.tolerance(spec)
    # NaN or inf in the output (a NaN-poisoned element never written, an overflow) has no finite
    # error; JSON cannot hold NaN or inf, so the record says None and the case fails.
    finite = math.isfinite(rel)
    return Correctness(reference="float64", rel_error=rel if finite else None, tolerance=tol,
                       passed=bool(finite and rel <= tol), bitwise_repeat=bitwise)


def _measure_memory(workload, spec: CaseSpec, seed: int, predicted: int) -> Memory:
    import torch

    if spec.device != "cuda":
        return Memory(predicted_bytes=predicted, peak_allocated_bytes=None, peak_reserved_bytes=None,
                      free_bytes_before=_host_available_bytes(), total_bytes=None)
    _free_memory()
    free, total = torch.cuda.mem_get_info()
    # What earlier stages left allocated (library workspaces, e.g. cuBLAS's from the float64
    # reference) is not this case's footprint: counting it made the same case's peak differ by
    # ~28 MiB between two H100 sweeps with different histories.
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    inputs = workload.make_inputs(spec, seed)
    fn = workload.make_fn(spec, inputs)
    _first_call(fn)
    torch.cuda.synchronize()
    mem = Memory(predicted_bytes=predicted, peak_allocated_bytes=int(torch.cuda.max_memory_allocated() - before),
                 peak_reserved_bytes=int(torch.cuda.max_memory_reserved()), free_bytes_before=int(free),
                 total_bytes=int(total))
    return mem


def _fit_check(spec: CaseSpec, predicted: int) -> None:
    import torch

    free: int | None
    if spec.device == "cuda":
        free = int(torch.cuda.mem_get_info()[0])
    else:
        free = _host_available_bytes()
    if free is None:
        return
    if predicted > _FIT_FRACTION * free:
        raise CaseSkipped(
            f"predicted footprint {predicted / 2**30:.2f} GiB exceeds {_FIT_FRACTION:.0%} of free memory "
            f"({free / 2**30:.2f} GiB); use a smaller shape or a larger GPU"
        )


def _time_repetitions(workload, spec: CaseSpec, cfg: TimingConfig, l2_bytes: int | None, nvml: Nvml | None) -> list[RepetitionTiming]:
    out = []
    probe = nvml.sample if nvml is not None and nvml.ok else None
    for rep in range(cfg.repeats):
        # Each repetition gets fresh inputs, fresh allocations and a fresh graph, so the spread
        # between repetitions shows run-to-run variation, not only sample noise.
        _free_memory()
        inputs = workload.make_inputs(spec, cfg.seed + 7919 * (rep + 1))
        fn = workload.make_fn(spec, inputs)
        if spec.device == "cuda":
            out.append(measure_cuda(fn, cfg, cache=spec.cache, l2_bytes=l2_bytes, probe=probe))
        else:
            out.append(measure_cpu(fn, cfg))
        del fn, inputs
    return out


def clock_stats(readings: list[tuple[int | None, int | None]]) -> ClockStats | None:
    if not readings:
        return None
    import numpy as np

    def col(i: int) -> tuple[float | None, float | None, float | None]:
        vals = [v for v in (r[i] for r in readings) if v is not None]
        if not vals:
            return None, None, None
        return float(np.median(vals)), float(min(vals)), float(max(vals))

    sm, mem = col(0), col(1)
    return ClockStats(readings=len(readings), sm_mhz_median=sm[0], sm_mhz_min=sm[1], sm_mhz_max=sm[2],
                      mem_mhz_median=mem[0], mem_mhz_min=mem[1], mem_mhz_max=mem[2])


def _census(workload, spec: CaseSpec, seed: int, median_ms: float, result: CaseResult, nvml: Nvml | None) -> None:
    from harness import census

    def make_fn():
        return workload.make_fn(spec, workload.make_inputs(spec, seed))

    sm_clock = (lambda: nvml.clocks()[0]) if nvml is not None and nvml.ok else None
    try:
        result.census = census.take(make_fn, spec.device, median_ms, sm_clock=sm_clock)
    except census.CensusUnavailable as exc:
        result.unavailable["census"] = str(exc)
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        # The census explains a timing; its failure must not throw the timing away.
        msg = str(exc).splitlines()[0] if str(exc) else ""
        result.unavailable["census"] = f"census failed: {type(exc).__name__}: {msg}"
    if result.census is not None and not result.census.matches_unlocked and result.timing is not None:
        result.timing.summary.flags = sorted(set(result.timing.summary.flags) | {"census_lock_differs"})


def run_case(
    spec: CaseSpec,
    timing: TimingConfig,
    *,
    check_correctness_first: bool = True,
    l2_bytes: int | None = None,
    nvml: Nvml | None = None,
    census: bool = True,
) -> CaseResult:
    import time

    import torch

    started = utc_now()
    result = CaseResult(case=spec, status="ok", started_at=started, harness_version=__version__)
    mark = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        result.phases_s[name] = round(result.phases_s.get(name, 0.0) + now - mark[0], 4)
        mark[0] = now

    try:
        workload = workloads.get(spec.workload)
        reason = workload.check_supported(spec)
        if reason:
            raise CaseSkipped(reason)
        predicted = int(workload.predicted_bytes(spec))
        _fit_check(spec, predicted)
        if check_correctness_first:
            result.correctness = check_correctness(workload, spec, timing.seed)
            _free_memory()
            phase("correctness")
            if not result.correctness.passed:
                result.status = "failed"
                err = result.correctness.rel_error
                if err is None:
                    result.reason = "output is not finite (NaN or inf) against the float64 reference; not timed"
                    result.unavailable["correctness.rel_error"] = "the output held NaN or inf: no finite relative error"
                else:
                    result.reason = (f"relative error {err:.3g} against float64 exceeds tolerance "
                                     f"{result.correctness.tolerance:.3g}; not timed")
                return result
        result.memory = _measure_memory(workload, spec, timing.seed + 1, predicted)
        phase("memory")
        fill_in_force = envlock.fill_uninitialized()
        reps = _time_repetitions(workload, spec, timing, l2_bytes, nvml)
        setup = sum(r.setup_s for r in reps)
        phase("timing")
        result.phases_s["warmup"] = round(setup, 4)
        result.phases_s["sampling"] = round(result.phases_s.pop("timing") - setup, 4)
        summary = stats.summarize_repetitions(
            [r.repetition.samples_ms for r in reps], [r.repetition.converged for r in reps], seed=timing.seed
        )
        throttles = sorted(set().union(*(r.throttle_reasons for r in reps)) - BENIGN_REASONS)
        summary.flags = sorted(set(summary.flags).union(*(r.flags for r in reps)))
        result.timing = Timing(
            method=reps[0].method,
            fallback_reason=reps[0].fallback_reason,
            target_rel_ci=timing.target_rel_ci,
            warmup_calls=reps[0].warmup_calls,
            repetitions=[r.repetition for r in reps],
            summary=summary,
            throttle_reasons=throttles,
            clocks=clock_stats([c for r in reps for c in r.clock_readings]),
            fill_uninitialized_memory=fill_in_force,
            bootstrap_seed=timing.seed,
        )
        if result.timing.clocks is None:
            result.unavailable["timing.clocks"] = ("run on the CPU" if spec.device != "cuda"
                                                   else (nvml.error if nvml is not None and nvml.error else "NVML unavailable"))
        flops, nbytes = workload.flops(spec), workload.bytes_moved(spec)
        sec = summary.median_ms / 1e3
        result.throughput = Throughput(flops=flops, bytes=nbytes, tflops=flops / sec / 1e12, gbps=nbytes / sec / 1e9)
        if census:
            _census(workload, spec, timing.seed + 2, summary.median_ms, result, nvml)
            phase("census")
        else:
            result.unavailable["census"] = "not taken (census: false in the plan, or --no-census)"
    except CaseSkipped as exc:
        result.status, result.reason = "skipped", str(exc)
    except torch.cuda.OutOfMemoryError as exc:
        result.status = "failed"
        result.reason = f"out of memory: {str(exc).splitlines()[0]}"
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        # A kernel or backend error fails this case only; the sweep goes on.
        result.status = "failed"
        msg = str(exc).splitlines()[0] if str(exc) else ""
        result.reason = f"{type(exc).__name__}: {msg}"
    finally:
        _free_memory()
        result.finished_at = utc_now()
    return result
