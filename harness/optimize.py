"""`harness optimize`: can the bundled Triton kernel beat every SDPA backend at one fixed shape?

The loop, at one shape and within a time budget:

1. Baseline: every SDPA backend and the default dispatch, measured (correctness first); the
   fastest that passes is the baseline.
2. Search: every config of the kernel's search space passes the float64 correctness gate on
   fresh random inputs of its own, then gets a quick measurement (rung 0). Successive halving
   keeps the fastest third of each rung and measures them again, longer, on fresh inputs, until
   one is left or the budget is spent.
3. Comparison: the winner and the baseline are each measured once more with the full timing,
   back to back. Both were chosen as the fastest of several noisy measurements, so comparing the
   selection measurements would flatter them (the winner's curse); the fresh pair does not.
   harness.compare turns the two sample sets into the ratio of medians with its bootstrap CI,
   Hedges' g, Cliff's delta, the Mann-Whitney p-value and a verdict.

Outputs in DIR: env.json, cases/ (the two final measurements, readable by `artifact check`),
baseline.json, search.json, comparison.json, tuned_config.json, summary.md, manifest.json.

Torch is imported only where kernels run, so the records and the search space load without it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from harness import __version__
from harness.errors import HarnessError
from harness.plan import TimingConfig
from harness.records import SCHEMA_VERSION, CaseResult, CaseSpec

KIND_BASELINE = "optimize_baseline"
KIND_SEARCH = "optimize_search"
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math", "default")
ETA = 3  # successive halving keeps the best 1/ETA of each rung
# The interpreter runs about 3 M multiply-adds a second on one core: beyond this the CPU search
# would take minutes per config.
CPU_MAX_MACS = 1 << 22


# --------------------------------------------------------------------------- records
@dataclass
class BaselineRecord:
    """baseline.json: every SDPA backend at the shape, and which one is the baseline."""

    shape_key: str
    best_backend: Optional[str]
    best_median_ms: Optional[float]
    selection: str  # how the best was chosen
    results: list[CaseResult]  # one per backend, selection timing
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_BASELINE


@dataclass
class Trial:
    """One config's measurements, rung by rung (a rung is skipped once the config is dropped)."""

    config: dict[str, Any]
    rungs: list[int] = field(default_factory=list)
    medians_ms: list[float] = field(default_factory=list)
    rel_halfwidths: list[float] = field(default_factory=list)
    rel_error: Optional[float] = None  # the correctness gate's ||out-ref||/||ref||, rung 0
    status: str = "pending"  # ok | incorrect | failed | skipped | not_tried
    reason: Optional[str] = None


@dataclass
class SearchRecord:
    """search.json: the space, each config's fate, and how the budget went."""

    shape_key: str
    budget_s: float
    spent_s: float
    eta: int
    n_configs: int
    n_tried: int
    n_correct: int
    rung_sizes: list[int]
    winner: Optional[dict[str, Any]]
    stop_reason: str
    trials: list[Trial]
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_SEARCH


@dataclass
class OptimizeSettings:
    batch: int = 32
    heads: int = 8
    seq: int = 512
    head_dim: int = 64
    dtype: str = "float16"
    causal: bool = False
    device: str = "cuda"
    budget_s: float = 120.0
    target_speedup: float = 1.10
    seed: int = 1234
    space: Optional[list[dict[str, Any]]] = None  # None: search_space() for the shape
    reuse: Optional[dict[str, Any]] = None  # a tuned config to measure instead of searching
    matmul_peak_tflops: Optional[float] = None  # for the summary's share-of-peak column
    precompile: bool = True  # on a GPU, compile the space in parallel before measuring
    ncu: str = "target"  # Nsight Compute on the winner: "target" (when the target is met), "always", "never"


@dataclass
class TimingPlan:
    select: TimingConfig  # the baseline backends
    quick: TimingConfig  # rung 0; later rungs stretch it by ETA per rung
    full: TimingConfig  # the final pair


