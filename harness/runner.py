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
from harness.integrity import checks, guard
from harness.machine.watch import Watcher
from harness.nvml import BENIGN_REASONS, Nvml
from harness.plan import TimingConfig
from harness.records import (
    CaseResult,
    CaseSpec,
    CeilingsRecord,
    ClockStats,
    Correctness,
    Integrity,
    IntegrityCheck,
    Memory,
    Throughput,
    Timing,
    Watch,
)
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
    from harness.integrity.outputs import rel_error, snapshot

    inputs = workload.make_inputs(spec, seed)
    fn = workload.make_fn(spec, inputs)
    # Outputs NaN-poisoned here (and only here): an element the kernel never wrote fails. The
    # output is copied as soon as the call returns (stream-ordered): a call must return its own
    # finished result, not a buffer a later call fills in (a "deferred" kernel did exactly that).
    with envlock.poisoned():
        out = snapshot(_first_call(fn))
        again = fn()
    bitwise = _equal(out, again)
    ref = workload.reference(spec, inputs)
    rel = rel_error(out, ref)
    tol = workload.tolerance(spec)
    # NaN or inf in the output (a NaN-poisoned element never written, an overflow) has no finite
    # error; JSON cannot hold NaN or inf, so the record says None and the case fails.
    finite = math.isfinite(rel)
    return Correctness(reference="float64", rel_error=rel if finite else None, tolerance=tol,
                       passed=bool(finite and rel <= tol), bitwise_repeat=bitwise)


def _equal(a: Any, b: Any) -> bool:
    import torch

    from harness.integrity.outputs import tensors

    xs, ys = list(tensors(a)), list(tensors(b))
    return len(xs) == len(ys) and all(torch.equal(x, y) for x, y in zip(xs, ys))


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


def _time_repetitions(workload, spec: CaseSpec, cfg: TimingConfig, l2_bytes: int | None, watch: Watcher | None,
                      evidence: list[IntegrityCheck]) -> tuple[list[RepetitionTiming], int, float]:
    """Every repetition's timing; the integrity checks of what each one timed go into `evidence`.
    Returns the timings, the refreshes in all and the seconds the checks took (an integrity cost,
    not sampling)."""
    import time

    from harness.integrity import outputs as outcheck

    out = []
    refreshes, check_s = 0, 0.0
    for rep in range(cfg.repeats):
        # Each repetition gets fresh inputs, fresh allocations and a fresh graph, so the spread
        # between repetitions shows run-to-run variation, not only sample noise. Its input sets
        # are rotated between batches and refreshed with data drawn while timing runs.
        _free_memory()
        slots, inputs = outcheck.make_slots(workload, spec, checks.INPUT_SETS)
        if spec.device == "cuda":
            timing = measure_cuda(slots, cfg, cache=spec.cache, l2_bytes=l2_bytes, watch=watch)
        else:
            timing = measure_cpu(slots, cfg)
        refreshes += timing.refreshes
        t0 = time.perf_counter()
        evidence.append(outcheck.aliasing(inputs, timing.output_buffers))
        evidence.append(outcheck.timed_outputs(workload, spec, inputs, timing.outputs, slots.refresh is not None))
        if timing.host_clock is not None:
            h = timing.host_clock
            evidence.append(checks.host_clock(h.host_ms, h.event_ms, h.calls))
        timing.outputs, timing.output_buffers = [], []
        check_s += time.perf_counter() - t0
        if rep < cfg.repeats - 1:
            timing.replay = None  # only the last repetition's timed work is censused
        out.append(timing)
        del slots, inputs
    if spec.device != "cuda":
        evidence.append(checks.host_clock_not_run("CPU: the timer is the host clock itself (bound before any workload was imported)"))
    return out, refreshes, check_s


