"""One `harness optimize` run, stage by stage: folder, baseline, search, final pair, records.

Every record is written as soon as its stage ends, so a run stopped by an error or the budget
leaves what it measured; summary.md is written last, from the records alone.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Optional

from harness import __version__, storage, tuned
from harness.compare import compare_cases
from harness.errors import HarnessError
from harness.optimize.baseline import select_baseline
from harness.optimize.halving import ETA, Log, Measure, successive_halving
from harness.optimize.plans import Clock, TimingPlan, reserve_s, timing_plan
from harness.optimize.precompile import precompile
from harness.optimize.records import (
    BASELINE_FILE,
    COMPARISON_FILE,
    SEARCH_FILE,
    SUMMARY_FILE,
    TUNED_FILE,
    Outcome,
    SearchRecord,
    median_ms,
)
from harness.optimize.search import describe, search_space
from harness.optimize.settings import OptimizeSettings, shape_spec
from harness.optimize.summary import summary_markdown
from harness.records import EnvRecord, to_json
from harness.sweep import start_folder


def gpu_identity(env: EnvRecord) -> tuple[str, str]:
    """(device name, compute capability) as a tuned config records them; "cpu" on the CPU."""
    if env.gpu is not None and env.gpu.name:
        return env.gpu.name, env.gpu.compute_capability or "unknown"
    return f"cpu: {env.host.get('cpu_model') or 'unknown'}", "cpu"


def run_optimize(settings: OptimizeSettings, out: Path, *, measure: Optional[Measure] = None,
                 log: Log = print, plan: Optional[TimingPlan] = None, source: str = "harness optimize",
                 now: Callable[[], float] = time.perf_counter) -> Outcome:
    """The whole run into `out`. `measure` defaults to harness.runner.run_case; `now` is the
    budget's clock (both replaceable so the logic is tested without a GPU or real time)."""
    out = Path(out)
    clock = Clock(settings.budget_s, now)
    shape = shape_spec(settings, "sdpa", "default")
    plan = plan or timing_plan(settings.device)
    plan = TimingPlan(*(replace(t, seed=settings.seed) for t in (plan.select, plan.quick, plan.full)))
    if measure is None:
        from harness.runner import run_case

        measure = run_case
    space = settings.space if settings.space is not None else search_space(replace(shape, workload="triton_attention"))
    if settings.reuse is None and not space:
        raise HarnessError(f"no config of the search space can run {shape.shape_key}")

    env = start_folder(out, settings.device, settings.seed).env
    gpu_name, cc = gpu_identity(env)
    log(f"optimize {shape.shape_key} on {gpu_name}: budget {settings.budget_s:.0f} s, {len(space)} configs")

    baseline = select_baseline(shape, plan.select, measure, log)
    storage.write_record(out / BASELINE_FILE, baseline)
    if baseline.best_backend is None:
        raise HarnessError(f"no SDPA backend ran {shape.shape_key} correctly; see {out / BASELINE_FILE}")

    search: Optional[SearchRecord] = None
    winner: Optional[dict] = None
    if settings.reuse is not None:
        winner = dict(settings.reuse)
        log(f"reusing tuned config {describe(winner)}: no search")
    else:
        deadline = settings.budget_s - reserve_s(plan)
        if deadline <= clock.spent():
            raise HarnessError(
                f"--budget-s {settings.budget_s:g} is too short: the baseline took {clock.spent():.0f} s and the final "
                f"comparison needs about {reserve_s(plan):.0f} s; give at least {clock.spent() + reserve_s(plan) + 10:.0f}"
            )
        compile_failures: Optional[dict[int, str]] = None
        if settings.device == "cuda" and settings.precompile:
            compile_failures = precompile(shape, space, clock.spent() + 0.4 * (deadline - clock.spent()), clock, log)
        halving = successive_halving(shape, space, plan, measure, clock, deadline, log, compile_failures)
        trials = halving.trials
        search = SearchRecord(
            shape_key=shape.shape_key, budget_s=settings.budget_s, spent_s=round(clock.spent(), 2), eta=ETA,
            n_configs=len(space), n_tried=sum(t.status != "not_tried" for t in trials),
            n_correct=sum(t.rel_error is not None and t.status != "incorrect" for t in trials),
            rung_sizes=halving.rung_sizes, winner=halving.winner, stop_reason=halving.stop_reason, trials=trials,
        )
        storage.write_record(out / SEARCH_FILE, search)
        winner = halving.winner
        if winner is None:
            raise HarnessError(f"search found no usable config ({halving.stop_reason}); see {out / SEARCH_FILE}")
        log(f"winner {describe(winner)} ({halving.stop_reason})")

    # The final pair, fresh and back to back (see the package docstring).
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
    storage.atomic_write_text(out / COMPARISON_FILE, to_json(comparison))

    versions = env.software or {}
    record = tuned.TunedConfig(
        gpu_name=gpu_name, compute_capability=cc, batch=shape.batch, heads=shape.heads, seq=shape.seq,
        head_dim=shape.head_dim, dtype=shape.dtype, causal=shape.causal, config=winner,
        median_ms=median_ms(final_cand), baseline_backend=baseline.best_backend,
        baseline_median_ms=median_ms(final_base), ratio=comparison.ratio, ratio_ci_low=comparison.ratio_ci_low,
        ratio_ci_high=comparison.ratio_ci_high, verdict=comparison.verdict,
        configs_tried=search.n_tried if search else 0,
        triton_version=str(versions.get("triton")), torch_version=str(versions.get("torch")),
        created_at=storage.utc_now(), source=f"{source} (harness {__version__}, python {platform.python_version()})",
    )
    storage.write_record(out / TUNED_FILE, record)
    outcome = Outcome(baseline, search, final_base, final_cand, comparison, record, out)
    storage.atomic_write_text(out / SUMMARY_FILE, summary_markdown(outcome, settings, clock.spent()))
    storage.write_manifest(out)
    log(f"{comparison.verdict}: candidate/baseline = {comparison.ratio:.3f} "
        f"[{comparison.ratio_ci_low:.3f}, {comparison.ratio_ci_high:.3f}] in {clock.spent():.0f} s -> {out}")
    return outcome