def timing_plan(device: str) -> TimingPlan:
    if device == "cuda":
        return TimingPlan(
            select=TimingConfig(target_rel_ci=0.01, min_samples=20, max_samples=2000, max_time_s=0.5, warmup_ms=25),
            quick=TimingConfig(target_rel_ci=0.02, min_samples=10, max_samples=500, max_time_s=0.2, warmup_ms=10,
                               sample_target_ms=0.5),
            full=TimingConfig(target_rel_ci=0.005, min_samples=30, max_samples=4000, max_time_s=2.0, repeats=3),
        )
    # The interpreter is slow and noisy: short rungs, and precision that a CI machine can reach.
    return TimingPlan(
        select=TimingConfig(target_rel_ci=0.05, min_samples=6, max_samples=200, max_time_s=0.3, warmup_ms=5,
                            sample_target_ms=0.2, batch=3),
        quick=TimingConfig(target_rel_ci=0.1, min_samples=6, max_samples=60, max_time_s=0.3, warmup_ms=1,
                           sample_target_ms=0.1, batch=3),
        full=TimingConfig(target_rel_ci=0.05, min_samples=9, max_samples=200, max_time_s=0.6, warmup_ms=1,
                          sample_target_ms=0.1, batch=3, repeats=2),
    )


def rung_timing(quick: TimingConfig, rung: int) -> TimingConfig:
    """Rung r samples ETA^r times longer and asks for a CI sqrt(ETA^r) times tighter: the
    survivors are closer together, so telling them apart needs more precision."""
    stretch = ETA**rung
    return replace(quick, max_time_s=quick.max_time_s * stretch, target_rel_ci=quick.target_rel_ci / math.sqrt(stretch),
                   min_samples=quick.min_samples * (rung + 1))


# --------------------------------------------------------------------------- the search space
def _cfg(bm: int, bn: int, w: int, s: int, tma: bool = False, ws: bool = False, rev: bool = False,
         exp16: bool = False) -> dict[str, Any]:
    return {"BLOCK_M": bm, "BLOCK_N": bn, "num_warps": w, "num_stages": s, "use_tma": tma,
            "warp_specialize": ws, "reverse_m": rev, "exp_f16": exp16}


# Fastest configs of the H100 tune run 1 (bench/triton_attention/run1-tune), over the D=64
# sweep, causal, bf16 and D=128 groups, best first.
LEADERS = [
    _cfg(128, 64, 8, 3, True, ws=True), _cfg(128, 64, 8, 3, True), _cfg(128, 128, 4, 3, True),
    _cfg(128, 64, 8, 4), _cfg(128, 64, 8, 4, True), _cfg(64, 128, 4, 2, True), _cfg(128, 64, 4, 2, True),
    _cfg(64, 64, 4, 3, True), _cfg(64, 64, 4, 3), _cfg(128, 64, 8, 3), _cfg(128, 64, 4, 3),
]


def search_space(spec: CaseSpec) -> list[dict[str, Any]]:
    """Configs to try at this shape, most promising first (the budget may end the list early).

    On a GPU: block shapes 64/128 x 32/64/128, 4 or 8 warps, 2-4 pipeline stages, with and
    without TMA loads, a few warp-specialised variants, and for causal masks the reversed
    launch order. The order comes from the H100 landscape in bench/triton_attention/NOTES.md.
    On the CPU (the interpreter) warps, stages and TMA mean nothing: a few block shapes only.
    Configs that cannot run the shape (harness.workloads.triton_attention.config_problem) are
    left out here rather than failing later.
    """
    from harness.workloads.triton_attention import config_problem

    if spec.device == "cpu":
        blocks = [(32, 16), (16, 16), (32, 32), (64, 32)]
        cands = [_cfg(bm, bn, 4, 2) for bm, bn in blocks]
    else:
        # The leaders of the H100 landscape (bench/triton_attention/NOTES.md, runs 1-2) first,
        # then the grid with its slow corners (8 warps on 64-row blocks: 0.09-0.13 ms against
        # 0.057 at the seed shape) last, then the half-precision exponential, which lost 2-5%
        # everywhere in run 2 but stays in the space for other GPUs.
        cands = list(LEADERS)
        grid = [_cfg(bm, bn, w, s, tma) for bm in (128, 64) for bn in (64, 128, 32) for w in (4, 8)
                for s in (3, 2, 4) for tma in (True, False)]
        cands += [c for c in grid if not (c["BLOCK_M"] == 64 and c["num_warps"] == 8)]
        # Warp specialisation compiles only with 8 warps here (Triton 3.6 asserts in
        # WSLowerToken with 4: run 1).
        cands += [_cfg(128, bn, 8, s, True, ws=True) for bn in (64, 128) for s in (3, 2)]
        cands += [c for c in grid if c["BLOCK_M"] == 64 and c["num_warps"] == 8]
        cands += [dict(c, exp_f16=True) for c in LEADERS[:4]]
    if spec.causal:
        cands = [c for base in cands for c in (dict(base, reverse_m=True), base)]
    out: list[dict[str, Any]] = []
    for c in cands:
        if c not in out and config_problem(c, spec) is None:
            out.append(c)
    return out