def _integrity_census(workload, spec: CaseSpec, last: RepetitionTiming, median_ms: float,
                      evidence: list[IntegrityCheck]) -> None:
    """The timed work itself under the profiler, against one eager call on fresh inputs."""
    from harness import census
    from harness.integrity import census as integrity_census
    from harness.integrity import outputs as outcheck

    try:
        replay, last.replay = last.replay, None
        assert replay is not None
        try:
            timed = census.of_run(replay, last.repetition.inner_iters, spec.device, median_ms)
        finally:
            # The graph and its memory pool go before the eager call allocates its own (the math
            # backend's is 50 GB at S=4096).
            del replay
            _free_memory()
        warm = workload.make_fn(spec, workload.make_inputs(spec, outcheck.fresh_seed()))
        fresh = workload.make_fn(spec, workload.make_inputs(spec, outcheck.fresh_seed()))
        eager = census.eager(warm, fresh, spec.device)
    except census.CensusUnavailable as exc:
        evidence.append(IntegrityCheck(checks.CENSUS_VS_EAGER, None, f"not run: {exc}"))
        return
    except census.KernelRaised as exc:
        evidence.append(IntegrityCheck(checks.CENSUS_VS_EAGER, False,
                                       f"the kernel raised while its timed work or an eager call was profiled ({exc}); "
                                       "it ran when timed, so it behaves differently when watched"))
        return
    except Exception as exc:  # noqa: BLE001 - the census explains a timing; its failure must not lose it
        msg = str(exc).splitlines()[0] if str(exc) else ""
        evidence.append(IntegrityCheck(checks.CENSUS_VS_EAGER, None, f"not run: the census failed: {type(exc).__name__}: {msg}"))
        return
    evidence.append(integrity_census.versus_eager(timed, eager, spec.device))
    evidence.append(integrity_census.time_share(timed, median_ms, spec.device))


def clock_stats(readings: list[tuple[int | None, int | None]], powers: list[float | None] | None = None,
                median_ms: float | None = None) -> ClockStats | None:
    """The clocks and power of the kept batches; cycles per call = the median time x the median
    SM clock (ms x MHz x 1e3)."""
    if not readings:
        return None
    import numpy as np

    def stats3(values: list[float | int | None]) -> tuple[float | None, float | None, float | None]:
        vals = [v for v in values if v is not None]
        if not vals:
            return None, None, None
        return float(np.median(vals)), float(min(vals)), float(max(vals))

    sm, mem = stats3([r[0] for r in readings]), stats3([r[1] for r in readings])
    pw = stats3(list(powers or []))
    cycles = None if sm[0] is None or median_ms is None else float(f"{median_ms * sm[0] * 1e3:.6g}")
    return ClockStats(readings=len(readings), sm_mhz_median=sm[0], sm_mhz_min=sm[1], sm_mhz_max=sm[2],
                      mem_mhz_median=mem[0], mem_mhz_min=mem[1], mem_mhz_max=mem[2],
                      power_w_median=pw[0], power_w_min=pw[1], power_w_max=pw[2], cycles_per_call=cycles)


def _census(workload, spec: CaseSpec, seed: int, median_ms: float, result: CaseResult, nvml: Nvml | None) -> None:
    from harness import census

    def make_fn():
        return workload.make_fn(spec, workload.make_inputs(spec, seed))

    sm_clock = (lambda: nvml.clocks()[0]) if nvml is not None and nvml.ok else None
    try:
        result.census = census.take(make_fn, spec.device, median_ms, sm_clock=sm_clock)
    except census.CensusUnavailable as exc:
        result.unavailable["census"] = str(exc)
    except census.KernelRaised as exc:
        result.unavailable["census"] = f"the kernel raised while it was profiled: {exc}"
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        # The census explains a timing; its failure must not throw the timing away.
        msg = str(exc).splitlines()[0] if str(exc) else ""
        result.unavailable["census"] = f"census failed: {type(exc).__name__}: {msg}"
    if result.census is not None and not result.census.matches_unlocked and result.timing is not None:
        result.timing.summary.flags = sorted(set(result.timing.summary.flags) | {"census_lock_differs"})


def regime(spec: CaseSpec, cfg: TimingConfig, method: str) -> str:
    """The state of the machine a case's numbers describe, in words (ARTIFACT.md, "The machine")."""
    if spec.device != "cuda":
        return (f"CPU: {cfg.warmup_ms:g} ms of warm-up calls, then samples of about {cfg.sample_target_ms:g} ms of "
                "back-to-back calls timed by perf_counter")
    cache = ("warm L2: back-to-back calls" if spec.cache == "warm"
             else "cold L2: a buffer of 4x L2 written before each single call")
    how = "CUDA graph replays" if method == "cuda_graph" else "eager launches"
    return (f"sustained: {cfg.warmup_ms:g} ms of warm-up kernel time, then {how} of about {cfg.sample_target_ms:g} ms "
            f"({cache}) between CUDA events, batches of {cfg.batch} with an NVML read between; the SM clock free "
            f"(as the power limit allows), batches below {cfg.throttle_threshold:g}x its maximum discarded")