def describe(config: dict[str, Any]) -> str:
    s = f"M{config['BLOCK_M']} N{config['BLOCK_N']} w{config['num_warps']} s{config['num_stages']}"
    for key, tag in (("use_tma", "tma"), ("warp_specialize", "ws"), ("reverse_m", "rev"), ("exp_f16", "e16")):
        if config.get(key):
            s += f" {tag}"
    return s


# --------------------------------------------------------------------------- the loop
Measure = Callable[[CaseSpec, TimingConfig], CaseResult]
Log = Callable[[str], None]


def _median(r: CaseResult) -> float:
    assert r.timing is not None
    return r.timing.summary.median_ms


class _Clock:
    def __init__(self, budget_s: float):
        self.t0 = time.perf_counter()
        self.budget_s = budget_s

    def spent(self) -> float:
        return time.perf_counter() - self.t0


def select_baseline(shape: CaseSpec, timing: TimingConfig, measure: Measure, log: Log) -> BaselineRecord:
    results = []
    for i, backend in enumerate(SDPA_BACKENDS):
        spec = replace(shape, workload="sdpa", backend=backend, config=None)
        r = measure(spec, replace(timing, seed=timing.seed + 101 * (i + 1)))
        results.append(r)
        log(f"baseline {backend:9s} {r.status:7s} " + (f"{_median(r):.4f} ms" if r.status == "ok" else (r.reason or "")))
    ok = [r for r in results if r.status == "ok"]
    best = min(ok, key=_median) if ok else None
    return BaselineRecord(
        shape_key=shape.shape_key,
        best_backend=best.case.backend if best else None,
        best_median_ms=_median(best) if best else None,
        selection="lowest median of the backends that passed correctness (selection timing)",
        results=results,
    )


def successive_halving(
    shape: CaseSpec, space: list[dict[str, Any]], plan: TimingPlan, measure: Measure, clock: _Clock,
    search_deadline_s: float, log: Log, compile_failures: Optional[dict[int, str]] = None,
) -> tuple[list[Trial], list[int], Optional[dict[str, Any]], str]:
    """Rung 0 over as much of `space` as 60% of the search time allows, then halving rungs."""
    trials = [Trial(config=c) for c in space]
    for i, why in (compile_failures or {}).items():
        trials[i].status, trials[i].reason = "failed", why
    rung0_end = clock.spent() + 0.6 * max(0.0, search_deadline_s - clock.spent())
    seed = plan.quick.seed
    alive: list[Trial] = []
    for i, t in enumerate(trials):
        if t.status == "failed":
            continue
        if clock.spent() >= rung0_end:
            for rest in trials[i:]:
                if rest.status == "pending":
                    rest.status, rest.reason = "not_tried", "time budget spent before this config's turn"
            break
        seed += 7919
        spec = replace(shape, workload="triton_attention", backend="triton", config=t.config)
        # Its own seed: every config's correctness gate sees fresh random inputs.
        r = measure(spec, replace(plan.quick, seed=seed))
        if r.correctness is not None:
            t.rel_error = r.correctness.rel_error
        if r.status == "ok":
            t.status = "ok"
            t.rungs.append(0)
            t.medians_ms.append(_median(r))
            t.rel_halfwidths.append(r.timing.summary.rel_halfwidth)
            alive.append(t)
        elif r.correctness is not None and not r.correctness.passed:
            t.status, t.reason = "incorrect", r.reason
        else:
            t.status, t.reason = r.status, r.reason
        log(f"rung 0 [{i + 1}/{len(trials)}] {describe(t.config):26s} "
            + (f"{t.medians_ms[-1]:.4f} ms" if t.status == "ok" else f"{t.status}: {t.reason}"))
    rung_sizes = [len(alive)]
    if not alive:
        tried = any(t.status != "not_tried" for t in trials)
        why = "no config passed the correctness gate" if tried else "the time budget ended before any config was tried"
        return trials, rung_sizes, None, why
    rung = 0
    stop = "one config left"
    while len(alive) > 1:
        keep = max(1, math.ceil(len(alive) / ETA))
        alive = sorted(alive, key=lambda t: t.medians_ms[-1])[:keep]
        if keep == 1:
            break
        rung += 1
        timing = rung_timing(plan.quick, rung)
        # A rung costs about keep * (sampling + per-case overhead); the overhead is taken as the
        # sampling time again, which is what rung 0 showed on the H100.
        if clock.spent() + keep * 2 * timing.max_time_s > search_deadline_s:
            stop = f"time budget: rung {rung} ({keep} configs) would not fit"
            break
        for t in alive:
            seed += 7919
            spec = replace(shape, workload="triton_attention", backend="triton", config=t.config)
            r = measure(spec, replace(timing, seed=seed))
            if r.status != "ok":
                # It passed before; failing now (a moving error is a race) disqualifies it.
                t.status, t.reason = "failed", f"rung {rung}: {r.reason}"
                continue
            t.rungs.append(rung)
            t.medians_ms.append(_median(r))
            t.rel_halfwidths.append(r.timing.summary.rel_halfwidth)
            log(f"rung {rung} {describe(t.config):26s} {t.medians_ms[-1]:.4f} ms")
        alive = [t for t in alive if t.status == "ok" and t.rungs[-1] == rung]
        rung_sizes.append(len(alive))
        if not alive:
            return trials, rung_sizes, None, f"every survivor failed at rung {rung}"
    winner = min(alive, key=lambda t: t.medians_ms[-1])
    return trials, rung_sizes, winner.config, stop