def invalid_reason(integrity: Integrity, watch: Watch | None) -> str | None:
    """Why a timed case is invalid, or None. Timed beside another process, the machine is named
    (SHARED_PREFIX), unless a check that contention cannot explain failed: then the kernel is."""
    if watch is not None and watch.shared and not checks.kernel_failures(integrity):
        return shared_reason(watch)
    return checks.reason(integrity)


def shared_reason(w: Watch) -> str:
    from harness.machine.gate import SHARED_PREFIX, describe_all

    named = describe_all(w.foreign) or "work NVML could not attribute to a process"
    return (f"{SHARED_PREFIX}timed while another process was on the GPU ({named}); {w.discarded_foreign} batch(es) "
            f"discarded, {w.waited_s:g} s waited for it to leave; rerun on an idle GPU")


def run_case(
    spec: CaseSpec,
    timing: TimingConfig,
    *,
    check_correctness_first: bool = True,
    l2_bytes: int | None = None,
    nvml: Nvml | None = None,
    census: bool = True,
    ceilings: CeilingsRecord | None = None,
    watch: Watcher | None = None,
) -> CaseResult:
    """`watch`: the machine after every sampling batch (harness/machine/watch.py); a case timed
    beside another process on the GPU is `invalid` (shared GPU), not slow."""
    import time

    import torch

    # Bound before any workload module of the user's is imported (workloads.get), so that what
    # such a module replaces is seen (harness/integrity/guard.py).
    guard.baseline()

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
        evidence: list[IntegrityCheck] = []
        machine = watch if spec.device == "cuda" else None  # the watch is NVML's: GPU cases only
        if machine is not None:
            machine.start()
        reps, refreshes, check_s = _time_repetitions(workload, spec, timing, l2_bytes, machine, evidence)
        if machine is not None:
            result.watch = machine.record()
        setup = sum(r.setup_s for r in reps)
        phase("timing")
        result.phases_s["warmup"] = round(setup, 4)
        result.phases_s["sampling"] = round(result.phases_s.pop("timing") - setup - check_s, 4)
        result.phases_s["integrity"] = round(check_s, 4)
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
            clocks=clock_stats([c for r in reps for c in r.clock_readings], [p for r in reps for p in r.power_readings],
                               summary.median_ms),
            fill_uninitialized_memory=fill_in_force,
            bootstrap_seed=timing.seed,
            regime=regime(spec, timing, reps[0].method),
        )
        if result.timing.clocks is None:
            result.unavailable["timing.clocks"] = ("run on the CPU" if spec.device != "cuda"
                                                   else (nvml.error if nvml is not None and nvml.error else "NVML unavailable"))
        flops, nbytes = workload.flops(spec), workload.bytes_moved(spec)
        sec = summary.median_ms / 1e3
        result.throughput = Throughput(flops=flops, bytes=nbytes, tflops=flops / sec / 1e12, gbps=nbytes / sec / 1e9)
        if census and reps[-1].replay is not None:
            if machine is not None:
                machine.settle()
                result.watch = machine.record()
            _integrity_census(workload, spec, reps[-1], summary.median_ms, evidence)
        else:
            evidence.append(IntegrityCheck(checks.CENSUS_VS_EAGER, None, "not run: no census (census: false in the plan, or --no-census)"))
        reps[-1].replay = None  # the earlier repetitions' were dropped as they finished
        evidence.append(checks.roofline_check(summary.median_ms, flops, nbytes, ceilings, cache=spec.cache,
                                              l2_bytes=l2_bytes if spec.device == "cuda" else None, device=spec.device))
        evidence.append(checks.tamper(guard.tampered()))
        result.integrity = checks.assemble(evidence, checks.INPUT_SETS, refreshes)
        phase("integrity")
        if census:
            _census(workload, spec, timing.seed + 2, summary.median_ms, result, nvml)
            phase("census")
        else:
            result.unavailable["census"] = "not taken (census: false in the plan, or --no-census)"
        why = invalid_reason(result.integrity, result.watch)
        if why:
            result.status, result.reason = "invalid", why
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