def _compile_one(job: tuple[dict[str, Any], dict[str, Any]]) -> Optional[str]:
    """Worker process: launch one config on a one-head copy of the shape, so Triton compiles it
    into its on-disk cache; the measuring process then only loads it. None, or why it failed."""
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


def precompile(shape: CaseSpec, space: list[dict[str, Any]], deadline_s: float, clock: _Clock, log: Log,
               workers: Optional[int] = None) -> dict[int, str]:
    """Compile the space in parallel worker processes (Triton compiles one kernel per process at
    a time, about 1-3 s each on the H100 machine's CPUs: serially that would eat most of a
    120 s budget). Returns {index in space: why it failed}. Stops at the deadline; whatever is
    not compiled by then is compiled on first use instead."""
    import multiprocessing as mp

    workers = workers or max(1, min(len(space), (os.cpu_count() or 2) - 2, 16))
    fields = {k: v for k, v in shape.__dict__.items() if k != "config"}
    fields.update(workload="triton_attention", backend="triton")
    failed: dict[int, str] = {}
    t0 = clock.spent()
    pool = mp.get_context("spawn").Pool(workers)
    try:
        for i, err in enumerate(pool.imap(_compile_one, [(fields, c) for c in space])):
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


@dataclass
class Outcome:
    baseline: BaselineRecord
    search: Optional[SearchRecord]
    final_baseline: CaseResult
    final_candidate: CaseResult
    comparison: Any  # harness.compare.Comparison
    tuned: Any  # harness.tuned.TunedConfig
    out: Path


def _reserve_s(plan: TimingPlan) -> float:
    # The final pair: each at most repeats * max_time_s of sampling, plus about as much again
    # for correctness, warm-up and graph capture.
    return 2 * 2 * plan.full.repeats * plan.full.max_time_s


def _gpu_identity(env: Any) -> tuple[str, str]:
    if env.gpu is not None and env.gpu.name:
        return env.gpu.name, env.gpu.compute_capability or "unknown"
    return f"cpu: {env.host.get('cpu_model') or 'unknown'}", "cpu"


def run_optimize(settings: OptimizeSettings, out: Path, *, measure: Optional[Measure] = None,
                 log: Log = print, plan: Optional[TimingPlan] = None, source: str = "harness optimize") -> Outcome:
    from harness import envlock, fingerprint, storage, tuned
    from harness.compare import compare_cases
    from harness.records import to_json

    out = Path(out)
    clock = _Clock(settings.budget_s)
    shape = CaseSpec("sdpa", "default", settings.batch, settings.heads, settings.seq, settings.head_dim,
                     dtype=settings.dtype, causal=settings.causal, device=settings.device)
    plan = plan or timing_plan(settings.device)
    plan = TimingPlan(*(replace(t, seed=settings.seed) for t in (plan.select, plan.quick, plan.full)))
    if measure is None:
        from harness.runner import run_case

        measure = run_case
    space = settings.space if settings.space is not None else search_space(replace(shape, workload="triton_attention"))
    if settings.reuse is None and not space:
        raise HarnessError(f"no config of the search space can run {shape.shape_key}")

    out.mkdir(parents=True, exist_ok=True)
    lock_settings, failures = envlock.lock(settings.seed)
    nvml = None
    if settings.device == "cuda":
        from harness.nvml import Nvml

        nvml = Nvml(0)
    env = fingerprint.collect(settings.device, lock_settings, failures, nvml=nvml)
    storage.write_record(out / storage.ENV_FILE, env)
    gpu_name, cc = _gpu_identity(env)
    log(f"optimize {shape.shape_key} on {gpu_name}: budget {settings.budget_s:.0f} s, {len(space)} configs")

    baseline = select_baseline(shape, plan.select, measure, log)
    storage.write_record(out / "baseline.json", baseline)
    if baseline.best_backend is None:
        raise HarnessError(f"no SDPA backend ran {shape.shape_key} correctly; see {out / 'baseline.json'}")

    search = None
    if settings.reuse is not None:
        winner = dict(settings.reuse)
        log(f"reusing tuned config {describe(winner)}: no search")
    else:
        deadline = settings.budget_s - _reserve_s(plan)
        if deadline <= clock.spent():
            raise HarnessError(
                f"--budget-s {settings.budget_s:g} is too short: the baseline took {clock.spent():.0f} s and the final "
                f"comparison needs about {_reserve_s(plan):.0f} s; give at least {clock.spent() + _reserve_s(plan) + 10:.0f}"
            )
        failures = None
        if settings.device == "cuda" and settings.precompile:
            failures = precompile(shape, space, clock.spent() + 0.4 * (deadline - clock.spent()), clock, log)
        trials, rung_sizes, winner, stop = successive_halving(shape, space, plan, measure, clock, deadline, log, failures)
        search = SearchRecord(
            shape_key=shape.shape_key, budget_s=settings.budget_s, spent_s=round(clock.spent(), 2), eta=ETA,
            n_configs=len(space), n_tried=sum(t.status != "not_tried" for t in trials),
            n_correct=sum(t.rel_error is not None and t.status != "incorrect" for t in trials),
            rung_sizes=rung_sizes, winner=winner, stop_reason=stop, trials=trials,
        )
        storage.write_record(out / "search.json", search)
        if winner is None:
            raise HarnessError(f"search found no usable config ({stop}); see {out / 'search.json'}")
        log(f"winner {describe(winner)} ({stop})")

    # The final pair, fresh and back to back (see the module docstring).
    base_spec = replace(shape, workload="sdpa", backend=baseline.best_backend, config=None)
    cand_spec = replace(shape, workload="triton_attention", backend="triton", config=winner)
    final_base = measure(base_spec, replace(plan.full, seed=settings.seed + 1))
    final_cand = measure(cand_spec, replace(plan.full, seed=settings.seed + 2))
    for r in (final_base, final_cand):
        storage.write_case(out, r)
        if r.status != "ok":
            raise HarnessError(f"final measurement of {r.case.case_id} {r.status}: {r.reason}")
    comparison = compare_cases(final_base, final_cand)
    met = comparison.speedup_ci_low is not None and comparison.speedup_ci_low >= settings.target_speedup
    if settings.ncu == "always" or (settings.ncu == "target" and met):
        from harness import ncu

        # Why the winner is fast (or not): the hardware counters of one call, report beside the records.
        log(f"Nsight Compute on the winner ({'target met' if met else 'asked for'}) ...")
        comparison.ncu = ncu.profile_case(cand_spec, out, seed=settings.seed)
        for line in ncu.summary_lines(comparison.ncu):
            log(line)
    storage.atomic_write_text(out / "comparison.json", to_json(comparison))

    import platform

    versions = env.software or {}
    record = tuned.TunedConfig(
        gpu_name=gpu_name, compute_capability=cc, batch=shape.batch, heads=shape.heads, seq=shape.seq,
        head_dim=shape.head_dim, dtype=shape.dtype, causal=shape.causal, config=winner,
        median_ms=_median(final_cand), baseline_backend=baseline.best_backend,
        baseline_median_ms=_median(final_base), ratio=comparison.ratio, ratio_ci_low=comparison.ratio_ci_low,
        ratio_ci_high=comparison.ratio_ci_high, verdict=comparison.verdict,
        configs_tried=search.n_tried if search else 0,
        triton_version=str(versions.get("triton")), torch_version=str(versions.get("torch")),
        created_at=storage.utc_now(), source=f"{source} (harness {__version__}, python {platform.python_version()})",
    )
    storage.write_record(out / "tuned_config.json", record)
    outcome = Outcome(baseline, search, final_base, final_cand, comparison, record, out)
    storage.atomic_write_text(out / "summary.md", summary_markdown(outcome, settings, clock.spent()))
    storage.write_manifest(out)
    log(f"{comparison.verdict}: candidate/baseline = {comparison.ratio:.3f} "
        f"[{comparison.ratio_ci_low:.3f}, {comparison.ratio_ci_high:.3f}] in {clock.spent():.0f} s -> {out}")
    return outcome


# --------------------------------------------------------------------------- the summary
def _ci(r: CaseResult) -> str:
    s = r.timing.summary  # type: ignore[union-attr]
    return f"[{s.ci_low_ms:.4f}, {s.ci_high_ms:.4f}]"


def _tflops(r: CaseResult, peak: Optional[float]) -> str:
    if r.throughput is None:
        return "-"
    share = f" ({r.throughput.tflops / peak:.0%} of {peak:g})" if peak else ""
    return f"{r.throughput.tflops:.3g}{share}"


def summary_markdown(o: Outcome, settings: OptimizeSettings, spent_s: float) -> str:
    c = o.comparison
    t = o.tuned
    peak = settings.matmul_peak_tflops
    # Same shape on both sides, so harness.compare always gives a speedup (never a scaling result).
    speedup_lo, speedup_hi = c.speedup_ci_low, c.speedup_ci_high
    met = speedup_lo >= settings.target_speedup
    g = "undefined" if c.hedges_g is None else f"{c.hedges_g:.2f}"
    lines = [
        f"# harness optimize: {o.baseline.shape_key}",
        "",
        f"On {t.gpu_name}" + (f" (compute capability {t.compute_capability})" if t.compute_capability != "cpu" else "")
        + f", triton {t.triton_version}, "
        f"torch {t.torch_version}; {spent_s:.0f} s of a {settings.budget_s:.0f} s budget.",
        "",
        "## Verdict",
        "",
        f"**{c.verdict}**: the Triton kernel ({describe(t.config)}) against SDPA `{t.baseline_backend}`, "
        f"time ratio candidate/baseline {c.ratio:.3f}, {c.level:.0%} CI [{c.ratio_ci_low:.3f}, {c.ratio_ci_high:.3f}] "
        f"(speedup {c.speedup:.3f}x, CI [{speedup_lo:.3f}, {speedup_hi:.3f}]; {c.ci_method}, "
        f"{c.baseline_repetitions}+{c.candidate_repetitions} repetitions).",
        "",
        f"Target speedup {settings.target_speedup:g}x: "
        + ("**met** (the whole CI of the speedup is at or above it)." if met else
           "**not met** (the lower end of the speedup's CI is below it)."),
        "",
        f"Effect sizes (negative: the candidate is faster): Hedges' g {g}, Cliff's delta {c.cliffs_delta:.3f} ({c.cliffs_magnitude}), "
        f"Mann-Whitney U {c.mannwhitney_u:.0f}, p = {c.mannwhitney_p:.3g}.",
        *(f"- {n}" for n in c.notes),
        "",
        *(["## Why (Nsight Compute on the candidate)", "", *_ncu_lines(c.ncu), ""] if c.ncu is not None else []),
        "## Final measurements (fresh, full timing)",
        "",
        "| case | median ms | 95% CI ms | samples | TFLOP/s | rel. error |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in (o.final_baseline, o.final_candidate):
        s = r.timing.summary  # type: ignore[union-attr]
        err = f"{r.correctness.rel_error:.1e}" if r.correctness and r.correctness.rel_error is not None else "-"
        lines.append(f"| {r.case.case_id} | {s.median_ms:.4f} | {_ci(r)} | {s.n_samples} | {_tflops(r, peak)} | {err} |")
    lines += ["", "## Baseline selection (every SDPA backend)", "",
              "| backend | status | median ms | TFLOP/s | note |", "| --- | --- | --- | --- | --- |"]
    for r in o.baseline.results:
        med = f"{_median(r):.4f}" if r.status == "ok" else "-"
        mark = " (baseline)" if r.case.backend == o.baseline.best_backend else ""
        lines.append(f"| {r.case.backend}{mark} | {r.status} | {med} | {_tflops(r, peak)} | {r.reason or ''} |")
    if o.search is not None:
        s = o.search
        lines += ["", "## Search", "",
                  f"{s.n_tried} of {s.n_configs} configs tried, {s.n_correct} passed the float64 gate; rung sizes "
                  f"{s.rung_sizes} (keep 1/{s.eta} per rung); stopped: {s.stop_reason}.", "",
                  "| config | status | rung medians ms | rel. error |", "| --- | --- | --- | --- |"]
        ranked = sorted(s.trials, key=lambda x: (x.status != "ok", -len(x.medians_ms), x.medians_ms[-1] if x.medians_ms else 0))
        for x in ranked[:15]:
            meds = ", ".join(f"{m:.4f}" for m in x.medians_ms) or "-"
            err = f"{x.rel_error:.1e}" if x.rel_error is not None else "-"
            lines.append(f"| {describe(x.config)} | {x.status} | {meds} | {err} |")
        dropped = [x for x in s.trials if x.status not in ("ok", "not_tried")]
        if dropped:
            lines += ["", f"{len(dropped)} config(s) dropped:"]
            lines += [f"- {describe(x.config)}: {x.status}: {x.reason}" for x in dropped[:10]]
    else:
        lines += ["", "## Search", "", "None: a tuned config was reused."]
    lines += ["", "Numbers above are read from baseline.json, search.json, comparison.json and cases/.", ""]
    return "\n".join(lines)


def _ncu_lines(profile: Any) -> list[str]:
    from harness import ncu

    return [f"- {line}" for line in ncu.summary_lines(profile)]


# --------------------------------------------------------------------------- the command
def _prepare_device(device: str) -> str:
    """Resolve auto/cuda/cpu, and set up Triton's interpreter for the CPU before the kernel loads."""
    import sys

    if device not in ("auto", "cuda", "cpu"):
        raise HarnessError(f"--device: must be auto, cuda or cpu, got {device!r}")
    loaded = "harness.workloads.triton_attention" in sys.modules
    if device == "cpu":
        if loaded and not sys.modules["harness.workloads.triton_attention"].INTERPRETED:
            raise HarnessError("--device cpu: the Triton kernel was already compiled for the GPU in this process; "
                               "run with TRITON_INTERPRET=1")
        os.environ["TRITON_INTERPRET"] = "1"
        return "cpu"
    import torch

    has_gpu = torch.cuda.is_available()
    if device == "cuda" and not has_gpu:
        raise HarnessError("--device cuda: no CUDA GPU is visible to torch; run on a GPU host (docker: --gpus all) "
                           "or use --device cpu with a tiny shape")
    if not has_gpu:
        os.environ["TRITON_INTERPRET"] = "1"
        return "cpu"
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise HarnessError("TRITON_INTERPRET=1 is set: on a GPU the kernel must be compiled; unset it")
    return "cuda"


def _check_flags(s: OptimizeSettings) -> None:
    """Flag checks that need neither torch nor the kernel module (which must not be imported
    before the device is known: importing it decides between compiling and interpreting)."""
    from harness.records import DTYPES

    if s.dtype not in DTYPES:
        raise HarnessError(f"--dtype: unknown dtype {s.dtype!r}; choose from {', '.join(DTYPES)}")
    if s.budget_s <= 0:
        raise HarnessError(f"--budget-s: must be positive, got {s.budget_s:g}")
    if s.target_speedup <= 0:
        raise HarnessError(f"--target-speedup: must be positive, got {s.target_speedup:g}")
    macs = s.batch * s.heads * s.seq * s.seq * s.head_dim
    if s.device == "cpu" and macs > CPU_MAX_MACS:
        raise HarnessError(
            f"--device cpu runs the Triton kernel in its interpreter, far too slow for B={s.batch} H={s.heads} "
            f"S={s.seq} D={s.head_dim}; use a tiny shape such as --batch 1 --heads 2 --seq 64 --head-dim 32"
        )


def _check_kernel_supports(s: OptimizeSettings) -> None:
    from harness.workloads.triton_attention import DTYPES as KERNEL_DTYPES
    from harness.workloads.triton_attention import HEAD_DIMS

    if s.dtype not in KERNEL_DTYPES:
        raise HarnessError(f"--dtype: the Triton kernel supports {' and '.join(KERNEL_DTYPES)}, not {s.dtype}")
    if s.head_dim not in HEAD_DIMS:
        raise HarnessError(f"--head-dim: the Triton kernel supports {', '.join(map(str, HEAD_DIMS))}, not {s.head_dim}")


def register(app: Any) -> None:
    import typer

    @app.command("optimize")
    def optimize(
        out: Path = typer.Option(..., "--out", help="Output folder (baseline.json, comparison.json, summary.md, ...)."),
        batch: int = typer.Option(32, min=1),
        heads: int = typer.Option(8, min=1),
        seq: int = typer.Option(512, min=1),
        head_dim: int = typer.Option(64, "--head-dim", min=1),
        dtype: str = typer.Option("float16", help="float16 or bfloat16."),
        causal: bool = typer.Option(False, "--causal"),
        budget_s: float = typer.Option(120.0, "--budget-s", help="Wall-clock seconds for the whole run."),
        target_speedup: float = typer.Option(1.10, "--target-speedup", help="Speedup over the best SDPA backend to aim for."),
        device: str = typer.Option("auto", help="auto, cuda or cpu (cpu: the Triton interpreter, tiny shapes only)."),
        seed: int = typer.Option(1234),
        reuse_tuned: bool = typer.Option(False, "--reuse-tuned", help="Measure the saved tuned config for this GPU and shape instead of searching."),
        tuned_file: Optional[Path] = typer.Option(None, "--tuned-file", help="A tuned_config.json to measure instead of searching."),
        config_json: Optional[str] = typer.Option(None, "--config", help="A config (JSON, every tunable) to measure instead of searching."),
        save_tuned: bool = typer.Option(False, "--save-tuned", help="Also save the winner into the harness's shipped tuned configs."),
        peak_tflops: Optional[float] = typer.Option(None, "--matmul-peak-tflops", help="Measured matmul peak, for the share-of-peak column."),
        ncu_when: str = typer.Option("target", "--ncu", help="Nsight Compute profile of the winner: target (when the target speedup is met), always, never."),
    ) -> None:
        """Search the Triton kernel's configs at one shape and compare the winner with the best SDPA backend."""
        import importlib.util

        if importlib.util.find_spec("triton") is None:
            # A plain `pip install -e '.[harness]'` has no Triton: say how to get it, not a traceback.
            raise HarnessError("harness optimize tunes a Triton kernel, and Triton is not installed here; "
                               "pip install -e '.[harness,triton]' (or use the benchmark image, which has it)")
        settings = OptimizeSettings(batch=batch, heads=heads, seq=seq, head_dim=head_dim, dtype=dtype, causal=causal,
                                    budget_s=budget_s, target_speedup=target_speedup, seed=seed,
                                    matmul_peak_tflops=peak_tflops, ncu=ncu_when)
        if ncu_when not in ("target", "always", "never"):
            raise HarnessError(f"--ncu: must be target, always or never, got {ncu_when!r}")
        settings.device = "cpu" if device == "cpu" else "cuda"
        _check_flags(settings)  # bad flags fail before torch loads
        settings.device = _prepare_device(device)
        _check_flags(settings)  # again: "auto" may have become the CPU
        _check_kernel_supports(settings)
        from harness import tuned

        if config_json is not None:
            import json

            try:
                settings.reuse = json.loads(config_json)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"--config: not valid JSON ({exc.msg})") from None
            if not isinstance(settings.reuse, dict):
                raise HarnessError("--config: expected a JSON object of tunables")
        elif tuned_file is not None:
            settings.reuse = tuned.load(tuned_file).config
        elif reuse_tuned:
            settings.reuse = _shipped_config(settings)
        if settings.reuse is not None:
            from harness.workloads.triton_attention import config_problem

            problem = config_problem(settings.reuse, _shape_spec(settings))
            if problem:
                raise HarnessError(f"{tuned_file or 'tuned config'}: {problem}")
        import shlex
        import sys

        command = "harness " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        outcome = run_optimize(settings, out, log=typer.echo, source=command)
        if save_tuned:
            path = tuned.save(outcome.tuned)
            typer.echo(f"saved {path}")


def _shape_spec(s: OptimizeSettings) -> CaseSpec:
    return CaseSpec("triton_attention", "triton", s.batch, s.heads, s.seq, s.head_dim, dtype=s.dtype, causal=s.causal,
                    device=s.device)


def _shipped_config(s: OptimizeSettings) -> dict[str, Any]:
    from harness import tuned

    if s.device != "cuda":
        raise HarnessError("--reuse-tuned: tuned configs are per GPU; on the CPU give --tuned-file or search")
    import torch

    name = torch.cuda.get_device_name()
    cc = ".".join(map(str, torch.cuda.get_device_capability()))
    spec = _shape_spec(s)
    found = tuned.lookup(name, cc, spec)
    if found is None or (found.batch, found.heads, found.seq) != (s.batch, s.heads, s.seq):
        raise HarnessError(f"--reuse-tuned: no tuned config for {name} (sm {cc}) at {spec.shape_key} in "
                           f"{tuned.SHIPPED_DIR}; run without --reuse-tuned to search")
    return found.config
